// A loaded model ready to run: config, weights bound from the one weight list,
// and the tokenizer when the source has one. Weight matrices stay in the
// mapped file in their stored type; 1-D tensors (norms, biases, RoPE
// divisors) are converted to f32 once at load.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/model_source.h"
#include "kv/kv_store.h"
#include "model/model_config.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve {

struct LayerWeights {
  const float* attn_norm;  // [n_embd]
  const TensorView* wq;    // [n_head*hd, n_embd]
  const TensorView* wk;    // [n_head_kv*hd, n_embd]
  const TensorView* wv;    // [n_head_kv*hd, n_embd]
  const float* bq = nullptr;  // [n_head*hd]     (Qwen2)
  const float* bk = nullptr;  // [n_head_kv*hd]
  const float* bv = nullptr;  // [n_head_kv*hd]
  const TensorView* wo;    // [n_embd, n_head*hd]
  const float* ffn_norm;   // [n_embd]
  const TensorView* w_gate;  // [n_ff, n_embd]
  const TensorView* w_up;    // [n_ff, n_embd]
  const TensorView* w_down;  // [n_embd, n_ff]
};

struct ModelWeights {
  const TensorView* tok_embd;  // [n_vocab, n_embd]
  const TensorView* output;    // [n_vocab, n_embd]; = tok_embd when tied
  const float* output_norm;    // [n_embd]
  const float* rope_freqs = nullptr;  // [head_dim/2] divisors, or null
  std::vector<LayerWeights> layers;
};

class Model {
 public:
  // Opens any supported model file or folder (see open_model).
  static std::unique_ptr<Model> load(const std::string& path);
  // Takes an already opened source (e.g. a llama2.c checkpoint with its tokenizer).
  explicit Model(ModelSource src);
  // Frees the devices' copies of the weights (backend.h: forget_device_weights).
  ~Model();

  const ModelConfig& config() const { return src_.config; }
  const ModelWeights& weights() const { return w_; }
  const ModelSource& source() const { return src_; }
  // Null when the model file carries no tokenizer.
  const Tokenizer* tokenizer() const { return tok_.get(); }
  // Replaces the tokenizer (e.g. one given on the command line).
  void set_tokenizer(std::unique_ptr<Tokenizer> t) { tok_ = std::move(t); }
  KvGeometry kv_geometry() const;
  // Weight bytes (as stored) and parameter count.
  size_t weight_bytes() const;
  int64_t n_params() const;
  // Makes the device's copy of every weight the forward pass reads now
  // (Backend::preload), so that the first prefill does not pay for it.
  void preload(Backend& be) const;

 private:
  ModelSource src_;
  ModelWeights w_;
  std::vector<std::vector<float>> f32_vectors_;  // owned f32 copies of 1-D tensors
  std::unique_ptr<Tokenizer> tok_;
};

}  // namespace kvsieve
