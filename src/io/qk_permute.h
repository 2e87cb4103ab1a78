// Moving q/k projection rows between the two RoPE layouts.
//
// Within each head of hd rows, the rotation pairs dimension i with
//   neox:        i + hd/2   (Hugging Face rotate_half)
//   interleaved: i ^ 1      (Meta's original code, llama2.c, GGUF "llama")
// Row r = 2i + j of an interleaved head holds row j*hd/2 + i of the neox head
// (i < hd/2, j in {0, 1}). llama.cpp's HF converter applies neox -> interleaved
// to q and k weights (and biases) of "llama" models; its GGUF loader expects it.
// Whole rows move, so this works for any row type (quantized included).
#pragma once
#include <cstddef>
#include <cstdint>

namespace kvsieve {

enum class QkDirection { kNeoxToInterleaved, kInterleavedToNeox };

// src, dst: [n_head * head_dim rows of row_bytes]; must not overlap.
// head_dim must be even.
void permute_qk_rows(const void* src, void* dst, int64_t n_head, int64_t head_dim, size_t row_bytes,
                     QkDirection dir);

}  // namespace kvsieve
