// RoPE settings shared by the model description and the device ops (kept in
// core so that backends never include model headers).
#pragma once
#include <cstdint>

namespace kvsieve {

// How RoPE pairs the dimensions of a head.
//  kInterleaved: (x[2i], x[2i+1]) rotate together (Meta's original layout,
//                llama2.c, and GGUF "llama" files, whose converters permute
//                the q/k rows into this layout).
//  kNeox:        (x[i], x[i + d/2]) rotate together (Hugging Face "rotate_half",
//                GGUF "qwen2").
enum class RopeStyle { kInterleaved, kNeox };

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  // llama3 only:
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
};

}  // namespace kvsieve
