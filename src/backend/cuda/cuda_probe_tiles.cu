// Probe attention in tiles: a cut's probes (SnapKV's window, LAQ's lookahead
// queries, Judge Q's soft tokens) against every key of the prompt.
//
// probe_probs_kernel (cuda_attention.cu) gives one block to each (probe,
// query head): every block reads the head's whole key array, so a 32K prompt
// with 64 probes and 32 query heads reads each layer's keys 256 times. Here a
// block takes 64 query rows (probes x the query heads of one stored head)
// against a tile of 64 keys held in shared memory: keys are read once per 64
// rows. Three kernels:
//   scores: the scaled dot products of the visible rows into p, and each
//           row's maximum over the tile;
//   stats:  per (probe, head) the softmax maximum (the tiles' maxima and the
//           probe's own keys) and the sum of exponentials;
//   finish: the probabilities (into p when asked for) and their reduction
//           over the probes into out.
// Each dot product is summed in dimension order with fused multiply-adds and
// the sums of exponentials in the one-block kernel's order, so the values are
// those of probe_probs + probe_reduce bit for bit.
#include <algorithm>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kRows = 64;     // query rows per block
constexpr int kKeys = 64;     // keys per tile
constexpr int kQStride = kRows + 4;  // padded: the transposed writes of q spread over banks
constexpr int kThreads = 256;        // 16 x 16 threads, 4 x 4 outputs each

__device__ __forceinline__ const void* stored_head(const KvDev& kv, const void* base, int64_t s) {
  return static_cast<const uint8_t*>(base) +
         size_t(s * kv.capacity * kv.head_dim) * (kv.type == DType::F32 ? 4 : 2);
}

// Elements of type E (0 f32, 1 f16, 2 bf16) in one 16-byte load.
template <int E>
__device__ __forceinline__ void widen16(const uint4 raw, float* out) {
  if constexpr (E == 0) {
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
  } else {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint16_t lo = uint16_t(w[i] & 0xFFFF), hi = uint16_t(w[i] >> 16);
      out[2 * i] = E == 2 ? bf16_bits_to_f32(lo) : f16_bits_to_f32(lo);
      out[2 * i + 1] = E == 2 ? bf16_bits_to_f32(hi) : f16_bits_to_f32(hi);
    }
  }
}

// grid (key tiles, row chunks, stored heads). Dynamic shared memory: q
// transposed [HD][kQStride] and the key tile transposed [HD][kKeys], f32.
template <int HD, int E>
__global__ void __launch_bounds__(kThreads)
    probe_scores_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                        int64_t n_head, float* p, int64_t p_ld, float* tmax, int64_t n_tiles) {
  extern __shared__ float smem[];
  float* qs = smem;                 // [HD][kQStride]
  float* ks = smem + HD * kQStride;  // [HD][kKeys]
  __shared__ int64_t seen[kRows];
  __shared__ int64_t s_most;
  const int tid = threadIdx.x;
  const int64_t tile = blockIdx.x, s = blockIdx.z;
  const int64_t G = n_head / kv.n_stored, R = n_probe * G, r0 = int64_t(blockIdx.y) * kRows;
  const int64_t rows = kv_rows(kv, s), j0 = tile * kKeys;
  if (tid == 0) s_most = 0;
  __syncthreads();
  if (tid < kRows) {
    const int64_t r = r0 + tid;
    seen[tid] = r < R ? visible(kv.pos + s * kv.capacity, rows, query_pos(kv, q_pos, r / G)) : 0;
    atomicMax(reinterpret_cast<unsigned long long*>(&s_most), (unsigned long long)seen[tid]);
  }
  __syncthreads();
  if (j0 >= s_most) return;  // no row of this chunk sees the tile

  // q rows r0.. (probe r / G, query head s G + r % G), d fastest: coalesced reads.
  for (int i = tid; i < kRows * HD; i += kThreads) {
    const int r = i / HD, d = i % HD;
    const int64_t rr = r0 + r;
    qs[d * kQStride + r] = rr < R ? q[((rr / G) * n_head + s * G + rr % G) * HD + d] : 0.0f;
  }
  // keys j0.. in 16-byte pieces, consecutive threads on consecutive rows.
  constexpr int kPer = E == 0 ? 4 : 8, kPieces = HD / kPer;
  const uint8_t* K = static_cast<const uint8_t*>(stored_head(kv, kv.k, s));
  for (int i = tid; i < kKeys * kPieces; i += kThreads) {
    const int kk = i % kKeys, piece = i / kKeys;
    float v[8];
    if (j0 + kk < rows) {
      const uint4 raw = *reinterpret_cast<const uint4*>(
          K + (size_t(j0 + kk) * HD + size_t(piece) * kPer) * (E == 0 ? 4 : 2));
      widen16<E>(raw, v);
    } else {
#pragma unroll
      for (int e = 0; e < kPer; ++e) v[e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < kPer; ++e) ks[(piece * kPer + e) * kKeys + kk] = v[e];
  }
  __syncthreads();

  const int tx = tid % 16, ty = tid / 16;  // keys 4 tx.., rows 4 ty..
  float acc[4][4] = {};
#pragma unroll 8
  for (int d = 0; d < HD; ++d) {
    const float4 qa = *reinterpret_cast<const float4*>(qs + d * kQStride + 4 * ty);
    const float4 kb = *reinterpret_cast<const float4*>(ks + d * kKeys + 4 * tx);
    const float qv[4] = {qa.x, qa.y, qa.z, qa.w}, kv4[4] = {kb.x, kb.y, kb.z, kb.w};
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int b = 0; b < 4; ++b) acc[a][b] = fmaf(qv[a], kv4[b], acc[a][b]);
  }
  const float scale = 1.0f / sqrtf(float(HD));
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int r = 4 * ty + a;
    const int64_t rr = r0 + r;
    float mx = -INFINITY;
    if (rr < R) {
      const int64_t t = rr / G, h = s * G + rr % G;
      float* pr = p + (t * n_head + h) * p_ld;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int64_t j = j0 + 4 * tx + b;
        if (j < seen[r]) {
          const float x = acc[a][b] * scale;
          pr[j] = x;
          mx = fmaxf(mx, x);
        }
      }
    }
    // the 16 threads of a row are one half of a warp
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (tx == 0 && rr < R) tmax[((rr / G) * n_head + s * G + rr % G) * n_tiles + tile] = mx;
  }
}

// One block of 256 threads per (probe, head): the probe's own keys, the
// softmax maximum and the sum of exponentials (probe_probs_kernel's loop and
// block sum, so the same float).
__global__ void probe_stats_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n_head,
                                   const float* own_k, float* p, int64_t p_ld, const float* tmax,
                                   int64_t n_tiles, float* m_out, float* sum_out,
                                   int32_t* seen_out) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x / n_head, h = blockIdx.x % n_head;
  const int64_t hd = kv.head_dim, s = h / (n_head / kv.n_stored), n_kv = kv.n_stored / kv.repeat;
  const int64_t rows = kv_rows(kv, s);
  const int64_t seen = visible(kv.pos + s * kv.capacity, rows, query_pos(kv, q_pos, t));
  const int64_t n_own = own_k ? t + 1 : 0;
  const float scale = 1.0f / sqrtf(float(hd));
  float* pr = p + (t * n_head + h) * p_ld;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < n_own; i += blockDim.x) {
    const float* qt = q + (t * n_head + h) * hd;
    const float* k = own_k + (i * n_kv + s / kv.repeat) * hd;
    float dot = 0.0f;
    for (int64_t d = 0; d < hd; ++d) dot += qt[d] * k[d];
    pr[rows + i] = dot * scale;
    mx = fmaxf(mx, dot * scale);
  }
  const float* tm = tmax + (t * n_head + h) * n_tiles;
  for (int64_t i = threadIdx.x; i < ceil_div(seen, kKeys); i += blockDim.x) mx = fmaxf(mx, tm[i]);
  mx = block_max(mx, red);  // also orders the own scores' writes before the reads below
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < seen + n_own; j += blockDim.x) {
    const int64_t at = j < seen ? j : rows + (j - seen);
    sum += expf(pr[at] - mx);
  }
  sum = block_sum(sum, red);
  if (threadIdx.x == 0) {
    m_out[blockIdx.x] = mx;
    sum_out[blockIdx.x] = sum;
    seen_out[blockIdx.x] = int32_t(seen);
  }
}

// grid (column blocks of 128, heads): probabilities, written back into p
// when write_probs (0 where a probe sees nothing), reduced over the probes
// into out[h, j] for the stored head's rows (how: 0 sum, 1 mean, 2 max).
__global__ void probe_finish_kernel(KvDev kv, int64_t n_probe, int64_t n_head, bool own,
                                    float* p, int64_t p_ld, bool write_probs, const float* m,
                                    const float* sum, const int32_t* seen, float* out, int64_t ld,
                                    int how) {
  const int64_t h = blockIdx.y, j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t rows = kv_rows(kv, h / (n_head / kv.n_stored));
  const bool to_out = out && j < rows && j < ld;
  if (!to_out && !(write_probs && j < p_ld)) return;
  float acc = 0.0f;
  for (int64_t t = 0; t < n_probe; ++t) {
    const int64_t i = t * n_head + h;
    const int64_t n_own = own ? t + 1 : 0;
    const bool mine = j < seen[i] || (j >= rows && j < rows + n_own);
    float x = 0.0f;
    if (mine) {
      const float e = expf(p[i * p_ld + j] - m[i]);
      x = e / sum[i];
    }
    if (write_probs && j < p_ld) p[i * p_ld + j] = x;
    acc = how == 2 ? fmaxf(acc, x) : acc + x;
  }
  if (to_out) out[h * ld + j] = how == 1 && n_probe > 0 ? acc / float(n_probe) : acc;
}

template <int HD, int E>
void launch_scores(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                   int64_t n_head, float* p, int64_t p_ld, float* tmax, int64_t n_tiles,
                   cudaStream_t s) {
  constexpr size_t kSmem = size_t(HD) * (kQStride + kKeys) * sizeof(float);
  static const bool opted = [] {  // above 48 KB needs the opt-in, once per kernel
    cudaFuncSetAttribute(probe_scores_kernel<HD, E>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         int(kSmem));
    return true;
  }();
  (void)opted;
  const int64_t G = n_head / kv.n_stored;
  const dim3 grid(unsigned(n_tiles), unsigned(ceil_div(n_probe * G, kRows)), unsigned(kv.n_stored));
  probe_scores_kernel<HD, E><<<grid, kThreads, kSmem, s>>>(kv, q, q_pos, n_probe, n_head, p, p_ld,
                                                           tmax, n_tiles);
}

}  // namespace

bool probe_tiles_apply(const KvDev& kv) {
  return kv.head_dim == 64 || kv.head_dim == 128;
}

int64_t probe_tiles_scratch(int64_t n_probe, int64_t n_head, int64_t max_rows) {
  return n_probe * n_head * (ceil_div(max_rows, kKeys) + 3);
}

void probe_tiles(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                 int64_t n_head, const float* own_k, float* p, int64_t p_ld, bool write_probs,
                 float* out, int64_t ld, int how, int64_t max_rows, float* scratch,
                 cudaStream_t s) {
  if (n_probe <= 0) return;
  const int64_t n_tiles = std::max<int64_t>(1, ceil_div(max_rows, kKeys)), items = n_probe * n_head;
  float* tmax = scratch;
  float* m = tmax + items * n_tiles;
  float* sum = m + items;
  int32_t* seen = reinterpret_cast<int32_t*>(sum + items);
  const int e = kv.type == DType::F32 ? 0 : kv.type == DType::F16 ? 1 : 2;
#define KVSIEVE_SCORES(HD, E) \
  launch_scores<HD, E>(kv, q, q_pos, n_probe, n_head, p, p_ld, tmax, n_tiles, s)
  if (kv.head_dim == 128) {
    if (e == 0) KVSIEVE_SCORES(128, 0);
    else if (e == 1) KVSIEVE_SCORES(128, 1);
    else KVSIEVE_SCORES(128, 2);
  } else {
    if (e == 0) KVSIEVE_SCORES(64, 0);
    else if (e == 1) KVSIEVE_SCORES(64, 1);
    else KVSIEVE_SCORES(64, 2);
  }
#undef KVSIEVE_SCORES
  probe_stats_kernel<<<unsigned(items), 256, 0, s>>>(kv, q, q_pos, n_head, own_k, p, p_ld, tmax,
                                                     n_tiles, m, sum, seen);
  const int64_t width = std::max(write_probs ? p_ld : 0, out ? ld : 0);
  if (width <= 0) return;
  const dim3 grid(unsigned(ceil_div(width, 128)), unsigned(n_head));
  probe_finish_kernel<<<grid, 128, 0, s>>>(kv, n_probe, n_head, own_k != nullptr, p, p_ld,
                                           write_probs, m, sum, seen, out, ld, how);
}

}  // namespace kvsieve::cuda
