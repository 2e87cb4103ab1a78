#include "io/gguf_model.h"

#include <cmath>

#include "core/error.h"
#include "io/gguf.h"

namespace kvsieve {

namespace {

int64_t require_int(const GgufFile& f, const std::string& key) {
  auto v = f.get_int(key);
  if (!v) fail("'{}': missing metadata '{}'", f.path(), key);
  return *v;
}

// Reads the llama3 parameters under `prefix` (e.g. "kvsieve.rope.scaling").
RopeScaling llama3_from(const GgufFile& f, const std::string& prefix) {
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  auto need = [&](const char* k) {
    auto v = f.get_float(prefix + "." + k);
    if (!v) fail("'{}': llama3 RoPE scaling needs metadata '{}.{}'", f.path(), prefix, k);
    return *v;
  };
  s.factor = float(need("factor"));
  s.low_freq_factor = float(need("low_freq_factor"));
  s.high_freq_factor = float(need("high_freq_factor"));
  auto orig = f.get_int(prefix + ".original_context_length");
  if (!orig) fail("'{}': llama3 RoPE scaling needs metadata '{}.original_context_length'", f.path(), prefix);
  s.original_max_position = *orig;
  return s;
}

}  // namespace

ModelConfig config_from_gguf(const GgufFile& f) {
  ModelConfig c;
  auto arch = f.get_string("general.architecture");
  if (!arch) fail("'{}': missing metadata 'general.architecture'", f.path());
  if (*arch != "llama" && *arch != "qwen2")
    fail("'{}': GGUF architecture '{}' is not supported (llama, qwen2 are)", f.path(), *arch);
  c.arch = *arch;
  const std::string a = c.arch + ".";
  c.name = f.get_string("general.name").value_or("");
  c.n_ctx_train = require_int(f, a + "context_length");
  c.n_embd = require_int(f, a + "embedding_length");
  c.n_layer = require_int(f, a + "block_count");
  c.n_ff = require_int(f, a + "feed_forward_length");
  c.n_head = require_int(f, a + "attention.head_count");
  c.n_head_kv = f.get_int(a + "attention.head_count_kv").value_or(c.n_head);
  auto eps = f.get_float(a + "attention.layer_norm_rms_epsilon");
  if (!eps) fail("'{}': missing metadata '{}attention.layer_norm_rms_epsilon'", f.path(), a);
  c.rms_eps = float(*eps);
  if (auto kl = f.get_int(a + "attention.key_length")) {
    c.head_dim = *kl;
  } else {
    check(c.n_head > 0 && c.n_embd % c.n_head == 0,
          "'{}': embedding length {} is not divisible by {} heads (and no attention.key_length)", f.path(),
          c.n_embd, c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  if (auto vl = f.get_int(a + "attention.value_length"))
    check(*vl == c.head_dim, "'{}': attention.value_length {} differs from key_length {} (not supported)",
          f.path(), *vl, c.head_dim);
  if (auto rd = f.get_int(a + "rope.dimension_count"))
    check(*rd == c.head_dim, "'{}': rope.dimension_count {} differs from the head dim {} (partial RoPE is not "
          "supported)", f.path(), *rd, c.head_dim);
  c.rope_theta = float(f.get_float(a + "rope.freq_base").value_or(10000.0));
  c.sliding_window = f.get_int(a + "attention.sliding_window").value_or(0);
  check(c.sliding_window >= 0, "'{}': attention.sliding_window {} is negative", f.path(), c.sliding_window);

  if (auto v = f.get_int(a + "vocab_size")) {
    c.n_vocab = *v;
  } else if (auto* toks = f.find("tokenizer.ggml.tokens"); toks && toks->type == GgufType::ARRAY) {
    c.n_vocab = int64_t(toks->array_size());
  } else if (const TensorView* e = f.tensor("token_embd.weight"); e && e->shape.size() == 2) {
    c.n_vocab = e->shape[0];
  } else {
    fail("'{}': cannot tell the vocabulary size (no {}vocab_size, token list or token_embd.weight)", f.path(), a);
  }

  // RoPE scaling. llama.cpp treats a factor without a type as linear.
  auto factor = f.get_float(a + "rope.scaling.factor");
  if (!factor) factor = f.get_float(a + "rope.scale_linear");
  const std::string type = f.get_string(a + "rope.scaling.type").value_or(factor ? "linear" : "none");
  if (type == "linear") {
    if (factor && *factor != 0 && *factor != 1) {
      c.rope_scaling.type = RopeScalingType::kLinear;
      c.rope_scaling.factor = float(*factor);
    }
  } else if (type == "llama3") {
    c.rope_scaling = llama3_from(f, a + "rope.scaling");
  } else if (type != "none") {
    fail("'{}': RoPE scaling type '{}' is not supported (none, linear, llama3 are)", f.path(), type);
  }
  if (auto kt = f.get_string("kvsieve.rope.scaling.type")) {
    check(*kt == "llama3", "'{}': kvsieve.rope.scaling.type '{}' is not supported (llama3 is)", f.path(), *kt);
    check(c.rope_scaling.type == RopeScalingType::kNone,
          "'{}': both {}rope.scaling.type and kvsieve.rope.scaling.type are set", f.path(), a);
    c.rope_scaling = llama3_from(f, "kvsieve.rope.scaling");
  }
  if (c.rope_scaling.type != RopeScalingType::kNone) {
    if (auto orig = f.get_int(a + "rope.scaling.original_context_length");
        orig && c.rope_scaling.type == RopeScalingType::kLinear)
      c.rope_scaling.original_max_position = *orig;
  }

  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kInterleaved;
  c.tied_embeddings = f.tensor("output.weight") == nullptr;
  c.qkv_bias = f.tensor("blk.0.attn_q.bias") != nullptr;
  try {
    c.validate();
  } catch (const Error& e) {
    fail("'{}': {}", f.path(), e.what());
  }
  return c;
}

void config_to_gguf(const ModelConfig& c, GgufWriter& w) {
  const std::string a = c.arch + ".";
  w.set_string("general.architecture", c.arch);
  w.set_string("general.name", c.name.empty() ? std::string("kvsieve model") : c.name);
  w.set_u32(a + "context_length", uint32_t(c.n_ctx_train));
  w.set_u32(a + "embedding_length", uint32_t(c.n_embd));
  w.set_u32(a + "block_count", uint32_t(c.n_layer));
  w.set_u32(a + "feed_forward_length", uint32_t(c.n_ff));
  w.set_u32(a + "attention.head_count", uint32_t(c.n_head));
  w.set_u32(a + "attention.head_count_kv", uint32_t(c.n_head_kv));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_u32(a + "attention.key_length", uint32_t(c.head_dim));
  w.set_u32(a + "attention.value_length", uint32_t(c.head_dim));
  w.set_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
  w.set_f32(a + "rope.freq_base", c.rope_theta);
  w.set_u32(a + "vocab_size", uint32_t(c.n_vocab));
  if (c.sliding_window > 0) w.set_u32(a + "attention.sliding_window", uint32_t(c.sliding_window));
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScalingType::kLinear) {
    w.set_string(a + "rope.scaling.type", "linear");
    w.set_f32(a + "rope.scaling.factor", s.factor);
  } else if (s.type == RopeScalingType::kLlama3) {
    w.set_string("kvsieve.rope.scaling.type", "llama3");
    w.set_f32("kvsieve.rope.scaling.factor", s.factor);
    w.set_f32("kvsieve.rope.scaling.low_freq_factor", s.low_freq_factor);
    w.set_f32("kvsieve.rope.scaling.high_freq_factor", s.high_freq_factor);
    w.set_u32("kvsieve.rope.scaling.original_context_length", uint32_t(s.original_max_position));
  }
}

std::vector<float> llama3_rope_freq_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  check(s.type == RopeScalingType::kLlama3, "llama3_rope_freq_factors: the model has no llama3 scaling");
  const double pi = 3.14159265358979323846;
  const double orig = double(s.original_max_position);
  const double low_wavelen = orig / s.low_freq_factor, high_wavelen = orig / s.high_freq_factor;
  std::vector<float> out(size_t(c.head_dim / 2));
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double freq = std::pow(double(c.rope_theta), -double(2 * i) / double(c.head_dim));
    const double wavelen = 2 * pi / freq;
    double divisor;
    if (wavelen < high_wavelen) {
      divisor = 1.0;
    } else if (wavelen > low_wavelen) {
      divisor = s.factor;
    } else {
      const double smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      divisor = 1.0 / ((1.0 - smooth) / s.factor + smooth);
    }
    out[size_t(i)] = float(divisor);
  }
  return out;
}

}  // namespace kvsieve
