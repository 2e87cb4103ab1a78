// The dispatch choke point. Each SIMD target compiled into ops_dispatch.cpp
// (Highway foreach_target: SSE4, AVX2, AVX3 and the scalar fallback) fills
// one CpuKernels table; cpu_kernels() picks the best one for this CPU with a
// single HWY_DYNAMIC_DISPATCH the first time it is called, and every op in
// ops.h is a call through that table. Tests and benchmarks can reach the
// other targets this CPU runs through cpu_kernels_all().
#pragma once
#include <cstdint>
#include <vector>

#include "core/q4_0_dot.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "core/rope_types.h"

namespace kvsieve {

struct CpuKernels {
  const char* target;  // "AVX3", "AVX2", "SSE4", "SCALAR"
  void (*matmul)(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
                 const float* bias);
  // matmul of every out (same x, same cols), as one parallel job in the dot form.
  void (*matmuls)(const MatmulOut* outs, size_t count, const float* x, int64_t n, ThreadPool& pool);
  // A row of n weights of type t to f32, exactly core's dequantize_row (the
  // decoder the panel form of matmul uses; SIMD for the K-quants).
  void (*dequantize_row)(DType t, const void* row, int64_t n, float* out);
  // x[n] to the 8-bit blocks of the Q4_0 dot form, exactly core's
  // quantize_row_q8_0x (reachable here so the tests can check every target).
  void (*quantize_row_q8_0x)(const float* x, BlockQ8_0x* y, int64_t n);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*dot_rows)(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                   float* out);
  void (*axpy_rows)(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                    float* y);
  // The same over K/V rows stored as f16 / bf16 bits (widened exactly to f32).
  void (*dot_rows_f16)(const float* q, const uint16_t* rows, int64_t n_rows, int64_t stride,
                       int64_t dim, float* out);
  void (*dot_rows_bf16)(const float* q, const uint16_t* rows, int64_t n_rows, int64_t stride,
                        int64_t dim, float* out);
  void (*axpy_rows_f16)(const float* a, const uint16_t* rows, int64_t n_rows, int64_t stride,
                        int64_t dim, float* y);
  void (*axpy_rows_bf16)(const float* a, const uint16_t* rows, int64_t n_rows, int64_t stride,
                         int64_t dim, float* y);
  void (*scale)(float* x, float s, int64_t n);
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  void (*rmsnorm)(const float* x, const float* weight, float* out, int64_t n, float eps);
  void (*softmax)(float* x, int64_t n);
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  void (*apply_rope)(float* x, int64_t n_heads, int64_t head_dim, const float* cos,
                     const float* sin, RopeStyle style);
};

// The table for the best target this CPU supports.
const CpuKernels& cpu_kernels();
// Every compiled target this CPU can run, best first.
std::vector<const CpuKernels*> cpu_kernels_all();

}  // namespace kvsieve
