// Scalar references for every kernel of ops.h: plain loops, sums in double,
// weights decoded with core's dequantize_row. They are what the tests compare
// the SIMD kernels against, and they document what each op means. Slow.
#pragma once
#include <cstdint>

#include "core/rope.h"
#include "core/tensor.h"

namespace kvsieve::ref {

// y[n, rows] = x[n, cols] · Wᵀ (+ bias); each dot product summed in double.
void matmul(const TensorView& W, const float* x, int64_t n, float* y, const float* bias = nullptr);
void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps);
void softmax_inplace(float* x, int64_t n);
void silu_mul(const float* gate, const float* up, float* out, int64_t n);
double dot(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);
void dot_rows_f32(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                  float* out);
void axpy_rows_f32(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                   float* y);
void scale_f32(float* x, float s, int64_t n);
void add_f32(const float* a, const float* b, float* out, int64_t n);
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                RopeStyle style);

}  // namespace kvsieve::ref
