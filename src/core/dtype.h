// Element types of weight tensors, with GGML's numbering so GGUF files map 1:1.
// Quantized types are stored in blocks along the row (the contiguous axis):
//   Q8_0: 32 values -> { f16 scale d; int8 q[32] }          34 bytes, x = d*q
//   Q4_0: 32 values -> { f16 scale d; uint8 nib[16] }       18 bytes, x = d*(q-8)
//         value j<16 is the low nibble of nib[j], value j+16 its high nibble.
//   Q4_1: 32 values -> { f16 scale d; f16 min m; uint8 nib[16] } 20 bytes, x = d*q + m
//         (nibbles as Q4_0).
// K-quants (GGML's "super-blocks" of 256 values; layouts in core/kquant.h):
//   Q4_K 144 bytes, Q5_K 176, Q6_K 210 (weights); Q8_K 292 (activations of
//   the K-quant dot products, never a weight type in files kvsieve writes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace kvsieve {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

constexpr int kQK = 32;     // values per quantization block (Q8_0, Q4_0, Q4_1)
constexpr int kQK_K = 256;  // values per K-quant super-block

struct BlockQ8_0 {
  uint16_t d;  // f16 bits
  int8_t q[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_0 {
  uint16_t d;  // f16 bits
  uint8_t nib[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;  // f16 bits
  uint16_t m;  // f16 bits
  uint8_t nib[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// True for the K-quant types (super-blocks of kQK_K values).
constexpr bool is_kquant(DType t) {
  return t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K || t == DType::Q8_K;
}

// Values per block (1 for plain types) and bytes per block.
int dtype_block_size(DType t);
size_t dtype_block_bytes(DType t);
std::string_view dtype_name(DType t);
// Parses "f32", "F16", "bf16", "q8_0", "Q4_0", "q4_k", ...; nullopt otherwise.
std::optional<DType> dtype_from_name(std::string_view s);
// nullopt when the GGML type id is not one kvsieve supports as a weight type
// (Q8_K, 15, is not one: llama.cpp does not store weights in it either).
std::optional<DType> dtype_from_ggml(uint32_t id);
// Bytes of a row of n values; n must be a multiple of the block size
// (callers validate this and report the tensor name).
size_t dtype_row_bytes(DType t, int64_t n);

// ---- scalar conversions (the reference; SIMD paths must match them) ----
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, saturates to inf
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even, NaN stays NaN

// Converts a row of n values of type t at src into f32 at dst.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Converts n f32 values into type t (quantizing); n multiple of block size.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace kvsieve
