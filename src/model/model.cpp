#include "model/model.h"

#include <map>

#include "backend/backend.h"
#include "core/error.h"
#include "model/weight_list.h"

namespace kvsieve {

std::unique_ptr<Model> Model::load(const std::string& path) {
  return std::make_unique<Model>(open_model(path));
}

Model::~Model() {
  auto forget = [](const void* p) {
    if (p) forget_device_weights(p);
  };
  forget(w_.tok_embd ? w_.tok_embd->data : nullptr);
  forget(w_.output ? w_.output->data : nullptr);
  forget(w_.output_norm);
  forget(w_.rope_freqs);
  for (const LayerWeights& l : w_.layers) {
    for (const TensorView* t : {l.wq, l.wk, l.wv, l.wo, l.w_gate, l.w_up, l.w_down})
      forget(t ? t->data : nullptr);
    for (const float* v : {l.attn_norm, l.ffn_norm, l.bq, l.bk, l.bv}) forget(v);
  }
}

Model::Model(ModelSource src) : src_(std::move(src)) {
  const ModelConfig& c = src_.config;
  c.validate();
  std::map<std::string, const TensorView*> mats;
  std::map<std::string, const float*> vecs;
  for_each_weight(c, [&](const WeightSpec& s) {
    const TensorView* t = src_.find(s.name);
    if (!t) {
      check(!s.required, "{}: missing tensor '{}'", src_.path, s.name);
      return;
    }
    check(t->shape == s.shape, "{}: tensor '{}' has shape {}, expected {}", src_.path, s.name,
          shape_str(t->shape), shape_str(s.shape));
    if (s.kind == WeightKind::kMatrix) {
      mats[s.name] = t;
    } else {
      std::vector<float> f(size_t(t->numel()));
      dequantize_row(t->type, t->data, f.data(), t->numel());
      f32_vectors_.push_back(std::move(f));
      vecs[s.name] = f32_vectors_.back().data();
    }
  });
  auto vec = [&](const std::string& n) -> const float* {
    auto it = vecs.find(n);
    return it == vecs.end() ? nullptr : it->second;
  };
  w_.tok_embd = mats.at("token_embd.weight");
  w_.output = mats.count("output.weight") ? mats.at("output.weight") : w_.tok_embd;
  w_.output_norm = vec("output_norm.weight");
  w_.rope_freqs = vec("rope_freqs.weight");
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights lw{};
    lw.attn_norm = vec(p + "attn_norm.weight");
    lw.wq = mats.at(p + "attn_q.weight");
    lw.wk = mats.at(p + "attn_k.weight");
    lw.wv = mats.at(p + "attn_v.weight");
    lw.bq = vec(p + "attn_q.bias");
    lw.bk = vec(p + "attn_k.bias");
    lw.bv = vec(p + "attn_v.bias");
    lw.wo = mats.at(p + "attn_output.weight");
    lw.ffn_norm = vec(p + "ffn_norm.weight");
    lw.w_gate = mats.at(p + "ffn_gate.weight");
    lw.w_up = mats.at(p + "ffn_up.weight");
    lw.w_down = mats.at(p + "ffn_down.weight");
    w_.layers.push_back(lw);
  }
  if (src_.vocab) {
    tok_ = Tokenizer::create(*src_.vocab);
    check(tok_->n_vocab() <= c.n_vocab, "{}: tokenizer has {} tokens but the model only {}",
          src_.path, tok_->n_vocab(), c.n_vocab);
  }
}

KvGeometry Model::kv_geometry() const {
  const ModelConfig& c = config();
  return {c.n_layer, c.n_head_kv, c.head_dim};
}

size_t Model::weight_bytes() const {
  size_t b = 0;
  for (const auto& [name, t] : src_.tensors) b += t.nbytes;
  return b;
}

void Model::preload(Backend& be) const {
  // The keys the ops ask for: a matrix whole, a norm's n_embd floats, a
  // bias's rows floats (backend/cuda/cuda_backend.cpp).
  const int64_t E = config().n_embd;
  auto matrix = [&](const TensorView* t, const float* bias) {
    if (!t) return;
    be.preload(t->data, t->nbytes);
    if (bias) be.preload(bias, size_t(t->rows()) * sizeof(float));
  };
  auto norm = [&](const float* w) {
    if (w) be.preload(w, size_t(E) * sizeof(float));
  };
  matrix(w_.tok_embd, nullptr);
  matrix(w_.output, nullptr);
  norm(w_.output_norm);
  for (const LayerWeights& l : w_.layers) {
    norm(l.attn_norm);
    norm(l.ffn_norm);
    matrix(l.wq, l.bq);
    matrix(l.wk, l.bk);
    matrix(l.wv, l.bv);
    for (const TensorView* t : {l.wo, l.w_gate, l.w_up, l.w_down}) matrix(t, nullptr);
  }
}

int64_t Model::n_params() const {
  int64_t n = 0;
  for (const auto& [name, t] : src_.tensors) n += t.numel();
  return n;
}

}  // namespace kvsieve
