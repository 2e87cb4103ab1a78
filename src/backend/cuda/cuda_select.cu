// The rows a cut keeps, chosen on the GPU with the CPU's rule
// (core/select.cpp): per head, the first `sinks` and last `window` rows, then
// the k best-scored others; ties go to the earlier row, NaN is worst; the
// indices come out increasing. One block per head:
//   1. scores become 32-bit keys whose unsigned order is the score order
//      (NaN lowest, -0 and +0 equal, as `>` sees them);
//   2. a radix select, 8 bits a pass, finds the key T of the k-th best
//      candidate and how many candidates beat it;
//   3. one ordered pass writes every protected row, every candidate above T,
//      and the first (k - above) candidates equal to T, by a block scan.
// Only the scores' head rows are read (five times, from L2 after the first).
#include <cub/block/block_scan.cuh>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kSelectThreads = 1024;

__device__ __forceinline__ uint32_t order_key(float x) {
  if (isnan(x)) return 0u;
  if (x == 0.0f) x = 0.0f;  // -0 ties with +0
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // -inf maps to 0x007FFFFF > NaN's 0
}

__global__ void __launch_bounds__(kSelectThreads)
    select_kernel(const float* scores, int64_t ld, SelectHeads heads, int64_t sinks,
                  int64_t window, int64_t* out) {
  using Scan = cub::BlockScan<int, kSelectThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ int64_t s_need;
  __shared__ int64_t s_carry_out, s_carry_tie;
  const int64_t h = blockIdx.x;
  const float* sc = scores + h * ld;
  const int64_t n = heads.rows[h], budget = heads.budget[h];
  int64_t* dst = out + heads.off[h];
  const int tid = threadIdx.x;
  if (budget >= n) {  // every row
    for (int64_t j = tid; j < n; j += blockDim.x) dst[j] = j;
    return;
  }
  const int64_t s0 = min(sinks, n), w0 = max(s0, n - window);  // candidates [s0, w0)
  const int64_t protected_rows = min(n, s0 + min(window, n));
  const int64_t k = budget - protected_rows;  // candidates to keep (the host checked >= 0)

  // ---- radix select: T = the k-th largest key among the candidates
  uint32_t prefix = 0, mask = 0;
  int64_t need = k;  // how many of the keys matching prefix under mask are still to take
  for (int shift = 24; shift >= 0 && k > 0; shift -= 8) {
    for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    for (int64_t j = s0 + tid; j < w0; j += blockDim.x) {
      const uint32_t key = order_key(sc[j]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xFF], 1);
    }
    __syncthreads();
    if (tid == 0) {  // from the top digit down to the one where the k-th lies
      int64_t above = 0;
      int d = 255;
      for (; d > 0; --d) {
        if (above + hist[d] >= need) break;
        above += hist[d];
      }
      s_prefix = prefix | (uint32_t(d) << shift);
      s_need = need - above;
    }
    __syncthreads();
    prefix = s_prefix;
    need = s_need;
    mask |= 0xFFu << shift;
  }
  // k == 0: no candidate is kept; T above every key keeps none.
  const uint32_t T = prefix;
  const int64_t take_ties = need;  // candidates equal to T to keep, in row order

  // ---- ordered compaction of the kept rows
  if (tid == 0) s_carry_out = s_carry_tie = 0;
  __syncthreads();
  for (int64_t base = 0; base < n; base += blockDim.x) {
    const int64_t j = base + tid;
    int keep = 0, tie = 0;
    if (j < n) {
      if (j < s0 || j >= w0) {
        keep = 1;
      } else if (k > 0) {
        const uint32_t key = order_key(sc[j]);
        keep = key > T;
        tie = key == T;
      }
    }
    int tie_rank, tie_total;
    Scan(scan_tmp).ExclusiveSum(tie, tie_rank, tie_total);
    __syncthreads();
    if (tie && s_carry_tie + tie_rank < take_ties) keep = 1;
    int at, kept_total;
    Scan(scan_tmp).ExclusiveSum(keep, at, kept_total);
    if (keep) dst[s_carry_out + at] = j;
    __syncthreads();
    if (tid == 0) {
      s_carry_out += kept_total;
      s_carry_tie += tie_total;
    }
    __syncthreads();
  }
}

}  // namespace

void select_rows(const float* scores, int64_t n_heads, int64_t ld, const SelectHeads& heads,
                 int64_t sinks, int64_t window, int64_t* out, cudaStream_t s) {
  if (n_heads <= 0) return;
  select_kernel<<<unsigned(n_heads), kSelectThreads, 0, s>>>(scores, ld, heads, sinks, window,
                                                             out);
}

}  // namespace kvsieve::cuda
