// Attention on the GPU over the ragged KV store: the forward pass's causal
// attention (split over the rows, flash-decoding style, with an online
// softmax per split, merged afterwards), H2O's column sums, and the probe
// attention behind every scoring method. Scores are f32 dot products scaled
// by 1/sqrt(head_dim), as on the CPU.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kMaxDimsPerLane = 8;  // head_dim <= 256
constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ const void* head_base(const KvDev& kv, const void* base, int64_t s) {
  return static_cast<const uint8_t*>(base) +
         size_t(s * kv.capacity * kv.head_dim) * (kv.type == DType::F32 ? 4 : 2);
}

// One warp per (query, head, split): an online softmax over the split's rows.
// Writes m, l and the unnormalised sum of values to part[(item, split)].
__global__ void attention_split_kernel(KvDev kv, const float* q, const int32_t* q_pos,
                                       int64_t n, int64_t n_head, int64_t n_split,
                                       float* part) {
  const int64_t gw = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (gw >= n * n_head * n_split) return;
  const int64_t item = gw / n_split, split = gw % n_split;
  const int64_t t = item / n_head, h = item % n_head;
  const int64_t hd = kv.head_dim, s = h / (n_head / kv.n_stored);
  const int64_t seen = visible(kv.pos + s * kv.capacity, kv_rows(kv, s), query_pos(kv, q_pos, t));
  const int64_t chunk = (seen + n_split - 1) / n_split;
  const int64_t j0 = split * chunk, j1 = min(seen, j0 + chunk);
  const float scale = 1.0f / sqrtf(float(hd));
  float qr[kMaxDimsPerLane], acc[kMaxDimsPerLane];
  const float* qt = q + item * hd;
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qr[i] = d < hd ? qt[d] : 0.0f;
    acc[i] = 0.0f;
  }
  const void* K = head_base(kv, kv.k, s);
  const void* V = head_base(kv, kv.v, s);
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = j0; j < j1; ++j) {
    float part_dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) part_dot += qr[i] * load_elem(kv.type, K, j * hd + d);
    }
    const float sc = warp_sum(part_dot) * scale;
    const float m_new = fmaxf(m, sc);
    const float corr = expf(m - m_new), p = expf(sc - m_new);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kMaxDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * corr + p * load_elem(kv.type, V, j * hd + d);
    }
    m = m_new;
  }
  float* o = part + gw * (hd + 2);
  if (lane == 0) {
    o[0] = m;
    o[1] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < hd) o[2 + d] = acc[i];
  }
}

// Decode attention grouped by stored head: one block per (query t, stored
// head s, split), its 4 warps taking a quarter of the split's rows each,
// attends with all the query heads that share s (up to GP of them), so K
// and V are read once per group, not once per query head; the warps' states
// are merged in shared memory, so a block writes one partial. Lane i
// holds dims [KL·i, KL·i + KL) of each query and of each output (head_dim =
// 32·KL); T is the stored element (float, or the uint16_t bits of f16 / bf16
// as kBf16 says). Rows go R at a time (K and V of the R rows loaded together,
// so a warp has 2·R row reads in flight instead of one): the GP·R partial
// dots are summed across the warp by one transposing butterfly, which leaves
// lane l holding the score of value l / (32 / (GP·R)), i.e. of head g and row
// r for that value g·R + r; each head's softmax statistics are reduced over
// its lanes, and the probabilities reach every lane through shared memory.
// Writes m, l and the unnormalised sum of values of each head to
// part[(t·n_head + h)·n_split + split], as attention_split_kernel does.
template <int C, int W>
struct Butterfly {
  // v[0, C) summed over the warp; on return v[0] of lane l holds the sum of
  // value l >> (5 - log2 C).
  static __device__ __forceinline__ void run(float* v, int lane) {
    if constexpr (W > 0) {
      if constexpr (C > 1) {
        constexpr int H = C / 2;
        const bool upper = (lane & W) != 0;
#pragma unroll
        for (int i = 0; i < H; ++i) {
          const float send = upper ? v[i] : v[i + H];
          const float keep = upper ? v[i + H] : v[i];
          v[i] = keep + __shfl_xor_sync(0xffffffffu, send, W);
        }
        Butterfly<H, W / 2>::run(v, lane);
      } else {
        v[0] += __shfl_xor_sync(0xffffffffu, v[0], W);
        Butterfly<1, W / 2>::run(v, lane);
      }
    }
  }
};

template <typename T, bool kBf16, int KL>
__device__ __forceinline__ void load_raw(const T* p, uint32_t (&w)[KL]) {
  // KL elements: KL words of f32 or KL / 2 words of 16-bit pairs (the rest unused).
  if constexpr (sizeof(T) == 4) {
    if constexpr (KL == 4) {
      const uint4 v = *reinterpret_cast<const uint4*>(p);
      w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(p);
      w[0] = v.x, w[1] = v.y;
    }
  } else {
    if constexpr (KL == 4) {
      const uint2 v = *reinterpret_cast<const uint2*>(p);
      w[0] = v.x, w[1] = v.y;
    } else {
      w[0] = *reinterpret_cast<const uint32_t*>(p);
    }
  }
}

template <typename T, bool kBf16, int KL>
__device__ __forceinline__ float raw_elem(const uint32_t (&w)[KL], int i) {
  if constexpr (sizeof(T) == 4) {
    return __uint_as_float(w[i]);
  } else {
    const uint16_t b = uint16_t(i % 2 ? w[i / 2] >> 16 : w[i / 2] & 0xFFFF);
    return kBf16 ? bf16_bits_to_f32(b) : f16_bits_to_f32(b);
  }
}

template <typename T, bool kBf16, int KL, int GP>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    attention_group_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n,
                           int64_t n_head, int64_t n_split, float* part) {
  constexpr int HD = 32 * KL;
  constexpr int R = GP >= 8 ? 4 : 8;        // rows per step
  constexpr int NV = GP * R;                // partial dots per step, <= 32
  constexpr int LPV = 32 / NV;              // lanes holding one summed value
  constexpr int SEG = R * LPV;              // lanes holding one head's R scores
  __shared__ __align__(16) float probs[kWarpsPerBlock][32];
  __shared__ float corrs[kWarpsPerBlock][GP];
  __shared__ float w_m[kWarpsPerBlock][GP], w_l[kWarpsPerBlock][GP];
  __shared__ float w_acc[kWarpsPerBlock][GP][HD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t item = blockIdx.x / n_split, split = blockIdx.x % n_split;
  if (item >= n * kv.n_stored) return;  // the whole block
  const int64_t t = item / kv.n_stored, s = item % kv.n_stored;
  const int group = int(n_head / kv.n_stored);
  const int64_t seen = visible(kv.pos + s * kv.capacity, kv_rows(kv, s), query_pos(kv, q_pos, t));
  // The block's rows [b0, b1), a quarter to each warp.
  const int64_t chunk = ceil_div(ceil_div(seen, n_split), kWarpsPerBlock * R) * (kWarpsPerBlock * R);
  const int64_t b0 = min(seen, split * chunk), b1 = min(seen, b0 + chunk);
  const int64_t per_warp = chunk / kWarpsPerBlock;
  const int64_t j0 = min(b1, b0 + warp * per_warp), j1 = min(b1, j0 + per_warp);
  const float scale = 1.0f / sqrtf(float(HD));

  float qr[GP][KL], acc[GP][KL];
#pragma unroll
  for (int g = 0; g < GP; ++g)
#pragma unroll
    for (int i = 0; i < KL; ++i) {
      qr[g][i] = g < group ? q[(t * n_head + s * group + g) * HD + lane * KL + i] : 0.0f;
      acc[g][i] = 0.0f;
    }
  const T* K = static_cast<const T*>(kv.k) + size_t(s * kv.capacity) * HD + lane * KL;
  const T* V = static_cast<const T*>(kv.v) + size_t(s * kv.capacity) * HD + lane * KL;
  // This lane's value (head my_g, row my_r of the step) and its head's state.
  const int my_v = lane / LPV, my_g = my_v / R, my_r = my_v % R;
  float m = -INFINITY, l = 0.0f;

  for (int64_t j = j0; j < j1; j += R) {
    uint32_t kw[R][KL], vw[R][KL];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (j + r < j1) {
        load_raw<T, kBf16, KL>(K + (j + r) * HD, kw[r]);
        load_raw<T, kBf16, KL>(V + (j + r) * HD, vw[r]);
      } else {
#pragma unroll
        for (int i = 0; i < KL; ++i) kw[r][i] = vw[r][i] = 0u;  // zeros, never NaN
      }
    }
    float d[NV];
#pragma unroll
    for (int g = 0; g < GP; ++g)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float x = 0.0f;
#pragma unroll
        for (int i = 0; i < KL; ++i) x += qr[g][i] * raw_elem<T, kBf16, KL>(kw[r], i);
        d[g * R + r] = x;
      }
    Butterfly<NV, 16>::run(d, lane);
    const bool live = my_g < group && j + my_r < j1;
    const float sc = live ? d[0] * scale : -INFINITY;
    float mx = sc;
#pragma unroll
    for (int o = LPV; o < SEG; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    const float m_new = fmaxf(m, mx);
    const float corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    const float p = live ? expf(sc - m_new) : 0.0f;
    float ps = p;
#pragma unroll
    for (int o = LPV; o < SEG; o <<= 1) ps += __shfl_xor_sync(0xffffffffu, ps, o);
    l = l * corr + ps;
    m = m_new;
    if (lane % LPV == 0) probs[warp][my_v] = p;
    if (lane % SEG == 0) corrs[warp][my_g] = corr;
    __syncwarp();
#pragma unroll
    for (int g = 0; g < GP; ++g) {
      const float cg = corrs[warp][g];
      float pr[R];
#pragma unroll
      for (int r = 0; r < R; r += 4) {
        const float4 p4 = *reinterpret_cast<const float4*>(&probs[warp][g * R + r]);
        pr[r] = p4.x, pr[r + 1] = p4.y, pr[r + 2] = p4.z, pr[r + 3] = p4.w;
      }
#pragma unroll
      for (int i = 0; i < KL; ++i) {
        float a = acc[g][i] * cg;
#pragma unroll
        for (int r = 0; r < R; ++r) a += pr[r] * raw_elem<T, kBf16, KL>(vw[r], i);
        acc[g][i] = a;
      }
    }
    __syncwarp();  // probs and corrs are rewritten by the next step
  }
  // The four warps' states meet in shared memory: one partial per block.
  if (lane % SEG == 0) {
    w_m[warp][my_g] = m;
    w_l[warp][my_g] = l;
  }
#pragma unroll
  for (int g = 0; g < GP; ++g)
#pragma unroll
    for (int i = 0; i < KL; ++i) w_acc[warp][g][lane * KL + i] = acc[g][i];
  __syncthreads();
  for (int e = threadIdx.x; e < group * HD; e += blockDim.x) {
    const int g = e / HD, d = e % HD;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarpsPerBlock; ++w) M = fmaxf(M, w_m[w][g]);
    float L = 0.0f, a = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpsPerBlock; ++w) {
      const float f = w_m[w][g] == -INFINITY ? 0.0f : expf(w_m[w][g] - M);  // a warp that saw nothing: 0
      L += w_l[w][g] * f;
      a += w_acc[w][g][d] * f;
    }
    float* o = part + ((t * n_head + s * group + g) * n_split + split) * (HD + 2);
    if (d == 0) {
      o[0] = M;
      o[1] = L;
    }
    o[2 + d] = a;
  }
}

// Merges the splits' states: block (item, c) of the grid gives dims
// [32c, 32c + 32) of query-head item (t·n_head + h). Its 256 threads are 32
// groups of 8 lanes of 4 dims, a group summing every 32nd split: a long
// cache's hundreds of splits are summed 32 at a time, with many loads in
// flight, by 4 blocks per head (32 blocks, one per head, left the GPU
// waiting on memory latency). Every block also finds the maximum and the
// sum of exponentials (the splits' m and l: a few KiB, from L2).
constexpr int kMergeThreads = 256, kMergeDims = 32, kMergeGroups = kMergeThreads / (kMergeDims / 4);
__global__ void __launch_bounds__(kMergeThreads)
    attention_merge_kernel(const float* part, int64_t n_split, int64_t hd, float* out,
                           float* m_out, float* l_out) {
  __shared__ float red[32];
  __shared__ float sums[kMergeGroups][kMergeDims];
  __shared__ float lsum[kMergeGroups];
  const int64_t item = blockIdx.x, stride = hd + 2, d0 = int64_t(blockIdx.y) * kMergeDims;
  const float* p = part + item * n_split * stride;
  float M = -INFINITY;
  for (int64_t c = threadIdx.x; c < n_split; c += blockDim.x) M = fmaxf(M, p[c * stride]);
  M = block_max(M, red);
  const int grp = int(threadIdx.x) / (kMergeDims / 4), li = int(threadIdx.x) % (kMergeDims / 4);
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, L = 0.0f;
  for (int64_t c = grp; c < n_split; c += kMergeGroups) {
    const float* pc = p + c * stride;
    const float mc = pc[0];
    const float w = mc == -INFINITY ? 0.0f : expf(mc - M);  // a split that saw nothing: 0
    L += pc[1] * w;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t d = d0 + 4 * li + k;
      if (d < hd) a[k] += w * pc[2 + d];
    }
  }
#pragma unroll
  for (int k = 0; k < 4; ++k) sums[grp][4 * li + k] = a[k];
  if (li == 0) lsum[grp] = L;
  __syncthreads();
  if (threadIdx.x < kMergeDims) {
    float Lt = 0.0f, at = 0.0f;
    for (int g = 0; g < kMergeGroups; ++g) {  // in group order: the same sums in every block
      Lt += lsum[g];
      at += sums[g][threadIdx.x];
    }
    const int64_t d = d0 + threadIdx.x;
    if (d < hd) out[item * hd + d] = Lt > 0.0f ? at / Lt : 0.0f;
    if (threadIdx.x == 0 && blockIdx.y == 0 && m_out) {
      m_out[item] = M;
      l_out[item] = Lt;
    }
  }
}

// One thread per (head, row): adds the row's probability under every query
// of the batch, in batch order.
__global__ void colsum_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n,
                              int64_t n_head, const float* m, const float* l, float* colsum,
                              float* colcount, int64_t ld) {
  const int64_t h = blockIdx.y;
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t s = h / (n_head / kv.n_stored), hd = kv.head_dim;
  if (j >= ld || j >= kv_rows(kv, s)) return;
  const int32_t pj = kv.pos[s * kv.capacity + j];
  const void* K = head_base(kv, kv.k, s);
  const float scale = 1.0f / sqrtf(float(hd));
  float sum = colsum[h * ld + j], cnt = colcount[h * ld + j];
  for (int64_t t = 0; t < n; ++t) {
    if (pj > query_pos(kv, q_pos, t)) continue;
    const float* qt = q + (t * n_head + h) * hd;
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot += qt[d] * load_elem(kv.type, K, j * hd + d);
    const int64_t item = t * n_head + h;
    sum += expf(dot * scale - m[item]) / l[item];
    cnt += 1.0f;
  }
  colsum[h * ld + j] = sum;
  colcount[h * ld + j] = cnt;
}

// q · row j of a head of the store (head_base's layout), summed in dim order
// like the CPU; a thread reads the row 16 bytes at a time (8 f16/bf16 or 4
// f32) where the row allows, not one element at a time: a cut's probes read
// every key of the prompt once per probe and head.
__device__ __forceinline__ float dot_key_row(const KvDev& kv, const void* K, int64_t j,
                                             const float* q) {
  const int64_t hd = kv.head_dim;
  float dot = 0.0f;
  if (kv.type == DType::F32 && hd % 4 == 0) {
    const float4* r = reinterpret_cast<const float4*>(static_cast<const float*>(K) + j * hd);
    for (int64_t c = 0; c < hd / 4; ++c) {
      const float4 w = r[c];
      dot += q[4 * c] * w.x;
      dot += q[4 * c + 1] * w.y;
      dot += q[4 * c + 2] * w.z;
      dot += q[4 * c + 3] * w.w;
    }
  } else if (kv.type != DType::F32 && hd % 8 == 0) {
    const bool bf16 = kv.type == DType::BF16;
    const uint4* r = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(K) + j * hd);
    for (int64_t c = 0; c < hd / 8; ++c) {
      const uint4 raw = r[c];
      const uint32_t word[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint16_t lo = uint16_t(word[k] & 0xFFFF), hi = uint16_t(word[k] >> 16);
        dot += q[8 * c + 2 * k] * (bf16 ? bf16_bits_to_f32(lo) : f16_bits_to_f32(lo));
        dot += q[8 * c + 2 * k + 1] * (bf16 ? bf16_bits_to_f32(hi) : f16_bits_to_f32(hi));
      }
    }
  } else {
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * load_elem(kv.type, K, j * hd + d);
  }
  return dot;
}

// One block per (probe, head): its scores over the rows it sees and its own
// keys, one softmax over all of them, zeros elsewhere.
__global__ void probe_probs_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n_head,
                                   const float* own_k, float* p, int64_t p_ld) {
  __shared__ float red[32];
  __shared__ float q_s[256];  // head_dim <= 256 (the backend checks)
  const int64_t t = blockIdx.x / n_head, h = blockIdx.x % n_head;
  const int64_t hd = kv.head_dim, s = h / (n_head / kv.n_stored), n_kv = kv.n_stored / kv.repeat;
  const int64_t rows = kv_rows(kv, s);
  const int64_t seen = visible(kv.pos + s * kv.capacity, rows, query_pos(kv, q_pos, t));
  const int64_t n_own = own_k ? t + 1 : 0;
  const float* qt = q + (t * n_head + h) * hd;
  const void* K = head_base(kv, kv.k, s);
  const float scale = 1.0f / sqrtf(float(hd));
  float* pr = p + (t * n_head + h) * p_ld;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) q_s[d] = qt[d];
  __syncthreads();
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < seen + n_own; j += blockDim.x) {
    float dot = 0.0f;
    if (j < seen) {
      dot = dot_key_row(kv, K, j, q_s);
      pr[j] = dot * scale;
    } else {
      const float* k = own_k + ((j - seen) * n_kv + s / kv.repeat) * hd;
      for (int64_t d = 0; d < hd; ++d) dot += qt[d] * k[d];
      pr[rows + (j - seen)] = dot * scale;
    }
    mx = fmaxf(mx, dot * scale);
  }
  mx = block_max(mx, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < seen + n_own; j += blockDim.x) {
    const int64_t at = j < seen ? j : rows + (j - seen);
    const float e = expf(pr[at] - mx);
    pr[at] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  for (int64_t j = threadIdx.x; j < p_ld; j += blockDim.x) {
    const bool mine = j < seen || (j >= rows && j < rows + n_own);
    pr[j] = mine ? pr[j] / sum : 0.0f;
  }
}

__global__ void probe_reduce_kernel(const float* p, int64_t n_probe, int64_t n_head, int64_t p_ld,
                                    const int64_t* rows, int64_t group, int how, float* out,
                                    int64_t ld) {
  const int64_t h = blockIdx.y;
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= rows[h / group]) return;
  float acc = 0.0f;
  for (int64_t t = 0; t < n_probe; ++t) {
    const float x = p[(t * n_head + h) * p_ld + j];
    acc = how == 2 ? fmaxf(acc, x) : acc + x;
  }
  if (how == 1 && n_probe > 0) acc /= float(n_probe);
  out[h * ld + j] = acc;
}

// The grouped kernel's query heads per stored head (a power of two >= the
// group), or 0 where it does not apply (head_dim other than 64 or 128, or a
// group above 8): then attention_split_kernel takes one query head per warp.
int group_width(const KvDev& kv, int64_t n_head) {
  const int64_t group = n_head / kv.n_stored;
  if ((kv.head_dim != 64 && kv.head_dim != 128) || group > 8) return 0;
  return group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : 8;
}

}  // namespace

int64_t attention_splits(const KvDev& kv, int64_t n, int64_t n_head, int64_t max_rows) {
  // About 2K warps (of 8K resident) fill the GPU's memory pipes when each
  // has 8 rows of K and V in flight. The grouped kernel's splits are blocks
  // of 4 warps (n · n_stored · splits blocks) of at least 64 rows per warp
  // (fewer cost more to merge than they save); the other kernel's splits are
  // warps (n · n_head · splits) of at least 256 rows (one row at a time).
  const bool grouped = group_width(kv, n_head) > 0;
  const int64_t items = std::max<int64_t>(1, n * (grouped ? kv.n_stored : n_head));
  const int64_t want = std::min<int64_t>(ceil_div(grouped ? 2048 / kWarpsPerBlock : 8192, items), 4096);
  return std::max<int64_t>(1, std::min(want, ceil_div(max_rows, grouped ? 64 * kWarpsPerBlock : 256)));
}

void attention(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n, int64_t n_head,
               float* out, float* m_out, float* l_out, int64_t n_split, float* scratch,
               cudaStream_t s) {
  if (n <= 0 || n_head <= 0) return;
  const int64_t hd = kv.head_dim;
  const unsigned threads = 32 * kWarpsPerBlock;
  const bool f32 = kv.type == DType::F32, bf16 = kv.type == DType::BF16;
  const int gp = group_width(kv, n_head);
  if (gp > 0) {
    const unsigned blocks = unsigned(n * kv.n_stored * n_split);
#define KVSIEVE_GROUP(T, B, KL, GP)                                                       \
  attention_group_kernel<T, B, KL, GP><<<blocks, threads, 0, s>>>(kv, q, q_pos, n, n_head, \
                                                                  n_split, scratch)
#define KVSIEVE_GROUP_GP(T, B, KL)              \
  switch (gp) {                                 \
    case 1: KVSIEVE_GROUP(T, B, KL, 1); break;  \
    case 2: KVSIEVE_GROUP(T, B, KL, 2); break;  \
    case 4: KVSIEVE_GROUP(T, B, KL, 4); break;  \
    default: KVSIEVE_GROUP(T, B, KL, 8); break; \
  }
    if (hd == 128) {
      if (f32) KVSIEVE_GROUP_GP(float, false, 4)
      else if (bf16) KVSIEVE_GROUP_GP(uint16_t, true, 4)
      else KVSIEVE_GROUP_GP(uint16_t, false, 4)
    } else {
      if (f32) KVSIEVE_GROUP_GP(float, false, 2)
      else if (bf16) KVSIEVE_GROUP_GP(uint16_t, true, 2)
      else KVSIEVE_GROUP_GP(uint16_t, false, 2)
    }
#undef KVSIEVE_GROUP_GP
#undef KVSIEVE_GROUP
  } else {
    const int64_t warps = n * n_head * n_split;
    attention_split_kernel<<<unsigned(ceil_div(warps, kWarpsPerBlock)), threads, 0, s>>>(
        kv, q, q_pos, n, n_head, n_split, scratch);
  }
  const dim3 merge_grid(unsigned(n * n_head), unsigned(ceil_div(hd, kMergeDims)));
  attention_merge_kernel<<<merge_grid, kMergeThreads, 0, s>>>(scratch, n_split, hd, out, m_out,
                                                             l_out);
}

void attention_merge(const float* part, int64_t items, int64_t n_split, int64_t hd, float* out,
                     float* m_out, float* l_out, cudaStream_t s) {
  if (items <= 0) return;
  const dim3 merge_grid(unsigned(items), unsigned(ceil_div(hd, kMergeDims)));
  attention_merge_kernel<<<merge_grid, kMergeThreads, 0, s>>>(part, n_split, hd, out, m_out, l_out);
}

void attention_colsums(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n,
                       int64_t n_head, const float* m, const float* l, float* colsum,
                       float* colcount, int64_t ld, cudaStream_t s) {
  if (n <= 0 || ld <= 0) return;
  const dim3 grid(unsigned(ceil_div(ld, 128)), unsigned(n_head));
  colsum_kernel<<<grid, 128, 0, s>>>(kv, q, q_pos, n, n_head, m, l, colsum, colcount, ld);
}

void probe_probs(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                 int64_t n_head, const float* own_k, float* p, int64_t p_ld, cudaStream_t s) {
  if (n_probe <= 0) return;
  probe_probs_kernel<<<unsigned(n_probe * n_head), 256, 0, s>>>(kv, q, q_pos, n_head, own_k, p,
                                                                p_ld);
}

void probe_reduce(const float* p, int64_t n_probe, int64_t n_head, int64_t p_ld,
                  const int64_t* rows, int64_t group, int how, float* out, int64_t ld,
                  cudaStream_t s) {
  if (ld <= 0) return;
  const dim3 grid(unsigned(ceil_div(ld, 128)), unsigned(n_head));
  probe_reduce_kernel<<<grid, 128, 0, s>>>(p, n_probe, n_head, p_ld, rows, group, how, out, ld);
}

}  // namespace kvsieve::cuda
