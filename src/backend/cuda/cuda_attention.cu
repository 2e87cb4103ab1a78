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
  const int64_t seen = visible(kv.pos + s * kv.capacity, kv.rows[s], q_pos[t]);
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

// The same with each lane holding KL consecutive dims (head_dim = 32·KL),
// read in one 4-, 8- or 16-byte load per row: a warp reads a row of K or V
// in one coalesced piece instead of KL strided ones. T is the stored
// element (float, or uint16_t bits of f16 / bf16 as kBf16 says).
template <typename T, bool kBf16, int KL>
__device__ __forceinline__ void load_dims(const T* p, float (&f)[KL]) {
  if constexpr (sizeof(T) == 4) {
    if constexpr (KL == 4) {
      const float4 v = *reinterpret_cast<const float4*>(p);
      f[0] = v.x, f[1] = v.y, f[2] = v.z, f[3] = v.w;
    } else {
      const float2 v = *reinterpret_cast<const float2*>(p);
      f[0] = v.x, f[1] = v.y;
    }
  } else {
    uint32_t w[KL / 2];
    if constexpr (KL == 4) {
      const uint2 v = *reinterpret_cast<const uint2*>(p);
      w[0] = v.x, w[1] = v.y;
    } else {
      w[0] = *reinterpret_cast<const uint32_t*>(p);
    }
#pragma unroll
    for (int i = 0; i < KL / 2; ++i) {
      const uint16_t lo = uint16_t(w[i] & 0xFFFF), hi = uint16_t(w[i] >> 16);
      f[2 * i] = kBf16 ? bf16_bits_to_f32(lo) : f16_bits_to_f32(lo);
      f[2 * i + 1] = kBf16 ? bf16_bits_to_f32(hi) : f16_bits_to_f32(hi);
    }
  }
}

template <typename T, bool kBf16, int KL>
__global__ void attention_split_vec_kernel(KvDev kv, const float* q, const int32_t* q_pos,
                                           int64_t n, int64_t n_head, int64_t n_split,
                                           float* part) {
  constexpr int HD = 32 * KL;
  const int64_t gw = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (gw >= n * n_head * n_split) return;
  const int64_t item = gw / n_split, split = gw % n_split;
  const int64_t t = item / n_head, h = item % n_head, s = h / (n_head / kv.n_stored);
  const int64_t seen = visible(kv.pos + s * kv.capacity, kv.rows[s], q_pos[t]);
  const int64_t chunk = (seen + n_split - 1) / n_split;
  const int64_t j0 = split * chunk, j1 = min(seen, j0 + chunk);
  const float scale = 1.0f / sqrtf(float(HD));
  float qr[KL], acc[KL], w[KL];
#pragma unroll
  for (int i = 0; i < KL; ++i) {
    qr[i] = q[item * HD + lane * KL + i];
    acc[i] = 0.0f;
  }
  const T* K = static_cast<const T*>(kv.k) + size_t(s * kv.capacity) * HD + lane * KL;
  const T* V = static_cast<const T*>(kv.v) + size_t(s * kv.capacity) * HD + lane * KL;
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = j0; j < j1; ++j) {
    load_dims<T, kBf16, KL>(K + j * HD, w);
    float part_dot = 0.0f;
#pragma unroll
    for (int i = 0; i < KL; ++i) part_dot += qr[i] * w[i];
    const float sc = warp_sum(part_dot) * scale;
    const float m_new = fmaxf(m, sc);
    const float corr = expf(m - m_new), p = expf(sc - m_new);
    l = l * corr + p;
    load_dims<T, kBf16, KL>(V + j * HD, w);
#pragma unroll
    for (int i = 0; i < KL; ++i) acc[i] = acc[i] * corr + p * w[i];
    m = m_new;
  }
  float* o = part + gw * (HD + 2);
  if (lane == 0) {
    o[0] = m;
    o[1] = l;
  }
#pragma unroll
  for (int i = 0; i < KL; ++i) o[2 + lane * KL + i] = acc[i];
}

// One block per (query, head): merges the splits' states. The splits'
// weights exp(m_c - M) go to shared memory once ([n_split] floats); then
// thread d sums its dim over the splits (reads coalesced across threads).
__global__ void attention_merge_kernel(const float* part, int64_t n_split, int64_t hd, float* out,
                                       float* m_out, float* l_out) {
  extern __shared__ float weight[];
  __shared__ float red[32];
  const int64_t item = blockIdx.x;
  const float* p = part + item * n_split * (hd + 2);
  float M = -INFINITY;
  for (int64_t c = threadIdx.x; c < n_split; c += blockDim.x) M = fmaxf(M, p[c * (hd + 2)]);
  M = block_max(M, red);
  float L = 0.0f;
  for (int64_t c = threadIdx.x; c < n_split; c += blockDim.x) {
    const float mc = p[c * (hd + 2)];
    const float w = mc == -INFINITY ? 0.0f : expf(mc - M);  // a split that saw nothing: 0
    weight[c] = w;
    L += p[c * (hd + 2) + 1] * w;
  }
  L = block_sum(L, red);  // its barriers also publish weight[]
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float a = 0.0f;
    for (int64_t c = 0; c < n_split; ++c) a += weight[c] * p[c * (hd + 2) + 2 + d];
    out[item * hd + d] = L > 0.0f ? a / L : 0.0f;
  }
  if (threadIdx.x == 0 && m_out) {
    m_out[item] = M;
    l_out[item] = L;
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
  if (j >= ld || j >= kv.rows[s]) return;
  const int32_t pj = kv.pos[s * kv.capacity + j];
  const void* K = head_base(kv, kv.k, s);
  const float scale = 1.0f / sqrtf(float(hd));
  float sum = colsum[h * ld + j], cnt = colcount[h * ld + j];
  for (int64_t t = 0; t < n; ++t) {
    if (pj > q_pos[t]) continue;
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

// One block per (probe, head): its scores over the rows it sees and its own
// keys, one softmax over all of them, zeros elsewhere.
__global__ void probe_probs_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n_head,
                                   const float* own_k, float* p, int64_t p_ld) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x / n_head, h = blockIdx.x % n_head;
  const int64_t hd = kv.head_dim, s = h / (n_head / kv.n_stored), n_kv = kv.n_stored / kv.repeat;
  const int64_t rows = kv.rows[s];
  const int64_t seen = visible(kv.pos + s * kv.capacity, rows, q_pos[t]);
  const int64_t n_own = own_k ? t + 1 : 0;
  const float* qt = q + (t * n_head + h) * hd;
  const void* K = head_base(kv, kv.k, s);
  const float scale = 1.0f / sqrtf(float(hd));
  float* pr = p + (t * n_head + h) * p_ld;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < seen + n_own; j += blockDim.x) {
    float dot = 0.0f;
    if (j < seen) {
      for (int64_t d = 0; d < hd; ++d) dot += qt[d] * load_elem(kv.type, K, j * hd + d);
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

}  // namespace

int64_t attention_splits(int64_t n, int64_t n_head, int64_t max_rows) {
  // About 8K warps fill the GPU; a split of fewer than 256 rows costs more
  // to merge than it saves. At most 8K splits (their weights: 32 KiB of
  // shared memory in the merge).
  const int64_t items = std::max<int64_t>(1, n * n_head);
  const int64_t want = std::min<int64_t>(ceil_div(8192, items), 8192);
  return std::max<int64_t>(1, std::min(want, ceil_div(max_rows, 256)));
}

void attention(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n, int64_t n_head,
               float* out, float* m_out, float* l_out, int64_t n_split, float* scratch,
               cudaStream_t s) {
  const int64_t warps = n * n_head * n_split;
  if (warps <= 0) return;
  const unsigned blocks = unsigned(ceil_div(warps, kWarpsPerBlock)), threads = 32 * kWarpsPerBlock;
  const int64_t hd = kv.head_dim;
  const bool f32 = kv.type == DType::F32, bf16 = kv.type == DType::BF16;
#define KVSIEVE_SPLIT(T, B, KL) \
  attention_split_vec_kernel<T, B, KL><<<blocks, threads, 0, s>>>(kv, q, q_pos, n, n_head, n_split, scratch)
  if (hd == 128) {
    if (f32) KVSIEVE_SPLIT(float, false, 4);
    else if (bf16) KVSIEVE_SPLIT(uint16_t, true, 4);
    else KVSIEVE_SPLIT(uint16_t, false, 4);
  } else if (hd == 64) {
    if (f32) KVSIEVE_SPLIT(float, false, 2);
    else if (bf16) KVSIEVE_SPLIT(uint16_t, true, 2);
    else KVSIEVE_SPLIT(uint16_t, false, 2);
  } else {
    attention_split_kernel<<<blocks, threads, 0, s>>>(kv, q, q_pos, n, n_head, n_split, scratch);
  }
#undef KVSIEVE_SPLIT
  const unsigned merge_threads = unsigned(std::min<int64_t>(256, ceil_div(hd, 32) * 32));
  attention_merge_kernel<<<unsigned(n * n_head), merge_threads, size_t(n_split) * sizeof(float),
                           s>>>(scratch, n_split, hd, out, m_out, l_out);
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
