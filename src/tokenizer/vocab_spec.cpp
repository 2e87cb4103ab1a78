#include "tokenizer/vocab_spec.h"

#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode/utf8.h"

namespace kvsieve {

void VocabSpec::validate() const {
  check(model == "llama" || model == "gpt2",
        "vocabulary: tokenizer model '{}' is not supported (only 'llama' and 'gpt2')", model);
  if (model == "gpt2")
    check(pretokenizer_known(pre),
          "vocabulary: pre-tokenizer '{}' is not supported (known: {})", pre,
          pretokenizer_names());
  check(prefix_scheme.empty() || prefix_scheme == "always" || prefix_scheme == "first",
        "vocabulary: prefix scheme '{}' is unknown (\"\", \"always\" or \"first\")", prefix_scheme);
  const size_t n = tokens.size();
  check(n > 0, "vocabulary: no tokens");
  check(n < size_t(INT32_MAX), "vocabulary: {} tokens do not fit 32-bit ids", n);
  check(scores.empty() || scores.size() == n,
        "vocabulary: {} scores for {} tokens (sizes must agree)", scores.size(), n);
  check(types.empty() || types.size() == n,
        "vocabulary: {} token types for {} tokens (sizes must agree)", types.size(), n);
  for (size_t i = 0; i < types.size(); ++i) {
    const int32_t t = int32_t(types[i]);
    check(t >= 0 && t <= 6, "vocabulary: token {} has type {} (valid types are 0..6)", i, t);
  }
  for (size_t i = 0; i < n; ++i) {
    const char* reason = "";
    const size_t at = utf8::find_invalid(tokens[i], &reason);
    check(at == std::string_view::npos, "vocabulary: token {} is not valid UTF-8 ({} at byte {})",
          i, reason, at);
  }
  for (size_t i = 0; i < scores.size(); ++i)
    check(scores[i] == scores[i], "vocabulary: score of token {} is NaN", i);
  auto check_id = [&](int32_t id, const char* what) {
    check(id >= -1 && id < int64_t(n), "vocabulary: {} id {} is out of range (vocabulary has {} tokens)",
          what, id, n);
  };
  check_id(bos, "BOS");
  check_id(eos, "EOS");
  check_id(unk, "unknown-token");
  check_id(pad, "padding");
  check_id(eot, "end-of-turn");
  check(!add_bos || bos >= 0, "vocabulary: add_bos is set but there is no BOS token");
  check(!add_eos || eos >= 0, "vocabulary: add_eos is set but there is no EOS token");
  if (model == "gpt2") {
    check(!merges.empty(), "vocabulary: byte-level BPE without merges");
    std::unordered_set<std::string_view> known;
    known.reserve(tokens.size() * 2);
    known.insert(tokens.begin(), tokens.end());
    std::string joined;
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string& m = merges[i];
      const size_t sp = m.find(' ', 1);
      check(sp != std::string::npos && sp + 1 < m.size() && m.find(' ', sp + 1) == std::string::npos,
            "vocabulary: merge {} '{}' is not two tokens separated by one space", i, m);
      const std::string_view a = std::string_view(m).substr(0, sp), b = std::string_view(m).substr(sp + 1);
      joined.assign(a);
      joined.append(b);
      check(known.count(a) && known.count(b) && known.count(joined),
            "vocabulary: merge {} '{}': '{}' is not a token", i, m,
            !known.count(a) ? a : !known.count(b) ? b : std::string_view(joined));
    }
  }
}

}  // namespace kvsieve
