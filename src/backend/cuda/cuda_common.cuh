// What the device's kernels share: the element types' conversions and block
// reductions. Included by .cu files only (nvcc); host code sees the kernels
// through cuda_kernels.h, and checks errors itself after each launch.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.h"
#include "core/kquant.h"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- element types, widened to f32 exactly as core/dtype.h does on the host
__device__ __forceinline__ float f16_bits_to_f32(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) {
  return __uint_as_float(uint32_t(h) << 16);
}
// Round to nearest even (the host's f32_to_f16 / f32_to_bf16).
__device__ __forceinline__ uint16_t f32_to_f16_bits(float f) {
  return __half_as_ushort(__float2half_rn(f));
}
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// Element i of a row of a plain type (F32, F16, BF16).
__device__ __forceinline__ float load_elem(DType t, const void* row, int64_t i) {
  if (t == DType::F32) return static_cast<const float*>(row)[i];
  const uint16_t b = static_cast<const uint16_t*>(row)[i];
  return t == DType::F16 ? f16_bits_to_f32(b) : bf16_bits_to_f32(b);
}
__device__ __forceinline__ void store_elem(DType t, void* row, int64_t i, float x) {
  if (t == DType::F32) static_cast<float*>(row)[i] = x;
  else if (t == DType::F16) static_cast<uint16_t*>(row)[i] = f32_to_f16_bits(x);
  else static_cast<uint16_t*>(row)[i] = f32_to_bf16_bits(x);
}

// dtype_block_bytes for the K-quant weight types, on the device.
__device__ __forceinline__ size_t dtype_block_bytes_dev(DType t) {
  return t == DType::Q4_K ? sizeof(BlockQ4_K) : t == DType::Q5_K ? sizeof(BlockQ5_K) : sizeof(BlockQ6_K);
}

// Scale and min of sub-block j of a Q4_K / Q5_K block (core/kquant.h's
// unpack_scales_k4, for the device).
__device__ __forceinline__ void k4_scale_min(const uint8_t* s, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Value v (< 256) of a K-quant super-block, as core's dequantize_row gives it
// (d·sc and dmin·mn rounded to f32 first).
__device__ __forceinline__ float load_kquant(DType t, const void* row, int64_t j) {
  const int v = int(j % kQK_K);
  const int c = v / 64, l = v % 64;
  if (t == DType::Q6_K) {
    const auto* b = static_cast<const BlockQ6_K*>(row) + j / kQK_K;
    const int h = v / 128, q4 = (v % 128) / 32, li = v % 32;
    const uint8_t qlb = b->ql[64 * h + li + 32 * (q4 & 1)];
    const int lo = q4 < 2 ? (qlb & 0xF) : (qlb >> 4);
    const int top = (b->qh[32 * h + li] >> (2 * q4)) & 3;
    return f16_bits_to_f32(b->d) * float(b->scales[v / 16]) * float((lo | (top << 4)) - 32);
  }
  // Q4_K and Q5_K share the head (d, dmin, scales) and the nibble layout.
  const uint8_t* blk = static_cast<const uint8_t*>(row) + (j / kQK_K) * dtype_block_bytes_dev(t);
  const auto* b4 = reinterpret_cast<const BlockQ4_K*>(blk);
  int sc, mn;
  k4_scale_min(b4->scales, v / 32, &sc, &mn);
  const uint8_t* qs = t == DType::Q5_K ? reinterpret_cast<const BlockQ5_K*>(blk)->qs : b4->qs;
  int q = l < 32 ? (qs[32 * c + l] & 0xF) : (qs[32 * c + l - 32] >> 4);
  if (t == DType::Q5_K) q |= ((reinterpret_cast<const BlockQ5_K*>(blk)->qh[l % 32] >> (2 * c + (l >= 32))) & 1) << 4;
  return (f16_bits_to_f32(b4->d) * float(sc)) * float(q) - f16_bits_to_f32(b4->dmin) * float(mn);
}

// Value j of a row of W of any weight type (blocks of 32 for Q8_0 / Q4_0,
// laid out as in core/dtype.h; super-blocks of 256 for the K-quants).
__device__ __forceinline__ float load_weight(DType t, const void* row, int64_t j) {
  switch (t) {
    case DType::Q8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(row) + j / kQK;
      return f16_bits_to_f32(b->d) * float(b->q[j % kQK]);
    }
    case DType::Q4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(row) + j / kQK;
      const int i = int(j % kQK);
      const int nib = i < 16 ? (b->nib[i] & 0xF) : (b->nib[i - 16] >> 4);
      return f16_bits_to_f32(b->d) * float(nib - 8);
    }
    case DType::Q4_1: {
      const auto* b = static_cast<const BlockQ4_1*>(row) + j / kQK;
      const int i = int(j % kQK);
      const int nib = i < 16 ? (b->nib[i] & 0xF) : (b->nib[i - 16] >> 4);
      return f16_bits_to_f32(b->d) * float(nib) + f16_bits_to_f32(b->m);
    }
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return load_kquant(t, row, j);
    default:
      return load_elem(t, row, j);
  }
}

// Stored head s's row count, and query t's position (KvDev's inline arrays
// where the pointers are null).
__device__ __forceinline__ int64_t kv_rows(const KvDev& kv, int64_t s) {
  return kv.rows ? kv.rows[s] : kv.rows_inline[s];
}
__device__ __forceinline__ int32_t query_pos(const KvDev& kv, const int32_t* q_pos, int64_t t) {
  return q_pos ? q_pos[t] : kv.q_pos_inline[t];
}

// Rows of a head a query at position p sees: those with pos <= p (a prefix,
// positions increase).
__device__ __forceinline__ int64_t visible(const int32_t* pos, int64_t n, int32_t p) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (pos[mid] <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- reductions over a block of blockDim.x threads (a multiple of 32, at
// most 1024); every thread gets the result. `shared` holds 32 floats.
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float block_sum(float x, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  x = warp_sum(x);
  __syncthreads();  // shared may still be read from a previous reduction
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = lane < n_warps ? shared[lane] : 0.0f;
  return warp_sum(x);
}
__device__ __forceinline__ float block_max(float x, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = lane < n_warps ? shared[lane] : -INFINITY;
  return warp_max(x);
}

}  // namespace kvsieve::cuda
