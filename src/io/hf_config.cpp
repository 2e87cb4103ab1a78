#include "io/hf_config.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"

namespace kvsieve {

namespace {

using nlohmann::json;

// Typed access to config.json members, every message naming the file and key.
class Reader {
 public:
  Reader(const json& j, const std::string& where) : j_(j), where_(where) {}

  bool has(const json& obj, const char* key) const {
    return obj.is_object() && obj.contains(key) && !obj[key].is_null();
  }
  int64_t integer(const json& obj, const char* key) const {
    if (!has(obj, key)) fail("'{}': missing key '{}'", where_, key);
    const json& v = obj[key];
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        fail("'{}': '{}' = {} is out of range", where_, key, v.dump());
      return v.get<int64_t>();
    }
    // 4096.0 is accepted; 4096.5 and strings are not.
    if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
        std::fabs(v.get<double>()) < 9e15)
      return int64_t(v.get<double>());
    fail("'{}': '{}' should be an integer, found {}", where_, key, v.dump());
  }
  int64_t integer_or(const json& obj, const char* key, int64_t def) const {
    return has(obj, key) ? integer(obj, key) : def;
  }
  double number(const json& obj, const char* key) const {
    if (!has(obj, key)) fail("'{}': missing key '{}'", where_, key);
    const json& v = obj[key];
    if (!v.is_number()) fail("'{}': '{}' should be a number, found {}", where_, key, v.dump());
    return v.get<double>();
  }
  double number_or(const json& obj, const char* key, double def) const {
    return has(obj, key) ? number(obj, key) : def;
  }
  bool boolean_or(const json& obj, const char* key, bool def) const {
    if (!has(obj, key)) return def;
    const json& v = obj[key];
    if (!v.is_boolean()) fail("'{}': '{}' should be true or false, found {}", where_, key, v.dump());
    return v.get<bool>();
  }
  std::string string_or(const json& obj, const char* key, const std::string& def) const {
    if (!has(obj, key)) return def;
    const json& v = obj[key];
    if (!v.is_string()) fail("'{}': '{}' should be a string, found {}", where_, key, v.dump());
    return v.get<std::string>();
  }
  const json& root() const { return j_; }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  const std::string& where_;
};

// "LlamaForCausalLM" / model_type "llama" -> "llama"; nullopt-like "" when unknown.
std::string arch_of(const Reader& r) {
  const json& j = r.root();
  std::string cls;
  if (r.has(j, "architectures")) {
    const json& a = j["architectures"];
    if (!a.is_array() || a.empty() || !a[0].is_string())
      fail("'{}': 'architectures' should be a list of class names", r.where());
    cls = a[0].get<std::string>();
    if (cls == "LlamaForCausalLM" || cls == "MistralForCausalLM") return "llama";
    if (cls == "Qwen2ForCausalLM") return "qwen2";
    fail("'{}': architecture '{}' is not supported (LlamaForCausalLM, MistralForCausalLM, "
         "Qwen2ForCausalLM are)", r.where(), cls);
  }
  const std::string mt = r.string_or(j, "model_type", "");
  if (mt == "llama" || mt == "mistral") return "llama";
  if (mt == "qwen2") return "qwen2";
  if (mt.empty()) fail("'{}': neither 'architectures' nor 'model_type' says what model this is", r.where());
  fail("'{}': model_type '{}' is not supported (llama, mistral, qwen2 are)", r.where(), mt);
}

// Fills theta and scaling from either RoPE form.
void parse_rope(const Reader& r, ModelConfig& c) {
  const json& j = r.root();
  const json* scaling = nullptr;
  c.rope_theta = float(r.number_or(j, "rope_theta", 10000.0));
  if (r.has(j, "rope_parameters")) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) fail("'{}': 'rope_parameters' should be an object", r.where());
    if (!rp.contains("rope_theta") && !rp.contains("rope_type"))
      fail("'{}': 'rope_parameters' has neither rope_theta nor rope_type (per-layer-type RoPE "
           "parameters are not supported)", r.where());
    c.rope_theta = float(r.number_or(rp, "rope_theta", c.rope_theta));
    scaling = &rp;
  } else if (r.has(j, "rope_scaling")) {
    scaling = &j["rope_scaling"];
    if (!scaling->is_object()) fail("'{}': 'rope_scaling' should be an object or null", r.where());
  }
  if (!scaling) return;
  std::string type = r.string_or(*scaling, "rope_type", "");
  if (type.empty()) type = r.string_or(*scaling, "type", "default");
  if (type == "default") return;
  if (type == "linear") {
    c.rope_scaling.type = RopeScalingType::kLinear;
    c.rope_scaling.factor = float(r.number(*scaling, "factor"));
  } else if (type == "llama3") {
    c.rope_scaling.type = RopeScalingType::kLlama3;
    c.rope_scaling.factor = float(r.number(*scaling, "factor"));
    c.rope_scaling.low_freq_factor = float(r.number(*scaling, "low_freq_factor"));
    c.rope_scaling.high_freq_factor = float(r.number(*scaling, "high_freq_factor"));
    c.rope_scaling.original_max_position = r.integer(*scaling, "original_max_position_embeddings");
  } else {
    fail("'{}': RoPE scaling type '{}' is not supported (default, linear, llama3 are)", r.where(), type);
  }
}

}  // namespace

ModelConfig parse_hf_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", where, e.what());
  }
  if (!j.is_object()) fail("'{}': expected a JSON object", where);
  Reader r(j, where);
  ModelConfig c;
  c.arch = arch_of(r);
  c.name = r.string_or(j, "_name_or_path", "");
  c.n_vocab = r.integer(j, "vocab_size");
  c.n_embd = r.integer(j, "hidden_size");
  c.n_ff = r.integer(j, "intermediate_size");
  c.n_layer = r.integer(j, "num_hidden_layers");
  c.n_head = r.integer(j, "num_attention_heads");
  c.n_head_kv = r.integer_or(j, "num_key_value_heads", c.n_head);
  c.n_ctx_train = r.integer(j, "max_position_embeddings");
  check(c.n_ctx_train > 0 && c.n_ctx_train <= (int64_t(1) << 24),
        "'{}': max_position_embeddings = {} is out of range", where, c.n_ctx_train);
  if (r.has(j, "head_dim")) {
    c.head_dim = r.integer(j, "head_dim");
  } else {
    check(c.n_head > 0 && c.n_embd > 0 && c.n_embd % c.n_head == 0,
          "'{}': hidden_size {} is not divisible by num_attention_heads {} (and no head_dim is given)",
          where, c.n_embd, c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  c.rms_eps = float(r.number_or(j, "rms_norm_eps", 1e-6));
  c.rope_style = RopeStyle::kNeox;
  parse_rope(r, c);
  c.tied_embeddings = r.boolean_or(j, "tie_word_embeddings", false);

  const std::string act = r.string_or(j, "hidden_act", "silu");
  check(act == "silu", "'{}': hidden_act '{}' is not supported (silu is)", where, act);
  check(!r.boolean_or(j, "mlp_bias", false), "'{}': mlp_bias = true is not supported", where);
  if (c.arch == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases (and none on o_proj)
    if (r.boolean_or(j, "use_sliding_window", false)) c.sliding_window = r.integer_or(j, "sliding_window", 0);
  } else {
    // Llama's attention_bias also adds an o_proj bias, which the canonical tensors do not have.
    check(!r.boolean_or(j, "attention_bias", false),
          "'{}': attention_bias = true (biases on q/k/v/o) is not supported for {}", where, c.arch);
    c.sliding_window = r.integer_or(j, "sliding_window", 0);
  }
  check(c.sliding_window >= 0, "'{}': sliding_window = {} is negative", where, c.sliding_window);
  try {
    c.validate();
  } catch (const Error& e) {
    fail("'{}': {}", where, e.what());
  }
  return c;
}

ModelConfig load_hf_config(const std::string& path) { return parse_hf_config(read_text_file(path), path); }

}  // namespace kvsieve
