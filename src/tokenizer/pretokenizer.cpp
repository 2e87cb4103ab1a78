#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include <memory>

#include "core/error.h"

namespace kvsieve {
namespace {

// GPT-2 (OpenAI's encoder.py): contractions, letters, numbers, other symbols,
// each optionally after one space; whitespace runs leave their last space to
// the next word.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 (Meta's tokenizer.py, same as tiktoken's cl100k_base): case-blind
// contractions, numbers in groups of up to three digits, newlines kept apart.
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: Llama 3's pattern with single digits.
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Named {
  std::string_view name;
  std::string_view regex;
};
constexpr Named kNamed[] = {
    {"default", kGpt2}, {"gpt2", kGpt2},      {"gpt-2", kGpt2},  {"llama3", kLlama3},
    {"llama-bpe", kLlama3}, {"llama-v3", kLlama3}, {"qwen2", kQwen2},
};

}  // namespace

std::string_view pretokenizer_regex(std::string_view name) {
  for (const Named& n : kNamed)
    if (n.name == name) return n.regex;
  return {};
}
bool pretokenizer_known(std::string_view name) { return !pretokenizer_regex(name).empty(); }
std::string pretokenizer_names() {
  std::string s;
  for (const Named& n : kNamed) s += (s.empty() ? "" : ", ") + std::string(n.name);
  return s;
}
std::string_view pretokenizer_from_regex(std::string_view regex) {
  if (regex == kLlama3) return "llama3";
  if (regex == kQwen2) return "qwen2";
  if (regex == kGpt2) return "gpt2";
  return {};
}

PreTokenizer::PreTokenizer(std::string_view name) {
  const std::string_view re = pretokenizer_regex(name);
  check(!re.empty(), "pre-tokenizer '{}' is not supported (known: {})", name, pretokenizer_names());
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("pre-tokenizer '{}': regex does not compile at {}: {}", name, err_off,
         reinterpret_cast<const char*>(msg));
  }
  // JIT is an optimisation only: without it (or when its stack runs out) the
  // interpreter gives the same matches.
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  code_ = code;
}

PreTokenizer::~PreTokenizer() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  check(md != nullptr, "pre-tokenizer: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The text was validated as UTF-8 by the encoder, so PCRE2 need not check
    // it again at every call (which would make the loop quadratic).
    int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit_)
      rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail("pre-tokenizer: regex match failed at byte {}: {}", pos,
           reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t start = ov[0], end = ov[1];
    if (start > pos) out.push_back(text.substr(pos, start - pos));
    if (end == start) {
      // An empty match cannot happen with these patterns; step one character
      // so that a future pattern with one cannot loop forever.
      size_t step = 1;
      while (start + step < text.size() && (uint8_t(text[start + step]) & 0xC0) == 0x80) ++step;
      out.push_back(text.substr(start, step));
      pos = start + step;
      continue;
    }
    out.push_back(text.substr(start, end - start));
    pos = end;
  }
  if (pos < text.size()) out.push_back(text.substr(pos));
}

}  // namespace kvsieve
