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

// The same with the row held in registers, kPer float4s per thread of a
// 1024-thread block, every load issued before the first is used: a decode
// step's single row took 14 µs in the loop above, each of its 16 iterations
// waiting for its load.
constexpr int kNormThreads = 1024;
// With d: x += d first (the residual add before the next norm), written
// back to x, in the same launch.
template <int kPer>
__global__ void __launch_bounds__(kNormThreads)
    rmsnorm4_kernel(float4* x, const float4* d, const float4* w, float4* out, int64_t dim4,
                    float eps) {
  __shared__ float red[32];
  float4* xr = x + blockIdx.x * dim4;
  float4* o = out + blockIdx.x * dim4;
  float4 v[kPer];
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * kNormThreads;
    v[k] = i < dim4 ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (d && i < dim4) {
      const float4 e = d[blockIdx.x * dim4 + i];
      v[k] = make_float4(v[k].x + e.x, v[k].y + e.y, v[k].z + e.z, v[k].w + e.w);
      xr[i] = v[k];
    }
    ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
  }
  ss = block_sum(ss, red);
  const float sc = 1.0f / sqrtf(ss / float(4 * dim4) + eps);
#pragma unroll
  for (int k = 0; k < kPer; ++k) {
    const int64_t i = threadIdx.x + int64_t(k) * kNormThreads;
    if (i < dim4) {
      const float4 g = w[i];
      o[i] = make_float4((v[k].x * sc) * g.x, (v[k].y * sc) * g.y, (v[k].z * sc) * g.z,
                         (v[k].w * sc) * g.w);
    }
  }
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

static bool rmsnorm_fused(float* x, const float* d, const float* w, float* out, int64_t rows,
                   int64_t dim, float eps, cudaStream_t s) {
  const auto al = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const int64_t dim4 = dim / 4, per = ceil_div(dim4, kNormThreads);
  if (dim % 4 != 0 || !al(x) || !al(d) || !al(w) || !al(out) || per > 4) return false;
  auto* x4 = reinterpret_cast<float4*>(x);
  const auto* d4 = reinterpret_cast<const float4*>(d);
  const auto* w4 = reinterpret_cast<const float4*>(w);
  auto* o4 = reinterpret_cast<float4*>(out);
  if (per <= 1) rmsnorm4_kernel<1><<<unsigned(rows), kNormThreads, 0, s>>>(x4, d4, w4, o4, dim4, eps);
  else if (per <= 2) rmsnorm4_kernel<2><<<unsigned(rows), kNormThreads, 0, s>>>(x4, d4, w4, o4, dim4, eps);
  else rmsnorm4_kernel<4><<<unsigned(rows), kNormThreads, 0, s>>>(x4, d4, w4, o4, dim4, eps);
  return true;
}

void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim, float eps,
             cudaStream_t s) {
  if (rows <= 0) return;
  // x is only written when d is given.
  if (!rmsnorm_fused(const_cast<float*>(x), nullptr, w, out, rows, dim, eps, s))
    rmsnorm_kernel<<<unsigned(rows), kThreads, 0, s>>>(x, w, out, dim, eps);
}

void add_rmsnorm(float* x, const float* d, const float* w, float* out, int64_t rows, int64_t dim,
                 float eps, cudaStream_t s) {
  if (rows <= 0) return;
  if (rmsnorm_fused(x, d, w, out, rows, dim, eps, s)) return;
  add(x, d, x, rows * dim, s);
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
