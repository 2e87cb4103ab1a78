// Hugging Face tokenizer.json (+ tokenizer_config.json beside it) -> VocabSpec.
//
// Two kinds of BPE model are understood:
//  - SentencePiece-style (Llama 2, Mistral): byte_fallback, spaces as U+2581
//    (a Replace/Prepend normalizer or a Metaspace pre-tokenizer). Hugging Face
//    lists merges instead of scores; the converter wrote every split of each
//    piece, ordered by the piece's score, so a piece's score is recovered as
//    minus the rank of the first merge that produces it.
//  - byte-level (GPT-2, Llama 3, Qwen2): a ByteLevel pre-tokenizer, with the
//    GPT-2 regex or a Split regex that must be one of the known ones.
// Added tokens become control tokens (special: true) or user-defined ones.
// Not applied: Unicode normalizers (Qwen2's NFC; input that is already NFC,
// as almost all text is, gives the same ids) and added tokens' lstrip/rstrip.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

using json = nlohmann::json;
constexpr std::string_view kSpace = "\xE2\x96\x81";

json parse_json(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("'{}': not valid JSON: {}", path, e.what());
  }
}

// Calls fn on a pre-tokenizer/normalizer/decoder object and, for Sequence
// types, on each member.
template <typename Fn>
void for_each_component(const json& j, const Fn& fn) {
  if (!j.is_object()) return;
  fn(j);
  for (const char* key : {"pretokenizers", "normalizers", "decoders", "processors"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_array())
      for (const json& m : *it) for_each_component(m, fn);
  }
}

std::string type_of(const json& j) {
  auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool has_component(const json& root, const char* section, std::string_view type) {
  auto it = root.find(section);
  if (it == root.end()) return false;
  bool found = false;
  for_each_component(*it, [&](const json& c) { found = found || type_of(c) == type; });
  return found;
}

// A token given in tokenizer_config.json: "text", {"content": "text"} or null.
std::string config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return "";
}

VocabSpec load_tokenizer_json(const std::string& path) {
  const json root = parse_json(path);
  check(root.is_object(), "'{}': tokenizer.json should be a JSON object", path);
  auto mit = root.find("model");
  check(mit != root.end() && mit->is_object(), "'{}': tokenizer.json has no 'model' object", path);
  const json& model = *mit;
  const std::string mtype = type_of(model);
  check(mtype == "BPE" || (mtype.empty() && model.contains("merges")),
        "'{}': tokenizer model type '{}' is not supported (only BPE)", path, mtype);
  auto vit = model.find("vocab");
  check(vit != model.end() && vit->is_object(), "'{}': model.vocab should be an object", path);

  // ---- tokens: model.vocab plus added_tokens, by id
  std::vector<std::string> tokens;
  std::vector<uint8_t> filled;
  auto place = [&](const std::string& text, const json& idj, const char* where) -> int32_t {
    check(idj.is_number_integer(), "'{}': {} '{}' has a non-integer id", path, where, text);
    const int64_t id = idj.get<int64_t>();
    check(id >= 0 && id < (int64_t(1) << 24), "'{}': {} '{}' has id {} (out of range)", path,
          where, text, id);
    if (size_t(id) >= tokens.size()) {
      tokens.resize(size_t(id) + 1);
      filled.resize(size_t(id) + 1, 0);
    }
    check(!filled[size_t(id)] || tokens[size_t(id)] == text,
          "'{}': id {} is given to both '{}' and '{}'", path, id, tokens[size_t(id)], text);
    tokens[size_t(id)] = text;
    filled[size_t(id)] = 1;
    return int32_t(id);
  };
  for (auto it = vit->begin(); it != vit->end(); ++it) place(it.key(), it.value(), "vocab entry");
  const size_t n_model = tokens.size();
  std::vector<std::pair<int32_t, bool>> added;  // (id, special)
  if (auto at = root.find("added_tokens"); at != root.end() && !at->is_null()) {
    check(at->is_array(), "'{}': added_tokens should be an array", path);
    for (const json& a : *at) {
      check(a.is_object() && a.contains("content") && a["content"].is_string() && a.contains("id"),
            "'{}': an added token lacks 'id' or 'content'", path);
      const std::string content = a["content"].get<std::string>();
      check(!content.empty(), "'{}': added token with id {} is empty", path, a["id"].dump());
      const int32_t id = place(content, a["id"], "added token");
      added.emplace_back(id, a.value("special", false));
    }
  }
  check(!tokens.empty(), "'{}': the vocabulary is empty", path);
  for (size_t i = 0; i < tokens.size(); ++i)
    check(filled[i], "'{}': no token has id {} (ids must be 0..{} without gaps)", path, i,
          tokens.size() - 1);

  // ---- merges: "a b" strings or ["a", "b"] pairs
  std::vector<std::string> merges;
  if (auto it = model.find("merges"); it != model.end() && !it->is_null()) {
    check(it->is_array(), "'{}': model.merges should be an array", path);
    merges.reserve(it->size());
    for (const json& m : *it) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else {
        check(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
              "'{}': merge {} should be \"a b\" or [\"a\", \"b\"]", path, merges.size());
        const std::string a = m[0].get<std::string>(), b = m[1].get<std::string>();
        check(a.find(' ') == std::string::npos && b.find(' ') == std::string::npos,
              "'{}': merge {} has a space inside a token, which GGUF-style merges cannot hold",
              path, merges.size());
        merges.push_back(a + " " + b);
      }
      const std::string& s = merges.back();
      const size_t sp = s.find(' ', 1);
      check(sp != std::string::npos && sp + 1 < s.size(),
            "'{}': merge {} '{}' is not two tokens separated by a space", path, merges.size() - 1, s);
    }
  }

  // ---- which kind of BPE
  const bool byte_fallback = model.value("byte_fallback", false);
  const bool byte_level = has_component(root, "pre_tokenizer", "ByteLevel");
  const bool metaspace = has_component(root, "pre_tokenizer", "Metaspace");
  bool metaspace_prepend = false;
  bool prepend = false, replace_space = false;
  if (auto it = root.find("normalizer"); it != root.end())
    for_each_component(*it, [&](const json& c) {
      const std::string t = type_of(c);
      if (t == "Prepend" && c.value("prepend", "") == kSpace) prepend = true;
      if (t == "Replace" && c.value("content", "") == kSpace) replace_space = true;
    });

  VocabSpec v;
  v.tokens = std::move(tokens);
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  for (auto [id, special] : added)
    v.types[size_t(id)] = special ? TokenType::kControl : TokenType::kUserDefined;
  v.merges = std::move(merges);

  if (byte_level) {
    v.model = "gpt2";
    v.pre = "";
    bool use_regex = false;
    for_each_component(root.at("pre_tokenizer"), [&](const json& c) {
      const std::string t = type_of(c);
      if (t == "ByteLevel") {
        use_regex = c.value("use_regex", true);
        v.add_space_prefix = c.value("add_prefix_space", true);
      } else if (t == "Split") {
        std::string re;
        if (auto p = c.find("pattern"); p != c.end() && p->is_object()) {
          if (p->contains("Regex") && (*p)["Regex"].is_string()) re = (*p)["Regex"].get<std::string>();
          else if (p->contains("String") && (*p)["String"].is_string()) re = (*p)["String"].get<std::string>();
        }
        const std::string_view name = pretokenizer_from_regex(re);
        check(!name.empty(), "'{}': pre-tokenizer Split pattern is not one of the supported ones "
              "(GPT-2, Llama 3, Qwen2): {}", path, re);
        v.pre = std::string(name);
      } else if (t != "Sequence") {
        fail("'{}': pre-tokenizer '{}' is not supported with byte-level BPE", path, t);
      }
    });
    if (v.pre.empty()) {
      check(use_regex, "'{}': ByteLevel pre-tokenizer without a regex is not supported", path);
      v.pre = "gpt2";
    }
    check(!v.merges.empty(), "'{}': byte-level BPE without merges", path);
  } else if (byte_fallback || metaspace || prepend || replace_space) {
    v.model = "llama";
    v.pre = "default";
    if (metaspace) {
      for_each_component(root.at("pre_tokenizer"), [&](const json& c) {
        if (type_of(c) != "Metaspace") return;
        check(!c.value("split", false), "'{}': Metaspace pre-tokenizer with split=true is not "
              "supported (SentencePiece does not split words)", path);
        // Older files say add_prefix_space instead of prepend_scheme.
        const std::string scheme =
            c.value("prepend_scheme", c.value("add_prefix_space", true) ? "always" : "never");
        check(scheme == "always" || scheme == "first" || scheme == "never",
              "'{}': Metaspace prepend_scheme '{}' is unknown", path, scheme);
        if (scheme != "never") {
          metaspace_prepend = true;
          v.prefix_scheme = scheme;
        }
      });
    }
    // A Prepend("▁") normalizer prefixes every run of text, like SentencePiece.
    if (prepend) v.prefix_scheme.clear();
    v.add_space_prefix = prepend || metaspace_prepend;
    // Byte pieces and <unk>.
    const std::string unk = model.contains("unk_token") && model["unk_token"].is_string()
                                ? model["unk_token"].get<std::string>() : "";
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const std::string& t = v.tokens[i];
      if (byte_fallback && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
        v.types[i] = TokenType::kByte;
      if (!unk.empty() && t == unk) {
        v.types[i] = TokenType::kUnknown;
        v.unk = int32_t(i);
      }
    }
    // Scores from merge ranks (see the top of the file). Pieces no merge
    // produces rank below all others.
    std::unordered_map<std::string, int32_t> id_of;
    for (size_t i = 0; i < v.tokens.size(); ++i) id_of[v.tokens[i]] = int32_t(i);
    v.scores.assign(v.tokens.size(), 0.0f);
    std::vector<uint8_t> scored(v.tokens.size(), 0);
    for (size_t r = 0; r < v.merges.size(); ++r) {
      const std::string& m = v.merges[r];
      const size_t sp = m.find(' ', 1);
      auto it = id_of.find(m.substr(0, sp) + m.substr(sp + 1));
      check(it != id_of.end(), "'{}': merge {} '{}' makes a piece that is not in the vocabulary",
            path, r, m);
      if (!scored[size_t(it->second)]) {
        scored[size_t(it->second)] = 1;
        v.scores[size_t(it->second)] = -float(r);
      }
    }
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (!scored[i]) v.scores[i] = -float(v.merges.size() + i);
    v.merges.clear();  // the scores carry them now
  } else {
    fail("'{}': cannot tell the tokenizer kind: neither a ByteLevel pre-tokenizer (byte-level "
         "BPE) nor byte_fallback/Metaspace (SentencePiece-style BPE)", path);
  }
  (void)n_model;

  // ---- special ids and flags: tokenizer_config.json, else the post-processor
  auto find_id = [&](const std::string& text) -> int32_t {
    if (text.empty()) return -1;
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == text) return int32_t(i);
    return -1;
  };
  const bool spm = v.model == "llama";
  std::string bos = spm ? "<s>" : "", eos = spm ? "</s>" : "";
  if (!spm && find_id("<|endoftext|>") >= 0) bos = eos = "<|endoftext|>";
  std::optional<bool> add_bos, add_eos;
  // Post-processor template: a special token before $A adds BOS, after it EOS.
  if (auto pp = root.find("post_processor"); pp != root.end())
    for_each_component(*pp, [&](const json& c) {
      if (type_of(c) != "TemplateProcessing" || !c.contains("single") || !c["single"].is_array()) return;
      const json& single = c["single"];
      bool seen_seq = false, bos_set = false;
      for (const json& item : single) {
        if (item.contains("Sequence")) {
          seen_seq = true;
        } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id")) {
          const std::string t = item["SpecialToken"]["id"].get<std::string>();
          if (!seen_seq && !bos_set) bos = t, add_bos = bos_set = true;
          if (seen_seq) eos = t, add_eos = true;
        }
      }
      if (!add_bos) add_bos = false;
      if (!add_eos) add_eos = false;
    });
  const std::filesystem::path cfg_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    const json cfg = parse_json(cfg_path.string());
    check(cfg.is_object(), "'{}': should be a JSON object", cfg_path.string());
    if (auto s = config_token(cfg, "bos_token"); !s.empty()) bos = s;
    if (auto s = config_token(cfg, "eos_token"); !s.empty()) eos = s;
    if (auto s = config_token(cfg, "pad_token"); !s.empty()) v.pad = find_id(s);
    if (auto s = config_token(cfg, "unk_token"); !s.empty() && find_id(s) >= 0) v.unk = find_id(s);
    if (auto it = cfg.find("add_bos_token"); it != cfg.end() && it->is_boolean()) add_bos = it->get<bool>();
    if (auto it = cfg.find("add_eos_token"); it != cfg.end() && it->is_boolean()) add_eos = it->get<bool>();
    if (auto it = cfg.find("chat_template"); it != cfg.end()) {
      if (it->is_string()) {
        v.chat_template = it->get<std::string>();
      } else if (it->is_array()) {  // [{"name": ..., "template": ...}]: take "default"
        for (const json& t : *it)
          if (t.is_object() && t.value("name", "") == "default" && t.contains("template") &&
              t["template"].is_string())
            v.chat_template = t["template"].get<std::string>();
      }
    }
  }
  v.bos = find_id(bos);
  v.eos = find_id(eos);
  for (const char* e : {"<|eot_id|>", "<|im_end|>", "<|end|>"})
    if (v.eot < 0) v.eot = find_id(e);
  v.add_bos = add_bos.value_or(spm) && v.bos >= 0;
  v.add_eos = add_eos.value_or(false) && v.eos >= 0;
  try {
    v.validate();
  } catch (const Error& e) {
    fail("'{}': {}", path, e.what());
  }
  return v;
}

}  // namespace

VocabSpec vocab_from_tokenizer_json(const std::string& path) {
  try {
    return load_tokenizer_json(path);
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type (e.g. a number where a string belongs).
    fail("'{}': unexpected tokenizer.json structure: {}", path, e.what());
  }
}

}  // namespace kvsieve
