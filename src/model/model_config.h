// Hyper-parameters of a Llama-family decoder, whatever file it came from.
// Every loader (GGUF, Hugging Face folder, llama2.c) fills this struct and
// validate() checks it before any buffer is sized from it.
#pragma once
#include <cstdint>
#include <string>

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

struct ModelConfig {
  std::string arch = "llama";  // "llama" (Llama 2/3, Mistral) or "qwen2"
  std::string name;            // free text for messages
  int64_t n_vocab = 0;
  int64_t n_embd = 0;     // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads (GQA when < n_head)
  int64_t head_dim = 0;   // usually n_embd / n_head
  int64_t n_ff = 0;       // SwiGLU inner size
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::kInterleaved;
  RopeScaling rope_scaling;
  bool qkv_bias = false;        // Qwen2
  bool tied_embeddings = false; // output projection = token embedding
  int64_t sliding_window = 0;   // Mistral v0.1; 0 = none (recorded, not applied)

  // Throws Error when a value is missing, non-positive, or inconsistent
  // (n_head % n_head_kv, absurd sizes).
  void validate() const;
};

}  // namespace kvsieve
