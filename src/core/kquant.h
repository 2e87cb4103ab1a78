// K-quants: GGML's weight types of 256-value super-blocks (Q4_K, Q5_K, Q6_K)
// and the activation type their dot products use (Q8_K). The byte layouts
// are GGUF's, so files made by llama.cpp's llama-quantize load as they are.
//
// Q4_K (144 bytes, 4.5 bits/value): 8 sub-blocks of 32 values, each with a
// 6-bit scale sc[j] and a 6-bit min mn[j]; value = d·sc[j]·q - dmin·mn[j],
// q in 0..15. Value 64c + l (c < 4, l < 32) is the low nibble of qs[32c + l],
// value 64c + 32 + l its high nibble (sub-blocks 2c and 2c + 1).
// Q5_K (176 bytes, 5.5 bits/value): Q4_K plus a fifth bit: bit 2c of qh[l]
// for value 64c + l, bit 2c + 1 for value 64c + 32 + l; q in 0..31.
// The 8 scales and 8 mins of Q4_K/Q5_K share 12 bytes (see unpack_scales_k4):
//   bytes 0..3:  sc[0..3] in bits 0..5, the top two bits of sc[4..7] in 6..7
//   bytes 4..7:  mn[0..3] in bits 0..5, the top two bits of mn[4..7] in 6..7
//   bytes 8..11: low four bits of sc[4..7] in 0..3, of mn[4..7] in 4..7
// Q6_K (210 bytes, 6.5625 bits/value): 16 groups of 16 values with int8
// scales; value = d·sc[v/16]·(q - 32), q in 0..63. In each half h (128
// values; ql += 64h, qh += 32h) value l, l+32, l+64, l+96 (l < 32) takes its
// low four bits from ql[l] & 15, ql[l+32] & 15, ql[l] >> 4, ql[l+32] >> 4
// and its top two from bits 0-1, 2-3, 4-5, 6-7 of qh[l].
// Q8_K (292 bytes): an f32 scale, 256 int8 values and the sums of each group
// of 16 (what the Q4_K/Q5_K mins multiply).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace kvsieve {

struct BlockQ4_K {
  uint16_t d;       // f16: scale of the sub-block scales
  uint16_t dmin;    // f16: scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];  // Σ qs over each group of 16
};
static_assert(sizeof(BlockQ8_K) == 292);

// Scale and min of sub-block j (< 8) from the 12 packed bytes, each 0..63.
inline void unpack_scales_k4(const uint8_t* s, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
// All eight at once, branch-free on 32-bit words (what the kernels use; the
// same values as unpack_scales_k4, tested).
inline void unpack_scales_k4_all(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4);
  std::memcpy(&w1, s + 4, 4);
  std::memcpy(&w2, s + 8, 4);
  const uint32_t lo = w0 & 0x3f3f3f3fu, mlo = w1 & 0x3f3f3f3fu;
  const uint32_t hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
  const uint32_t mhi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
  std::memcpy(sc, &lo, 4);
  std::memcpy(sc + 4, &hi, 4);
  std::memcpy(mn, &mlo, 4);
  std::memcpy(mn + 4, &mhi, 4);
}
// The inverse: packs sc[8], mn[8] (each 0..63) into 12 bytes.
void pack_scales_k4(const uint8_t* sc, const uint8_t* mn, uint8_t* s);

// Row conversions, n a multiple of kQK_K (dequantize_row / quantize_row of
// core/dtype.h call these). Quantizers pick per-block scales by a small
// least-squares search; they need not reproduce llama.cpp's bits, only its
// format.
void dequantize_row_kquant(DType t, const void* src, float* dst, int64_t n);
void quantize_row_kquant(DType t, const float* src, void* dst, int64_t n);

// Q8_K of an activation row: per block d = max|x| / 127, q = round(x / d)
// (q in -127..127, so no product pair can overflow int16 in a kernel).
void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n);

// Scalar reference dot products of nb super-blocks of weights with Q8_K
// activations: per block the integer sums are exact, then
//   Q4_K/Q5_K: x.d·(d·Σ_j sc[j]·Σ q·q8  -  dmin·Σ_j mn[j]·Σ q8)
//   Q6_K:      x.d·d·Σ_g sc[g]·Σ (q - 32)·q8
// summed over the blocks in f32 in block order. The SIMD kernels keep the
// integer sums exact and differ only in the f32 summation order.
float dot_q4_K_q8_K(const BlockQ4_K* w, const BlockQ8_K* x, int64_t nb);
float dot_q5_K_q8_K(const BlockQ5_K* w, const BlockQ8_K* x, int64_t nb);
float dot_q6_K_q8_K(const BlockQ6_K* w, const BlockQ8_K* x, int64_t nb);
// Dispatch on the weight type (Q4_K, Q5_K or Q6_K).
float dot_kquant_q8_K(DType t, const void* w, const BlockQ8_K* x, int64_t nb);

}  // namespace kvsieve
