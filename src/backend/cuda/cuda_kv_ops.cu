// The KV store's and the eviction pipeline's ops on the GPU: append with
// conversion to the store's type, row gathers (retain and cuts), reading
// keys back in f32, key norms, pooling along rows and query-group reduction.
#include <type_traits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ size_t elem_size(DType t) { return t == DType::F32 ? 4 : 2; }

// One thread per (stored head, token, dim), for K and V.
__global__ void kv_append_kernel(KvDev kv, uint8_t* k_dst, uint8_t* v_dst, const float* k,
                                 const float* v, const int32_t* pos, int64_t n,
                                 int64_t n_head_kv) {
  const int64_t hd = kv.head_dim;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= kv.n_stored * n * hd) return;
  const int64_t d = i % hd, t = (i / hd) % n, s = i / (hd * n);
  const int64_t g = s / kv.repeat, row = kv_rows(kv, s) + t;
  const int64_t src = (t * n_head_kv + g) * hd + d;
  const size_t at = size_t((s * kv.capacity + row) * hd) * elem_size(kv.type);
  store_elem(kv.type, k_dst + at, d, k[src]);
  store_elem(kv.type, v_dst + at, d, v[src]);
  if (d == 0) const_cast<int32_t*>(kv.pos)[s * kv.capacity + row] = query_pos(kv, pos, t);
}

// Block (x: rows, y: head); words of 4 or 2 bytes, or bytes.
template <typename W>
__global__ void gather_kernel(const W* src, W* dst, int64_t src_div, int64_t sel_div,
                              int64_t ld_src, int64_t ld_dst, int64_t words, const int64_t* idx,
                              const int64_t* off) {
  const int64_t h = blockIdx.y, sel = h / sel_div, from = h / src_div;
  const int64_t first = off[sel], cnt = off[sel + 1] - first;
  const int64_t total = cnt * words;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i / words, w = i % words;
    dst[(h * ld_dst + j) * words + w] = src[(from * ld_src + idx[first + j]) * words + w];
  }
}

__global__ void read_keys_kernel(KvDev kv, int64_t first, int64_t n, float* out) {
  const int64_t hd = kv.head_dim, n_kv = kv.n_stored / kv.repeat;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n * n_kv * hd) return;
  const int64_t d = i % hd, g = (i / hd) % n_kv, r = i / (hd * n_kv);
  const int64_t s = g * kv.repeat;
  const uint8_t* row = static_cast<const uint8_t*>(kv.k) +
                       size_t((s * kv.capacity + first + r) * hd) * elem_size(kv.type);
  out[i] = load_elem(kv.type, row, d);
}

// One warp per (stored head, row).
__global__ void key_norms_kernel(KvDev kv, float* out, int64_t ld) {
  const int64_t hd = kv.head_dim;
  const int64_t w = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int64_t s = w / kv.capacity, j = w % kv.capacity;
  if (s >= kv.n_stored || j >= kv_rows(kv, s)) return;
  const uint8_t* row = static_cast<const uint8_t*>(kv.k) +
                       size_t((s * kv.capacity + j) * hd) * elem_size(kv.type);
  float ss = 0.0f;
  for (int64_t d = lane; d < hd; d += 32) {
    const float x = load_elem(kv.type, row, d);
    ss += x * x;
  }
  ss = warp_sum(ss);
  if (lane == 0) out[s * ld + j] = sqrtf(ss);
}

// torch's max_pool1d / avg_pool1d (count_include_pad), stride 1, padding
// kernel/2, over rows [0, len); rows [len, rows) copied.
__global__ void pool_kernel(const float* in, float* out, int64_t ld, const int64_t* len,
                            const int64_t* rows, int64_t kernel, int kind) {
  const int64_t h = blockIdx.y;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= rows[h]) return;
  const float* x = in + h * ld;
  const int64_t n = len[h] < rows[h] ? len[h] : rows[h];
  if (kind == 0 || kernel == 1 || i >= n) {
    out[h * ld + i] = x[i];
    return;
  }
  const int64_t r = kernel / 2;
  const int64_t lo = i - r > 0 ? i - r : 0, hi = i + r < n - 1 ? i + r : n - 1;
  if (kind == 1) {
    float m = -INFINITY;
    for (int64_t j = lo; j <= hi; ++j) m = fmaxf(m, x[j]);
    out[h * ld + i] = m;
  } else {
    float s = 0.0f;
    for (int64_t j = lo; j <= hi; ++j) s += x[j];
    out[h * ld + i] = s / float(kernel);
  }
}

__global__ void reduce_groups_kernel(const float* in, float* out, int64_t group, int64_t ld,
                                     const int64_t* rows, int how) {
  const int64_t g = blockIdx.y;
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= rows[g]) return;
  float acc = in[(g * group) * ld + j];
  for (int64_t i = 1; i < group; ++i) {
    const float x = in[(g * group + i) * ld + j];
    acc = how == 2 ? fmaxf(acc, x) : acc + x;
  }
  if (how == 1) acc /= float(group);
  out[g * ld + j] = acc;
}

}  // namespace

void kv_append(const KvDev& kv, void* k_dst, void* v_dst, const float* k, const float* v,
               const int32_t* pos, int64_t n, int64_t n_head_kv, cudaStream_t s) {
  const int64_t total = kv.n_stored * n * kv.head_dim;
  if (total <= 0) return;
  kv_append_kernel<<<unsigned(ceil_div(total, kThreads)), kThreads, 0, s>>>(
      kv, static_cast<uint8_t*>(k_dst), static_cast<uint8_t*>(v_dst), k, v, pos, n, n_head_kv);
}

void gather(const void* src, void* dst, int64_t n_heads, int64_t src_div, int64_t sel_div,
            int64_t ld_src, int64_t ld_dst, size_t row_bytes, const int64_t* idx,
            const int64_t* off, int64_t max_count, cudaStream_t s) {
  if (n_heads <= 0 || max_count <= 0 || row_bytes == 0) return;
  auto launch = [&](auto* typed_src, size_t word) {
    using W = std::remove_const_t<std::remove_pointer_t<decltype(typed_src)>>;
    const int64_t words = int64_t(row_bytes / word);
    const dim3 grid(unsigned(std::min<int64_t>(ceil_div(max_count * words, kThreads), 4096)),
                    unsigned(n_heads));
    gather_kernel<W><<<grid, kThreads, 0, s>>>(typed_src, static_cast<W*>(dst), src_div, sel_div,
                                               ld_src, ld_dst, words, idx, off);
  };
  if (row_bytes % 4 == 0) launch(static_cast<const uint32_t*>(src), 4);
  else if (row_bytes % 2 == 0) launch(static_cast<const uint16_t*>(src), 2);
  else launch(static_cast<const uint8_t*>(src), 1);
}

void read_keys(const KvDev& kv, int64_t first, int64_t n, float* out, cudaStream_t s) {
  const int64_t total = n * (kv.n_stored / kv.repeat) * kv.head_dim;
  if (total <= 0) return;
  read_keys_kernel<<<unsigned(ceil_div(total, kThreads)), kThreads, 0, s>>>(kv, first, n, out);
}

void key_norms(const KvDev& kv, float* out, int64_t ld, cudaStream_t s) {
  const int64_t warps = kv.n_stored * kv.capacity;
  if (warps <= 0) return;
  key_norms_kernel<<<unsigned(ceil_div(warps, kThreads / 32)), kThreads, 0, s>>>(kv, out, ld);
}

void pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
          const int64_t* rows, int64_t kernel, int kind, int64_t max_rows, cudaStream_t s) {
  if (n_heads <= 0 || max_rows <= 0) return;
  const dim3 grid(unsigned(ceil_div(max_rows, kThreads)), unsigned(n_heads));
  pool_kernel<<<grid, kThreads, 0, s>>>(in, out, ld, len, rows, kernel, kind);
}

void reduce_groups(const float* in, float* out, int64_t n_out, int64_t group, int64_t ld,
                   const int64_t* rows, int how, int64_t max_rows, cudaStream_t s) {
  if (n_out <= 0 || max_rows <= 0) return;
  const dim3 grid(unsigned(ceil_div(max_rows, kThreads)), unsigned(n_out));
  reduce_groups_kernel<<<grid, kThreads, 0, s>>>(in, out, group, ld, rows, how);
}

}  // namespace kvsieve::cuda
