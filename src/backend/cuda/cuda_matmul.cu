// Weight products on the GPU that cuBLAS does not do for us: decoding a
// weight matrix of any type to f32 (for the cuBLAS product of a prefill
// chunk), and the matrix-vector products of decode, which read each weight
// once, decode it in registers and accumulate in f32.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxVecs = 8;  // rows of x one matvec launch handles

__global__ void dequantize_kernel(DType t, const uint8_t* W, size_t row_bytes, int64_t rows,
                                  int64_t cols, float* out) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    out[i] = load_weight(t, W + size_t(r) * row_bytes, c);
  }
}

// One warp per output row r: lanes stride over the columns (each quant
// block's 32 values are read by the 32 lanes together), then a warp sum.
template <int NV>
__global__ void matvec_kernel(DType t, const uint8_t* W, size_t row_bytes, int64_t rows,
                              int64_t cols, const float* x, float* y, const float* bias) {
  const int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const uint8_t* wr = W + size_t(r) * row_bytes;
  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; ++v) acc[v] = 0.0f;
  for (int64_t c = lane; c < cols; c += 32) {
    const float w = load_weight(t, wr, c);
#pragma unroll
    for (int v = 0; v < NV; ++v) acc[v] += w * x[v * cols + c];
  }
#pragma unroll
  for (int v = 0; v < NV; ++v) {
    const float sum = warp_sum(acc[v]);
    if (lane == 0) y[v * rows + r] = sum + (bias ? bias[r] : 0.0f);
  }
}

template <int NV>
void launch_matvec(DType t, const void* W, size_t row_bytes, int64_t rows, int64_t cols,
                   const float* x, float* y, const float* bias, cudaStream_t s) {
  const int warps = kThreads / 32;
  matvec_kernel<NV><<<unsigned(ceil_div(rows, warps)), kThreads, 0, s>>>(
      t, static_cast<const uint8_t*>(W), row_bytes, rows, cols, x, y, bias);
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t n, int64_t rows) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < n * rows) y[i] += bias[i % rows];
}

}  // namespace

void dequantize(DType t, const void* W, int64_t rows, int64_t cols, float* out, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  dequantize_kernel<<<unsigned(std::min<int64_t>(ceil_div(n, kThreads), 65535)), kThreads, 0, s>>>(
      t, static_cast<const uint8_t*>(W), dtype_row_bytes(t, cols), rows, cols, out);
}

void matvec(DType t, const void* W, int64_t rows, int64_t cols, const float* x, int64_t n,
            float* y, const float* bias, cudaStream_t s) {
  const size_t rb = dtype_row_bytes(t, cols);
  for (int64_t done = 0; done < n; done += kMaxVecs) {
    const int64_t m = std::min<int64_t>(kMaxVecs, n - done);
    const float* xs = x + done * cols;
    float* ys = y + done * rows;
    switch (m) {
      case 1: launch_matvec<1>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 2: launch_matvec<2>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 3: launch_matvec<3>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 4: launch_matvec<4>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 5: launch_matvec<5>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 6: launch_matvec<6>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      case 7: launch_matvec<7>(t, W, rb, rows, cols, xs, ys, bias, s); break;
      default: launch_matvec<8>(t, W, rb, rows, cols, xs, ys, bias, s); break;
    }
  }
}

void add_bias(float* y, const float* bias, int64_t n, int64_t rows, cudaStream_t s) {
  if (n * rows > 0)
    add_bias_kernel<<<unsigned(ceil_div(n * rows, kThreads)), kThreads, 0, s>>>(y, bias, n, rows);
}

}  // namespace kvsieve::cuda
