// Weight products on the GPU that cuBLAS does not do for us: decoding a
// weight matrix of any type to f32 or to f16 (for the cuBLAS product of a
// prefill chunk), rounding activations to 16 bits for the tensor cores, and
// the matrix-vector products of decode, which read each weight once, decode
// it in registers and accumulate in f32.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxVecs = 8;  // rows of x one matvec launch handles

// Out: float, or uint16_t for the values rounded to f16 (to nearest even).
template <typename Out>
__global__ void dequantize_kernel(DType t, const uint8_t* W, size_t row_bytes, int64_t rows,
                                  int64_t cols, Out* out) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const float w = load_weight(t, W + size_t(r) * row_bytes, c);
    if constexpr (sizeof(Out) == 4) out[i] = w;
    else out[i] = f32_to_f16_bits(w);
  }
}

template <typename Out>
void launch_dequantize(DType t, const void* W, int64_t rows, int64_t cols, Out* out,
                       cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n <= 0) return;
  dequantize_kernel<Out><<<unsigned(std::min<int64_t>(ceil_div(n, kThreads), 65535)), kThreads, 0,
                           s>>>(t, static_cast<const uint8_t*>(W), dtype_row_bytes(t, cols), rows,
                                cols, out);
}

// Four values per thread (n a multiple of 4 is the common case; the tail
// is done one by one).
template <bool kBf16>
__global__ void round_half_kernel(const float* x, int64_t n, uint16_t* out) {
  const int64_t n4 = n / 4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    const float f[4] = {v.x, v.y, v.z, v.w};
    uint16_t h[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) h[k] = kBf16 ? f32_to_bf16_bits(f[k]) : f32_to_f16_bits(f[k]);
    reinterpret_cast<ushort4*>(out)[i] = make_ushort4(h[0], h[1], h[2], h[3]);
  }
  if (blockIdx.x == 0)
    for (int64_t i = n4 * 4 + threadIdx.x; i < n; i += blockDim.x)
      out[i] = kBf16 ? f32_to_bf16_bits(x[i]) : f32_to_f16_bits(x[i]);
}

template <bool kBf16>
__global__ void round_half_scalar_kernel(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = kBf16 ? f32_to_bf16_bits(x[i]) : f32_to_f16_bits(x[i]);
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

// The same for 16-bit weights read 16 bytes (8 values) per lane at a time,
// so a warp reads 512 contiguous bytes per step: decode is bound by the
// weights' bandwidth, and 2-byte loads leave most of it unused. One launch
// does the products of the same x by up to kMaxJobs weights (a layer's Q, K
// and V; gate and up): their rows are numbered one after the other, so the
// small K and V products fill the GPU together with Q instead of alone.
// Needs cols % 8 == 0 and 16-byte aligned W and x.
template <int NV, bool kBf16>
__global__ void matvec16_kernel(Matvec16Jobs jobs, int64_t cols, const float* x) {
  const int64_t r_all = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r_all >= jobs.first[jobs.n]) return;
  int j = 0;
  while (j + 1 < jobs.n && r_all >= jobs.first[j + 1]) ++j;
  const int64_t r = r_all - jobs.first[j], rows = jobs.first[j + 1] - jobs.first[j];
  const int64_t n8 = cols / 8;
  const uint4* wr = static_cast<const uint4*>(jobs.w[j]) + r * n8;
  float acc[NV];
#pragma unroll
  for (int v = 0; v < NV; ++v) acc[v] = 0.0f;
#pragma unroll 4
  for (int64_t c = lane; c < n8; c += 32) {
    const uint4 raw = __ldg(wr + c);
    const uint32_t word[4] = {raw.x, raw.y, raw.z, raw.w};
    float w[8];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint16_t lo = uint16_t(word[k] & 0xFFFF), hi = uint16_t(word[k] >> 16);
      w[2 * k] = kBf16 ? bf16_bits_to_f32(lo) : f16_bits_to_f32(lo);
      w[2 * k + 1] = kBf16 ? bf16_bits_to_f32(hi) : f16_bits_to_f32(hi);
    }
#pragma unroll
    for (int v = 0; v < NV; ++v) {
      const float4 a = reinterpret_cast<const float4*>(x + v * cols)[2 * c];
      const float4 b = reinterpret_cast<const float4*>(x + v * cols)[2 * c + 1];
      acc[v] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
                w[6] * b.z + w[7] * b.w;
    }
  }
  const float* bias = jobs.bias[j];
  float* y = jobs.y[j];
#pragma unroll
  for (int v = 0; v < NV; ++v) {
    const float sum = warp_sum(acc[v]);
    if (lane == 0) y[v * rows + r] = sum + (bias ? bias[r] : 0.0f);
  }
}

bool wide16(DType t, const void* W, int64_t cols, const float* x) {
  return (t == DType::F16 || t == DType::BF16) && cols % 8 == 0 &&
         reinterpret_cast<uintptr_t>(W) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
}

template <int NV>
void launch_matvec16(bool bf16, const Matvec16Jobs& jobs, int64_t cols, const float* x,
                     cudaStream_t s) {
  const int warps = kThreads / 32;
  const unsigned blocks = unsigned(ceil_div(jobs.first[jobs.n], warps));
  if (bf16) matvec16_kernel<NV, true><<<blocks, kThreads, 0, s>>>(jobs, cols, x);
  else matvec16_kernel<NV, false><<<blocks, kThreads, 0, s>>>(jobs, cols, x);
}

template <int NV>
void launch_matvec(DType t, const void* W, size_t row_bytes, int64_t rows, int64_t cols,
                   const float* x, float* y, const float* bias, cudaStream_t s) {
  if (wide16(t, W, cols, x)) {
    Matvec16Jobs jobs;
    jobs.n = 1;
    jobs.w[0] = W;
    jobs.y[0] = y;
    jobs.bias[0] = bias;
    jobs.first[1] = rows;
    launch_matvec16<NV>(t == DType::BF16, jobs, cols, x, s);
    return;
  }
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
  launch_dequantize(t, W, rows, cols, out, s);
}

void dequantize_f16(DType t, const void* W, int64_t rows, int64_t cols, uint16_t* out,
                    cudaStream_t s) {
  launch_dequantize(t, W, rows, cols, out, s);
}

void round_to_half(const float* x, int64_t n, uint16_t* out, bool bf16, cudaStream_t s) {
  if (n <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>(std::max<int64_t>(ceil_div(n / 4, kThreads), 1), 65535));
  // float4 loads need 16-byte alignment: device buffers are 256-byte aligned,
  // but x may point inside one.
  const bool aligned =
      reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 8 == 0;
  const unsigned b = aligned ? blocks : unsigned(std::min<int64_t>(ceil_div(n, kThreads), 65535));
  if (bf16) {
    if (aligned) round_half_kernel<true><<<b, kThreads, 0, s>>>(x, n, out);
    else round_half_scalar_kernel<true><<<b, kThreads, 0, s>>>(x, n, out);
  } else {
    if (aligned) round_half_kernel<false><<<b, kThreads, 0, s>>>(x, n, out);
    else round_half_scalar_kernel<false><<<b, kThreads, 0, s>>>(x, n, out);
  }
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

bool matvec16_fits(DType t, const void* W, int64_t cols, const float* x) {
  return wide16(t, W, cols, x);
}

void matvec16_many(bool bf16, const Matvec16Jobs& jobs, int64_t cols, const float* x, int64_t n,
                   cudaStream_t s) {
  for (int64_t done = 0; done < n; done += kMaxVecs) {
    const int64_t m = std::min<int64_t>(kMaxVecs, n - done);
    Matvec16Jobs part = jobs;
    for (int j = 0; j < jobs.n; ++j) {
      part.y[j] = jobs.y[j] + done * (jobs.first[j + 1] - jobs.first[j]);
    }
    const float* xs = x + done * cols;
    switch (m) {
      case 1: launch_matvec16<1>(bf16, part, cols, xs, s); break;
      case 2: launch_matvec16<2>(bf16, part, cols, xs, s); break;
      case 3: launch_matvec16<3>(bf16, part, cols, xs, s); break;
      case 4: launch_matvec16<4>(bf16, part, cols, xs, s); break;
      case 5: launch_matvec16<5>(bf16, part, cols, xs, s); break;
      case 6: launch_matvec16<6>(bf16, part, cols, xs, s); break;
      case 7: launch_matvec16<7>(bf16, part, cols, xs, s); break;
      default: launch_matvec16<8>(bf16, part, cols, xs, s); break;
    }
  }
}

void add_bias(float* y, const float* bias, int64_t n, int64_t rows, cudaStream_t s) {
  if (n * rows > 0)
    add_bias_kernel<<<unsigned(ceil_div(n * rows, kThreads)), kThreads, 0, s>>>(y, bias, n, rows);
}

}  // namespace kvsieve::cuda
