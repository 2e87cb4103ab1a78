// One loaded model, whatever its file format: hyper-parameters, the weight
// tensors under canonical (GGUF / llama.cpp) names, and the tokenizer if the
// source has one. Weights stay in the mapped files; `keep_alive` holds them.
//
// Canonical tensor names and row-major shapes (hd = head_dim):
//   token_embd.weight        [n_vocab, n_embd]
//   output_norm.weight       [n_embd]
//   output.weight            [n_vocab, n_embd]   (absent when embeddings are tied)
//   blk.N.attn_norm.weight   [n_embd]
//   blk.N.attn_q.weight      [n_head*hd, n_embd]     blk.N.attn_q.bias [n_head*hd]    (Qwen2)
//   blk.N.attn_k.weight      [n_head_kv*hd, n_embd]  blk.N.attn_k.bias [n_head_kv*hd] (Qwen2)
//   blk.N.attn_v.weight      [n_head_kv*hd, n_embd]  blk.N.attn_v.bias [n_head_kv*hd] (Qwen2)
//   blk.N.attn_output.weight [n_embd, n_head*hd]
//   blk.N.ffn_norm.weight    [n_embd]
//   blk.N.ffn_gate.weight    [n_ff, n_embd]
//   blk.N.ffn_up.weight      [n_ff, n_embd]
//   blk.N.ffn_down.weight    [n_embd, n_ff]
// The q/k rows are in the layout config.rope_style says (GGUF llama and
// llama2.c: interleaved pairs; Hugging Face folders and GGUF qwen2: neox halves).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"
#include "tokenizer/vocab_spec.h"

namespace kvsieve {

struct ModelSource {
  std::string path;
  std::string format;  // "gguf", "hf", "llama2c"
  ModelConfig config;
  std::map<std::string, TensorView> tensors;  // canonical name -> view
  std::optional<VocabSpec> vocab;
  std::vector<std::shared_ptr<const void>> keep_alive;  // mappings / owned buffers

  const TensorView* find(const std::string& name) const;
  // Throws Error if absent.
  const TensorView& get(const std::string& name) const;
};

// Opens a GGUF file, a Hugging Face folder (config.json + safetensors), or a
// llama2.c checkpoint (tokenizer given separately, or none). Checks that every
// tensor the config implies is present with the right shape and a supported
// dtype. Throws Error naming the path and the problem.
ModelSource open_model(const std::string& path);

// Writes a model as GGUF (llama.cpp-compatible names and metadata, tokenizer
// embedded when present). out_type converts 2-D weight matrices (F32, F16,
// BF16, Q8_0, Q4_0; norms and biases stay F32); nullopt keeps each tensor's type.
// For arch "llama" with neox-layout q/k (a Hugging Face source) the q/k rows are
// permuted to the interleaved layout GGUF llama files use.
void write_model_gguf(const ModelSource& m, const std::string& out_path,
                      std::optional<DType> out_type = std::nullopt);

}  // namespace kvsieve
