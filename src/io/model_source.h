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
//
// Optional: rope_freqs.weight [head_dim/2] F32, llama.cpp's per-dimension RoPE
// frequency divisors (Llama 3.1 GGUFs made by llama.cpp carry it instead of
// scaling metadata). A ModelSource never has both: when rope_freqs.weight is
// present, config.rope_scaling is not llama3 and the tensor is the scaling
// (pass it as freq_factors to RopeFreqs); when config.rope_scaling is llama3,
// there is no rope_freqs.weight (a GGUF written by kvsieve has both on disk; the
// reader checks they agree and keeps the config form, which matches HF numerics).
#pragma once
#include <functional>
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

// open_model, or open_llama2c when `llama2c`, with the vocabulary of
// `tokenizer` (a tokenizer file; for a llama2.c checkpoint its tokenizer.bin)
// instead of the model's own when it is not empty.
ModelSource open_model_with_tokenizer(const std::string& path, const std::string& tokenizer,
                                      bool llama2c = false);

// The three formats one by one (open_model picks among them).
ModelSource open_gguf_model(const std::string& path);
// A folder with config.json, model.safetensors or model.safetensors.index.json
// (+ shards), and tokenizer.json (or tokenizer.model) when present.
ModelSource open_hf_model(const std::string& dir);
// llama2.c legacy checkpoint; tokenizer.bin loaded when tokenizer_path is not
// empty (bos 1, eos 2, add_bos, SentencePiece-style with a dummy prefix).
ModelSource open_llama2c(const std::string& path, const std::string& tokenizer_path = "");

// Checks that every tensor the config implies (model/weight_list.h) is present
// with exactly the expected shape and a usable dtype (matrices: any DType;
// vectors: F32/F16/BF16), and that no unknown tensor is present. Throws Error
// naming the tensor, the expected and the found shape.
void check_model_tensors(const ModelSource& m);

// Writes a model as GGUF (llama.cpp-compatible names and metadata, tokenizer
// embedded when present). out_type converts 2-D weight matrices (F32, F16,
// BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K; norms and biases stay F32); nullopt keeps each tensor's type.
// A matrix whose rows are not a multiple of the quantization block (32) is
// written F16 (or kept F16/BF16) instead, and `log` is told.
// For arch "llama" with neox-layout q/k (a Hugging Face source) the q/k rows are
// permuted to the interleaved layout GGUF llama files use.
// For arch "llama" with llama3 RoPE scaling, rope_freqs.weight is written (as
// llama.cpp does) and the scaling parameters go to kvsieve.rope.scaling.* keys
// (llama.cpp would reject an unknown {arch}.rope.scaling.type).
// Messages (tensors kept unquantized, progress) go to `log` when it is set.
void write_model_gguf(const ModelSource& m, const std::string& out_path,
                      std::optional<DType> out_type = std::nullopt);
void write_model_gguf(const ModelSource& m, const std::string& out_path, std::optional<DType> out_type,
                      const std::function<void(const std::string&)>& log);
// The same with a scheme (a uniform type or a K-quant mix, io/quant_scheme.h;
// nullptr keeps each tensor's type). A K-quant matrix whose rows are not a
// multiple of 256 is written Q8_0 (rows of whole 32-blocks) or F16.
struct QuantScheme;
void write_model_gguf(const ModelSource& m, const std::string& out_path, const QuantScheme* scheme,
                      const std::function<void(const std::string&)>& log);

}  // namespace kvsieve
