// Per-target entry points of the K-quant matrix-vector kernels, one file per
// weight type (matmul_q4_k.cpp, matmul_q5_k.cpp, matmul_q6_k.cpp), declared
// for each Highway target so that matmul-inl.h (compiled per target in
// ops_dispatch.cpp) calls the same target's code. Re-included per target.
//
// DotRows<type>(w, row_bytes, r0, r1, x, n, nb, y, ys, bias):
//   w       [rows][row_bytes]  the weight matrix, nb super-blocks per row
//   x       [n][nb]            the n activation rows quantized to Q8_K
//   y       [n][ys]            y[m*ys + r] = W_r · x_m (+ bias[r]) for r0 <= r < r1
// Integer sums per super-block are exact; the result differs from the scalar
// reference (core/kquant.h dot_*_q8_K) only by f32 summation order.
#if defined(KVSIEVE_BACKEND_CPU_KQUANT_KERNELS_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_KQUANT_KERNELS_H_
#undef KVSIEVE_BACKEND_CPU_KQUANT_KERNELS_H_
#else
#define KVSIEVE_BACKEND_CPU_KQUANT_KERNELS_H_
#endif

#include <cstddef>
#include <cstdint>

#include "core/kquant.h"
#include "core/thread_pool.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {

// One row of K values decoded to f32, exactly core's dequantize_row (the
// panel form of matmul, prefill): out[K].
void DequantRowQ4K(const uint8_t* row, size_t K, float* out);
void DequantRowQ5K(const uint8_t* row, size_t K, float* out);
void DequantRowQ6K(const uint8_t* row, size_t K, float* out);

// The matrix-matrix form of Q4_K (prefill, gemm_q4_k.cpp): y [n][rows] =
// the rows of w against xq [n][nb] (x quantized to Q8_K) (+ bias), each
// output dot_q4_K_q8_K bit for bit. false (nothing done) on targets without
// it (then the f32 panels of matmul-inl.h).
bool GemmQ4K(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* xq, int64_t n, size_t nb,
             float* y, ThreadPool& pool, const float* bias);

void DotRowsQ4K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias);
void DotRowsQ5K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias);
void DotRowsQ6K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias);

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_KQUANT_KERNELS_H_
