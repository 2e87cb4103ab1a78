// Hyper-parameters of a Llama-family decoder, whatever file it came from.
// Every loader (GGUF, Hugging Face folder, llama2.c) fills this struct and
// validate() checks it before any buffer is sized from it.
#pragma once
#include <cstdint>
#include <string>

#include "core/rope.h"

namespace kvsieve {

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

// The RoPE frequencies of a model: head_dim, rope_theta and rope_scaling from
// cfg; freq_factors [head_dim/2] (a file's rope_freqs tensor) or null.
RopeFreqs rope_freqs_for(const ModelConfig& cfg, const float* freq_factors = nullptr);

}  // namespace kvsieve
