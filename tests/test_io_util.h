// Helpers for the model-file tests: tiny random models written as Hugging Face
// folders (config.json + safetensors), in either config form, one file or shards.
#pragma once
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "model/model_config.h"
#include "model/weight_list.h"

namespace kvsieve::testing {

// A model's weights as f32 under canonical names, in the layout its config says.
struct TinyModel {
  ModelConfig cfg;
  std::map<std::string, std::vector<float>> w;
  std::map<std::string, std::vector<int64_t>> shape;
};

inline ModelConfig tiny_config(const std::string& arch = "llama") {
  ModelConfig c;
  c.arch = arch;
  c.name = "tiny-" + arch;
  c.n_vocab = 96;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.n_ff = 96;  // multiple of 32: every matrix quantizable
  c.n_ctx_train = 256;
  c.rms_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::kNeox;
  c.qkv_bias = arch == "qwen2";
  c.tied_embeddings = arch == "qwen2";
  return c;
}

// Random N(0, 0.5) matrices, norms 1 + N(0, 0.1), biases N(0, 0.1).
inline TinyModel make_tiny(const ModelConfig& c, uint32_t seed = 7) {
  TinyModel m;
  m.cfg = c;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for_each_weight(c, [&](const WeightSpec& s) {
    if (!s.required) return;
    int64_t n = 1;
    for (auto d : s.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    const bool norm = s.name.find("norm") != std::string::npos;
    for (auto& x : v) x = norm ? 1.0f + 0.1f * nd(rng) : (s.kind == WeightKind::kVector ? 0.1f : 0.5f) * nd(rng);
    m.w[s.name] = std::move(v);
    m.shape[s.name] = s.shape;
  });
  return m;
}

// Canonical -> Hugging Face parameter name.
inline std::string hf_name(const std::string& canon) {
  static const std::map<std::string, std::string> global = {{"token_embd.weight", "model.embed_tokens.weight"},
                                                           {"output_norm.weight", "model.norm.weight"},
                                                           {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string> layer = {
      {"attn_q.weight", "self_attn.q_proj.weight"}, {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"}, {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},     {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},     {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"}};
  if (auto it = global.find(canon); it != global.end()) return it->second;
  const size_t dot1 = canon.find('.'), dot2 = canon.find('.', dot1 + 1);
  const std::string l = canon.substr(dot1 + 1, dot2 - dot1 - 1);
  return "model.layers." + l + "." + layer.at(canon.substr(dot2 + 1));
}

enum class ConfigForm { kLegacy, kRopeParameters };

inline nlohmann::json hf_config_json(const ModelConfig& c, ConfigForm form) {
  nlohmann::json j;
  j["architectures"] = {c.arch == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = c.arch;
  j["vocab_size"] = c.n_vocab;
  j["hidden_size"] = c.n_embd;
  j["intermediate_size"] = c.n_ff;
  j["num_hidden_layers"] = c.n_layer;
  j["num_attention_heads"] = c.n_head;
  j["num_key_value_heads"] = c.n_head_kv;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.n_ctx_train;
  j["rms_norm_eps"] = c.rms_eps;
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["hidden_act"] = "silu";
  nlohmann::json rope = nlohmann::json::object();
  if (c.rope_scaling.type == RopeScalingType::kLinear) {
    rope = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  } else if (c.rope_scaling.type == RopeScalingType::kLlama3) {
    rope = {{"rope_type", "llama3"},
            {"factor", c.rope_scaling.factor},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  }
  if (form == ConfigForm::kLegacy) {
    j["rope_theta"] = c.rope_theta;
    j["rope_scaling"] = rope.empty() ? nlohmann::json() : rope;
  } else {
    if (rope.empty()) rope["rope_type"] = "default";
    rope["rope_theta"] = c.rope_theta;
    j["rope_parameters"] = rope;
  }
  return j;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Tensor bytes of an f32 vector converted to `t` (F32, F16 or BF16).
inline std::vector<uint8_t> to_bytes(const std::vector<float>& v, DType t) {
  std::vector<uint8_t> out(v.size() * dtype_block_bytes(t));
  quantize_row(t, v.data(), out.data(), int64_t(v.size()));
  return out;
}

// Writes m as a Hugging Face folder in `dir` (which must exist): weights in
// `dtype`, split over `shards` files with an index when shards > 1.
inline void write_hf_folder(const std::string& dir, const TinyModel& m, DType dtype = DType::F32,
                            ConfigForm form = ConfigForm::kRopeParameters, int shards = 1) {
  write_text(dir + "/config.json", hf_config_json(m.cfg, form).dump(2));
  std::vector<SafetensorsWriter> ws(static_cast<size_t>(shards));
  nlohmann::json index;
  int i = 0;
  for (const auto& [name, v] : m.w) {
    const int s = i++ % shards;
    const auto bytes = to_bytes(v, dtype);
    ws[size_t(s)].add(hf_name(name), dtype, m.shape.at(name), bytes.data());
    index["weight_map"][hf_name(name)] = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards);
  }
  if (shards == 1) {
    ws[0].set_metadata("format", "pt");
    ws[0].write(dir + "/model.safetensors");
    return;
  }
  for (int s = 0; s < shards; ++s)
    ws[size_t(s)].write(dir + fmt::format("/model-{:05d}-of-{:05d}.safetensors", s + 1, shards));
  index["metadata"] = {{"total_size", 0}};
  write_text(dir + "/model.safetensors.index.json", index.dump(2));
}

// A tensor of a loaded model as f32.
inline std::vector<float> as_f32(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  const int64_t cols = t.shape.empty() ? 1 : t.cols();
  for (int64_t r = 0; r < t.numel() / cols; ++r)
    dequantize_row(t.type, static_cast<const uint8_t*>(t.data) + size_t(r) * dtype_row_bytes(t.type, cols),
                   out.data() + r * cols, cols);
  return out;
}

}  // namespace kvsieve::testing
