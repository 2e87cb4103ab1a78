// tokenizer.ggml.* metadata of GGUF files <-> VocabSpec.
#include <cmath>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTypes = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kEot = "tokenizer.ggml.eot_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpace = "tokenizer.ggml.add_space_prefix";
constexpr const char* kChat = "tokenizer.chat_template";
constexpr const char* kPrefixScheme = "kvsieve.tokenizer.prefix_scheme";  // ours, see VocabSpec

}  // namespace

bool gguf_has_vocab(const GgufFile& f) { return f.find(kTokens) != nullptr; }

VocabSpec vocab_from_gguf(const GgufFile& f) {
  const std::string& path = f.path();
  check(gguf_has_vocab(f), "'{}': GGUF file has no tokenizer ({} is missing)", path, kTokens);
  VocabSpec v;
  v.model = f.get_string(kModel).value_or("");
  check(!v.model.empty(), "'{}': GGUF vocabulary has no {}", path, kModel);
  check(v.model == "llama" || v.model == "gpt2",
        "'{}': GGUF tokenizer model '{}' is not supported (only 'llama' and 'gpt2')", path, v.model);
  v.pre = f.get_string(kPre).value_or("default");
  v.tokens = *f.get_strings(kTokens);
  const size_t n = v.tokens.size();
  check(n > 0, "'{}': {} is empty", path, kTokens);
  if (const auto* s = f.get_floats(kScores)) {
    check(s->size() == n, "'{}': {} has {} entries for {} tokens", path, kScores, s->size(), n);
    v.scores.reserve(n);
    for (double x : *s) v.scores.push_back(float(x));
  }
  if (const auto* t = f.get_ints(kTypes)) {
    check(t->size() == n, "'{}': {} has {} entries for {} tokens", path, kTypes, t->size(), n);
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t x = (*t)[i];
      check(x >= 0 && x <= 6, "'{}': {}[{}] = {} is not a token type (0..6)", path, kTypes, i, x);
      v.types.push_back(TokenType(x));
    }
  }
  if (const auto* m = f.get_strings(kMerges)) v.merges = *m;
  if (v.model == "gpt2")
    check(!v.merges.empty(), "'{}': byte-level BPE vocabulary without {}", path, kMerges);

  auto id = [&](const char* key) -> int32_t {
    const auto x = f.get_int(key);
    if (!x) return -1;
    // -1 (or its u32 form) is how some writers say "none".
    if (*x == -1 || *x == int64_t(UINT32_MAX)) return -1;
    check(*x >= 0 && *x < int64_t(n), "'{}': {} = {} is out of range (vocabulary has {} tokens)",
          path, key, *x, n);
    return int32_t(*x);
  };
  const bool spm = v.model == "llama";
  // Defaults as llama.cpp applies them when a key is absent.
  v.bos = spm ? 1 : -1;
  v.eos = spm ? 2 : -1;
  v.unk = spm ? 0 : -1;
  if (f.find(kBos)) v.bos = id(kBos);
  if (f.find(kEos)) v.eos = id(kEos);
  if (f.find(kUnk)) v.unk = id(kUnk);
  for (int32_t* p : {&v.bos, &v.eos, &v.unk})
    if (*p >= int32_t(n)) *p = -1;
  v.pad = id(kPad);
  v.eot = id(kEot);
  const bool llama3 = v.pre == "llama3" || v.pre == "llama-bpe" || v.pre == "llama-v3";
  v.add_bos = f.get_bool(kAddBos).value_or(spm || llama3);
  v.add_eos = f.get_bool(kAddEos).value_or(false);
  v.add_space_prefix = f.get_bool(kAddSpace).value_or(spm);
  if (v.add_bos && v.bos < 0) v.add_bos = false;
  v.chat_template = f.get_string(kChat).value_or("");
  v.prefix_scheme = f.get_string(kPrefixScheme).value_or("");
  try {
    v.validate();
  } catch (const Error& e) {
    fail("'{}': {}", path, e.what());
  }
  return v;
}

void vocab_to_gguf(const VocabSpec& v, GgufWriter& w) {
  v.validate();
  w.set_string(kModel, v.model);
  w.set_string(kPre, v.pre);
  w.set_strings(kTokens, v.tokens);
  if (!v.scores.empty()) w.set_f32s(kScores, v.scores);
  std::vector<int32_t> types(v.tokens.size(), int32_t(TokenType::kNormal));
  for (size_t i = 0; i < v.types.size(); ++i) types[i] = int32_t(v.types[i]);
  w.set_i32s(kTypes, types);
  if (!v.merges.empty()) w.set_strings(kMerges, v.merges);
  auto put_id = [&](const char* key, int32_t id) {
    if (id >= 0) w.set_u32(key, uint32_t(id));
  };
  // BOS, EOS and unknown have defaults when absent, so "none" is written
  // explicitly (as u32 -1, which the reader maps back to -1).
  for (auto [key, id] : {std::pair{kBos, v.bos}, {kEos, v.eos}, {kUnk, v.unk}})
    w.set_u32(key, id >= 0 ? uint32_t(id) : UINT32_MAX);
  put_id(kPad, v.pad);
  put_id(kEot, v.eot);
  w.set_bool(kAddBos, v.add_bos);
  w.set_bool(kAddEos, v.add_eos);
  w.set_bool(kAddSpace, v.add_space_prefix);
  if (!v.chat_template.empty()) w.set_string(kChat, v.chat_template);
  if (!v.prefix_scheme.empty()) w.set_string(kPrefixScheme, v.prefix_scheme);
}

}  // namespace kvsieve
