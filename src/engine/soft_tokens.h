// Judge Q soft tokens: m trainable embedding rows appended after a prompt.
// Stored as a small GGUF file:
//   tensor   judgeq.soft_embeddings   f32 [m, n_embd]
//   metadata judgeq.arch, judgeq.n_embd, judgeq.n_vocab, judgeq.n_layer,
//            judgeq.fingerprint (see model_fingerprint), judgeq.origin (how
//            they were made: "init:TEXT", "trained:...")
// Loading them for another model is an error that says which field differs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace kvsieve {

struct SoftTokens {
  int64_t m = 0, n_embd = 0;
  std::vector<float> embd;  // [m, n_embd]
  std::string arch, fingerprint, origin;
  int64_t n_vocab = 0, n_layer = 0;
};

// Identifies a model's weights independent of file format and float width:
// a hash of the shapes and of a few token-embedding rows rounded to bf16.
// Quantized copies (Q8_0, Q4_0) differ from the float model.
std::string model_fingerprint(const Model& m);

// Soft tokens initialised with the embeddings of token ids (e.g. a question).
SoftTokens soft_tokens_from_ids(const Model& m, const std::vector<int32_t>& ids,
                                const std::string& origin);

void write_soft_tokens(const std::string& path, const SoftTokens& s);
SoftTokens read_soft_tokens(const std::string& path);
// Throws Error unless the soft tokens were made for this model (check_weights:
// also compare the fingerprint).
void check_soft_tokens_fit(const SoftTokens& s, const Model& m, bool check_weights = true);

}  // namespace kvsieve
