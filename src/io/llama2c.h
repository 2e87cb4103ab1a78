// llama2.c legacy (v0) checkpoints: a 7 x int32 header, then f32 arrays.
//
//   header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//           (vocab_size < 0: an unshared classifier wcls follows at the end)
//   token_embedding [vocab, dim]       rms_att  [L, dim]
//   wq [L, dim, dim]   wk [L, kv_dim, dim]   wv [L, kv_dim, dim]   wo [L, dim, dim]
//   rms_ffn [L, dim]   w1 [L, hidden, dim] (gate)  w2 [L, dim, hidden] (down)  w3 [L, hidden, dim] (up)
//   rms_final [dim]    freq_cis_real [seq_len, hd/2]   freq_cis_imag [seq_len, hd/2]
//   wcls [vocab, dim]  (only when unshared)
// with kv_dim = n_kv_heads * hd and hd = dim / n_heads. The q/k rows are in
// the interleaved RoPE layout (llama2.c's run.c rotates pairs (2i, 2i+1)).
#pragma once
#include <cstdint>
#include <string>

#include "model/model_config.h"

namespace kvsieve {

struct Llama2cLayout {
  ModelConfig config;       // arch llama, theta 10000, eps 1e-5, interleaved
  bool shared_classifier = true;
  // Byte offsets from the start of the file of each stacked array.
  uint64_t token_embedding = 0, rms_att = 0, wq = 0, wk = 0, wv = 0, wo = 0, rms_ffn = 0, w1 = 0,
           w2 = 0, w3 = 0, rms_final = 0, freq_cis_real = 0, freq_cis_imag = 0, wcls = 0;
  uint64_t total = 0;  // the exact file size the header implies
};

constexpr size_t kLlama2cHeaderBytes = 7 * 4;

// Decodes and validates a header (the first 28 bytes); throws Error naming
// `path` when a size is non-positive or absurd, heads do not divide, or
// file_size differs from what the header implies.
Llama2cLayout llama2c_layout(const uint8_t* header, uint64_t file_size, const std::string& path);

// True when `path` is a regular file whose header sizes make its size exact
// (used to recognise .bin checkpoints without being told).
bool looks_like_llama2c(const std::string& path);

}  // namespace kvsieve
