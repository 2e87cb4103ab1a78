// Ada-KV's split of a layer's budget across its heads (kvpress's rule,
// core/adakv_split.cpp is the reference), on the GPU: only the per-head
// counts come out (one block per layer, all layers in one launch); the rows themselves are chosen afterwards by the select
// kernel, as on the CPU.
//
// The rule: every cut head keeps its protected rows and its best `extra`
// candidates; the k remaining slots of the layer go to the best of the other
// candidates of all heads, ordered by score (higher first, NaN last), then
// head, then row. Only how many each head gets matters, so no candidate list
// is built. A head's leftover candidates are its candidates minus its top
// `extra`, so the number of leftovers with a key >= x is
// max(0, C_h(>= x) - extra_h), where C_h counts all the head's candidates:
// a radix select over the layer's candidates with per-head histograms finds
// the key T of the k-th leftover; the heads then get their leftovers above
// T, and the ties at T go to the lower heads first.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kAdaThreads = 1024;

// Same order as select's keys: unsigned order is score order, NaN lowest,
// -0 and +0 equal.
__device__ __forceinline__ uint32_t ada_key(float x) {
  if (isnan(x)) return 0u;
  if (x == 0.0f) x = 0.0f;
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void __launch_bounds__(kAdaThreads)
    adakv_kernel(AdaKvLayers layers, int H, int64_t sinks, int64_t window, int64_t* out_all) {
  __shared__ int hist[kMaxAdaKvHeads][256];  // per head: digit counts, then suffix sums
  __shared__ int64_t s_lo[kMaxAdaKvHeads], s_hi[kMaxAdaKvHeads], s_extra[kMaxAdaKvHeads];
  __shared__ int64_t s_above[kMaxAdaKvHeads], s_eq[kMaxAdaKvHeads];
  __shared__ int64_t s_k;
  __shared__ int s_digit;
  const int tid = threadIdx.x, lane = tid & 31;
  const int64_t layer = blockIdx.x;
  const float* scores = layers.scores[layer];
  const int64_t ld = layers.ld[layer], keep = layers.keep[layer], safe = layers.safe[layer];
  const int64_t* rows = layers.rows + layer * H;
  int64_t* out = out_all + layer * H;
  if (tid < H) {
    const int64_t n = rows[tid];
    const int64_t lo = min(sinks, n), hi = max(lo, n - window);
    const bool cut = keep < n;
    const int64_t prot = n - (hi - lo);
    s_lo[tid] = lo;
    s_hi[tid] = cut ? hi : lo;  // a head that is not cut offers no candidates
    s_extra[tid] = cut ? min(max(safe - prot, int64_t(0)), hi - lo) : 0;
    s_above[tid] = 0;
    s_eq[tid] = 0;
  }
  __syncthreads();
  if (tid == 0) {
    int64_t forced = 0, rest = 0;
    for (int h = 0; h < H; ++h) {
      const int64_t n = rows[h];
      if (keep >= n) {
        forced += keep;  // the head's share is spent on itself
      } else {
        const int64_t cand = s_hi[h] - s_lo[h];
        forced += (n - cand) + s_extra[h];
        rest += cand - s_extra[h];
      }
    }
    s_k = min(max(keep * H - forced, int64_t(0)), rest);
  }
  __syncthreads();
  const int64_t k = s_k;

  uint32_t prefix = 0, mask = 0;
  for (int shift = 24; shift >= 0 && k > 0; shift -= 8) {
    for (int i = tid; i < H * 256; i += blockDim.x) hist[i / 256][i % 256] = 0;
    __syncthreads();
    for (int h = 0; h < H; ++h) {
      const float* sc = scores + h * ld;
      const int64_t lo = s_lo[h], hi = s_hi[h];
      for (int64_t base = lo; base < hi; base += blockDim.x) {
        const int64_t j = base + tid;
        int bin = -1;
        if (j < hi) {
          const uint32_t key = ada_key(sc[j]);
          if ((key & mask) == prefix) bin = int((key >> shift) & 0xFFu);
        }
        // Scores crowd into few digits (the top byte is sign and exponent):
        // one atomic per distinct digit of the warp, not per lane.
        const unsigned peers = __match_any_sync(__activemask(), bin);
        if (bin >= 0 && lane == __ffs(peers) - 1) atomicAdd(&hist[h][bin], __popc(peers));
      }
    }
    __syncthreads();
    if (tid < H) {
      int acc = 0;
      for (int d = 255; d >= 0; --d) hist[tid][d] = acc += hist[tid][d];
    }
    if (tid == 0) s_digit = 0;
    __syncthreads();
    if (tid < 256) {  // leftovers with this digit or a higher one; the largest d reaching k
      int64_t f = 0;
      for (int h = 0; h < H; ++h) f += max(int64_t(0), s_above[h] + hist[h][tid] - s_extra[h]);
      if (f >= k) atomicMax(&s_digit, tid);
    }
    __syncthreads();
    const int d = s_digit;
    if (tid < H) {
      const int higher = d < 255 ? hist[tid][d + 1] : 0;
      s_above[tid] += higher;
      s_eq[tid] = hist[tid][d] - higher;
    }
    prefix |= uint32_t(d) << shift;
    mask |= 0xFFu << shift;
    __syncthreads();
  }

  if (tid == 0) {
    // s_above: candidates above T; s_eq: equal to T (after the last pass).
    int64_t need = k;
    for (int h = 0; h < H; ++h) need -= k > 0 ? max(int64_t(0), s_above[h] - s_extra[h]) : 0;
    for (int h = 0; h < H; ++h) {
      const int64_t n = rows[h];
      if (keep >= n) {
        out[h] = n;
        continue;
      }
      int64_t got = 0;
      if (k > 0) {
        got = max(int64_t(0), s_above[h] - s_extra[h]);
        // the head's own top takes its earliest ties first
        const int64_t ties = max(int64_t(0), s_eq[h] - max(int64_t(0), s_extra[h] - s_above[h]));
        const int64_t take = min(ties, need);
        got += take;
        need -= take;
      }
      out[h] = (n - (s_hi[h] - s_lo[h])) + s_extra[h] + got;
    }
  }
}

}  // namespace

void adakv_split(const AdaKvLayers& layers, int64_t n_layers, int64_t n_heads, int64_t sinks,
                 int64_t window, int64_t* out, cudaStream_t s) {
  if (n_layers <= 0 || n_heads <= 0) return;
  adakv_kernel<<<unsigned(n_layers), kAdaThreads, 0, s>>>(layers, int(n_heads), sinks, window, out);
}

}  // namespace kvsieve::cuda
