// Hugging Face folders: config.json + safetensors weights (one file or shards
// listed by model.safetensors.index.json), names mapped to the canonical ones.
#include <charconv>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/hf_config.h"
#include "io/model_source.h"
#include "io/safetensors.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {

namespace fs = std::filesystem;

namespace {

// HF parameter name -> canonical name; "" for tensors that carry nothing a
// model needs (rotary inv_freq buffers). Throws for anything unknown, so a
// weight the engine would ignore (an o_proj bias, say) is never dropped silently.
std::string canonical_name(const std::string& hf, int64_t n_layer, const std::string& where) {
  static const std::map<std::string, std::string> global = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string> per_layer = {
      {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},       {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},        {"mlp.down_proj.weight", "ffn_down.weight"},
      {"input_layernorm.weight", "attn_norm.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
  };
  if (auto it = global.find(hf); it != global.end()) return it->second;
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) == 0) {
    const char* b = hf.data() + prefix.size();
    const char* e = hf.data() + hf.size();
    int64_t layer = -1;
    auto [p, ec] = std::from_chars(b, e, layer);
    if (ec == std::errc() && p != b && p < e && *p == '.') {
      const std::string rest(p + 1, e);
      if (rest == "self_attn.rotary_emb.inv_freq") return "";
      if (auto it = per_layer.find(rest); it != per_layer.end()) {
        check(layer >= 0 && layer < n_layer, "'{}': tensor '{}' belongs to layer {} but the model has {} layers",
              where, hf, layer, n_layer);
        return fmt::format("blk.{}.{}", layer, it->second);
      }
    }
  }
  fail("'{}': tensor '{}' is not part of a Llama/Mistral/Qwen2 model as kvsieve knows it", where, hf);
}

// Shard file names from an index must stay inside the folder.
void check_shard_name(const std::string& name, const std::string& index_path) {
  check(!name.empty() && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
            name != "." && name != "..",
        "'{}': shard file name '{}' is not a plain file name in the model folder", index_path, name);
}

}  // namespace

ModelSource open_hf_model(const std::string& dir) {
  const fs::path d(dir);
  const std::string config_path = (d / "config.json").string();
  if (!fs::exists(config_path))
    fail("'{}' is not a Hugging Face model folder (no config.json)", dir);
  ModelSource m;
  m.path = dir;
  m.format = "hf";
  m.config = load_hf_config(config_path);
  if (m.config.name.empty()) m.config.name = fs::absolute(d).lexically_normal().filename().string();
  if (m.config.name.empty()) m.config.name = fs::absolute(d).lexically_normal().parent_path().filename().string();

  // name -> shard file; shards opened once.
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  std::vector<std::pair<std::string, std::string>> wanted;  // (hf tensor name, shard file)
  const std::string index_path = (d / "model.safetensors.index.json").string();
  const std::string single_path = (d / "model.safetensors").string();
  if (fs::exists(index_path)) {
    nlohmann::json idx;
    try {
      idx = nlohmann::json::parse(read_text_file(index_path));
    } catch (const nlohmann::json::exception& e) {
      fail("'{}' is not valid JSON: {}", index_path, e.what());
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail("'{}': expected an object with a 'weight_map' object", index_path);
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("'{}': weight_map['{}'] is not a file name", index_path, it.key());
      const std::string shard = it.value().get<std::string>();
      check_shard_name(shard, index_path);
      wanted.emplace_back(it.key(), shard);
    }
    check(!wanted.empty(), "'{}': weight_map is empty", index_path);
    for (const auto& [name, shard] : wanted)
      if (!shards.count(shard)) {
        const std::string sp = (d / shard).string();
        if (!fs::exists(sp)) fail("'{}': shard '{}' listed for tensor '{}' does not exist", index_path, shard, name);
        shards[shard] = std::make_shared<SafetensorsFile>(sp);
      }
  } else if (fs::exists(single_path)) {
    auto f = std::make_shared<SafetensorsFile>(single_path);
    shards["model.safetensors"] = f;
    for (const TensorView& t : f->tensors()) wanted.emplace_back(t.name, "model.safetensors");
  } else {
    fail("'{}': no model.safetensors or model.safetensors.index.json (other weight formats such as "
         "pytorch_model.bin are not supported)", dir);
  }
  for (const auto& [file, st] : shards) m.keep_alive.push_back(st->mapping());

  for (const auto& [hf_name, shard] : wanted) {
    const SafetensorsFile& st = *shards.at(shard);
    const TensorView* t = st.tensor(hf_name);
    if (!t) fail("'{}': tensor '{}' is listed in the index but not in '{}'", dir, hf_name, st.path());
    const std::string name = canonical_name(hf_name, m.config.n_layer, st.path());
    if (name.empty()) continue;
    // Tied models may still store lm_head; transformers ties it to the embedding anyway.
    if (name == "output.weight" && m.config.tied_embeddings) continue;
    if (m.tensors.count(name)) fail("'{}': tensor '{}' appears twice", dir, hf_name);
    TensorView v = *t;
    v.name = name;
    m.tensors[name] = std::move(v);
  }

  const std::string tok_json = (d / "tokenizer.json").string();
  const std::string tok_model = (d / "tokenizer.model").string();
  if (fs::exists(tok_json))
    m.vocab = vocab_from_tokenizer_json(tok_json);
  else if (fs::exists(tok_model))
    m.vocab = load_vocab_file(tok_model);
  check_model_tensors(m);
  return m;
}

}  // namespace kvsieve
