// The forward pass's row and element ops on the GPU: embedding gather,
// RMSNorm, RoPE, SwiGLU, residual add, scaling. Each follows the CPU
// reference's order of operations (backend/cpu/ops_ref.cpp).
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) { return unsigned(ceil_div(n, kThreads)); }

__global__ void embed_kernel(DType t, const uint8_t* table, size_t row_bytes, const int32_t* ids,
                             int64_t cols, float* out) {
  const int64_t row = blockIdx.y;
  const uint8_t* src = table + size_t(ids[row]) * row_bytes;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < cols;
       j += int64_t(gridDim.x) * blockDim.x)
    out[row * cols + j] = load_weight(t, src, j);
}

// One block per row: the mean square in f32, then (x·scale)·w as the CPU.
__global__ void rmsnorm_kernel(const float* x, const float* w, float* out, int64_t dim,
                               float eps) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * dim;
  float* o = out + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, red);
  const float sc = 1.0f / sqrtf(ss / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = (xr[i] * sc) * w[i];
}

// One thread per rotated pair: (a, b) -> (a·cos - b·sin, b·cos + a·sin).
__global__ void rope_kernel(float* x, int64_t n, int64_t n_heads, int64_t hd, const float* cos,
                            const float* sin, bool neox) {
  const int64_t half = hd / 2;
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n * n_heads * half) return;
  const int64_t pair = i % half, th = i / half, t = th / n_heads;
  float* row = x + th * hd;
  const int64_t ia = neox ? pair : 2 * pair, ib = neox ? pair + half : 2 * pair + 1;
  const float c = cos[t * half + pair], s = sin[t * half + pair];
  const float a = row[ia], b = row[ib];
  row[ia] = a * c - b * s;
  row[ib] = b * c + a * s;
}

__global__ void swiglu_kernel(const float* g, const float* u, float* out, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const float x = g[i];
  out[i] = x / (1.0f + expf(-x)) * u[i];
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float f, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n) x[i] *= f;
}

}  // namespace

void embed(DType t, const void* table, size_t row_bytes, const int32_t* ids, int64_t n,
           int64_t cols, float* out, cudaStream_t s) {
  if (n <= 0) return;
  const dim3 grid(unsigned(std::min<int64_t>(ceil_div(cols, kThreads), 64)), unsigned(n));
  embed_kernel<<<grid, kThreads, 0, s>>>(t, static_cast<const uint8_t*>(table), row_bytes, ids,
                                         cols, out);
}

void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim, float eps,
             cudaStream_t s) {
  if (rows <= 0) return;
  rmsnorm_kernel<<<unsigned(rows), kThreads, 0, s>>>(x, w, out, dim, eps);
}

void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
          const float* sin, bool neox, cudaStream_t s) {
  const int64_t pairs = n * n_heads * (head_dim / 2);
  if (pairs <= 0) return;
  rope_kernel<<<grid_for(pairs), kThreads, 0, s>>>(x, n, n_heads, head_dim, cos, sin, neox);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s) {
  if (n > 0) swiglu_kernel<<<grid_for(n), kThreads, 0, s>>>(gate, up, out, n);
}

void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t s) {
  if (n > 0) add_kernel<<<grid_for(n), kThreads, 0, s>>>(a, b, out, n);
}

void scale(float* x, float f, int64_t n, cudaStream_t s) {
  if (n > 0) scale_kernel<<<grid_for(n), kThreads, 0, s>>>(x, f, n);
}

}  // namespace kvsieve::cuda
