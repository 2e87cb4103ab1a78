// Per-target entry points of the Q4_0 dot-form kernels (matmul_q4_0.cpp),
// declared for each Highway target so that matmul-inl.h (compiled per target
// in ops_dispatch.cpp) calls the same target's code. Re-included per target.
//
// QuantizeRowQ8_0x(x, y, n): x[n] -> y[n/32], exactly core's quantize_row_q8_0x.
// DotRowsQ4_0(w, row_bytes, r0, r1, x, n, nb, y, ys, bias):
//   w  [rows][row_bytes]  Q4_0 weights, nb blocks of 32 per row
//   x  [n][nb]            the n activation rows quantized (BlockQ8_0x)
//   y  [n][ys]            y[m*ys + r] = W_r · x_m (+ bias[r]) for r0 <= r < r1
// Each output is core's dot_q4_0_q8_0 up to f32 summation order (exact
// integer sums, the same scale products).
#if defined(KVSIEVE_BACKEND_CPU_Q4_0_KERNELS_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_Q4_0_KERNELS_H_
#undef KVSIEVE_BACKEND_CPU_Q4_0_KERNELS_H_
#else
#define KVSIEVE_BACKEND_CPU_Q4_0_KERNELS_H_
#endif

#include <cstddef>
#include <cstdint>

#include "core/q4_0_dot.h"
#include "core/thread_pool.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {

// The matrix-matrix form (prefill): y [n][rows] = x [n][K] · Wᵀ (+ bias), x
// quantized with QuantizeRowQ8_0x, each output dot_q4_0_q8_0 bit for bit.
// false (nothing done) on targets without it.
bool GemmQ4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const float* x, int64_t n, size_t K, float* y,
              ThreadPool& pool, const float* bias);
void QuantizeRowQ8_0x(const float* x, BlockQ8_0x* y, int64_t n);
void DotRowsQ4_0(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_0x* x,
                 int64_t n, size_t nb, float* y, size_t ys, const float* bias);

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_Q4_0_KERNELS_H_
