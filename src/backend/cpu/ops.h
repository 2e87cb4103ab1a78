// CPU kernels used by the forward pass. Activations are f32; weights are a
// TensorView of type F32, F16, BF16, Q8_0 or Q4_0. Every op has a scalar
// reference in ops_ref.h; the functions here run the SIMD version chosen once
// for this CPU (Highway dynamic dispatch, see kernel_table.h).
//
// Pointers need no alignment. Unless a comment says otherwise, outputs must
// not overlap inputs except where noted ("may alias").
#pragma once
#include <cstdint>
#include <span>

#include "core/rope.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace kvsieve {

// y[n, rows] = x[n, cols] · Wᵀ (+ bias[rows]), W [rows, cols] of any weight
// type, accumulated in f32. y must not overlap x. Rows of W are split across
// the pool's threads; do not call it from inside a parallel_for of the same
// pool (pass a ThreadPool(1) there: it runs inline). n <= 20 (decode) streams
// W once, decoding it in registers; larger n (prefill) decodes a block of W
// rows to f32 once and reuses it for every row of x (see matmul-inl.h).
// Quantized weights are decoded to exactly dequantize_row's f32 values (x is
// never quantized), so results differ from an f32 reference on dequantized
// weights only by summation order. Scratch kept per calling thread: x
// repacked, n·cols floats (n rounded up to 32); per worker 32·cols floats.
// Throws Error if W's type, shape or byte size is inconsistent.
void matmul(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
            const float* bias = nullptr);
// matmul(*o.W, x, n, o.y, pool, o.bias) for every o of outs (a layer's q/k/v
// or gate/up products), in the dot form as one parallel loop over all their
// rows (one wake-up and one wait of the pool instead of one per product).
// The outputs must not overlap x or each other. Each output is what matmul
// gives, up to the last bits of F32/F16/BF16/Q8_0/Q4_x rows at the edges of
// a thread's chunk (as with another thread count).
void matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool);

// out[n] = x * 1/sqrt(mean(x²) + eps) * weight, as Llama's RMSNorm (and
// transformers: the scale is computed in f32, then (x·scale)·w). out may alias x.
void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps);

// x[n] = softmax(x), max-subtracted, in f32. A row of all -inf gives NaN (as torch).
void softmax_inplace(float* x, int64_t n);

// out[n] = silu(gate) * up with silu(g) = g·sigmoid(g) (SwiGLU). out may alias either input.
void silu_mul(const float* gate, const float* up, float* out, int64_t n);

// Σ a[i]·b[i] over n values, f32 with several partial sums.
float dot_f32(const float* a, const float* b, int64_t n);
// y[n] += a * x[n].
void axpy_f32(float a, const float* x, float* y, int64_t n);
// Attention helpers over rows stored with a stride (floats between rows):
// out[t] = Σ_i q[i]·rows[t*stride + i] for t < n_rows (scores of one query
// against many keys), and y[i] += Σ_t a[t]·rows[t*stride + i] for i < dim
// (probability-weighted sum of value rows). Faster than a loop of dot_f32 /
// axpy_f32: q is loaded once per four keys, y stays in registers.
void dot_rows_f32(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                  float* out);
void axpy_rows_f32(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                   float* y);
// The same over rows of type t (F32, F16 or BF16; rows points at the first
// row's first element, stride counted in elements), each element widened to f32.
void dot_rows(DType t, const float* q, const void* rows, int64_t n_rows, int64_t stride,
              int64_t dim, float* out);
void axpy_rows(DType t, const float* a, const void* rows, int64_t n_rows, int64_t stride,
               int64_t dim, float* y);
// x[n] *= s.
void scale_f32(float* x, float s, int64_t n);
// out[n] = a[n] + b[n] (the residual add); out may alias a or b.
void add_f32(const float* a, const float* b, float* out, int64_t n);

// Rotates x [n_heads, head_dim] in place by the angles whose cos/sin
// [head_dim/2] come from rope_cos_sin (one position, shared by all heads).
//   kInterleaved: pairs (x[2i], x[2i+1]);  kNeox: pairs (x[i], x[i + head_dim/2]).
// Pair i turns by angle i: (a, b) -> (a·cos - b·sin, b·cos + a·sin).
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                RopeStyle style);

// Name of the SIMD target the kernels above run on ("AVX3", "AVX2", "SSE4", "SCALAR").
const char* cpu_kernel_target();

}  // namespace kvsieve
