// Q4_0 weights times activations quantized to 8 bits: the scalar reference
// of the Q4_0 decode kernels (backend/cpu/matmul_q4_0.cpp), as llama.cpp
// multiplies Q4_0 by Q8_0.
//
// The activation blocks (BlockQ8_0x) are Q8_0's 32 int8 levels, but with an
// f32 scale (Q8_0 weights store an f16 one: rounding it would add an error
// and a conversion per block) and the sum of the levels (what Q4_0's offset
// of 8 multiplies). Per block the integer sum is exact:
//   isum = Σ_j (q_j - 8)·x.qs[j] = Σ_j q_j·x.qs[j] - 8·x.sum      (|isum| <= 32·8·127)
// and the row's dot product is Σ_b float(isum_b)·(d_b·x_b.d), each product
// rounded to f32, summed in f32 in block order. The kernels keep the integer
// sums exact and the scale products identical; they add partial sums in
// another order (error bound in tests/test_ops_matmul_q4_0.cpp).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace kvsieve {

struct BlockQ8_0x {
  float d;          // scale: value ≈ d·qs[j]
  int32_t sum;      // Σ qs[j]
  int8_t qs[kQK];   // -127..127
};
static_assert(sizeof(BlockQ8_0x) == 40);

// x[n] (n a multiple of 32) to n/32 blocks: per block d = max|x|/127,
// qs = nearbyint(x·(127/max|x|)) clamped to ±127 (as quantize_row_q8_K, per
// 32 values; NaN inputs are ignored by the max).
void quantize_row_q8_0x(const float* x, BlockQ8_0x* y, int64_t n);

// The reference dot product of nb Q4_0 blocks with nb activation blocks.
float dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0x* x, int64_t nb);

}  // namespace kvsieve
