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

// SmolLM (and StarCoder's family): every digit is a word of its own first
// (Hugging Face's Digits(individual_digits) pre-tokenizer), then GPT-2's
// pattern runs on the text between digits. Not one regex: a whitespace run
// before a digit stays one word ("  5" -> "  ", "5"), where GPT-2's pattern
// over the whole text would split it.
constexpr std::string_view kDigit = R"(\p{N})";

struct Named {
  std::string_view name;
  std::string_view regex;
  bool digits_first = false;
};
constexpr Named kNamed[] = {
    {"default", kGpt2},      {"gpt2", kGpt2},        {"gpt-2", kGpt2},
    {"llama3", kLlama3},     {"llama-bpe", kLlama3}, {"llama-v3", kLlama3},
    {"qwen2", kQwen2},       {"smollm", kGpt2, true}, {"starcoder", kGpt2, true},
};

const Named* find_named(std::string_view name) {
  for (const Named& n : kNamed)
    if (n.name == name) return &n;
  return nullptr;
}

void* compile_or_fail(std::string_view name, std::string_view re, bool* jit) {
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
  *jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return code;
}

// Appends the words `code` finds in text, and the gaps between them as words;
// `matched`, when given, gets for each word whether the pattern found it.
void split_with(void* compiled, bool jit, std::string_view text, std::vector<std::string_view>& out,
                std::vector<bool>* matched = nullptr) {
  auto push = [&](std::string_view w, bool m) {
    out.push_back(w);
    if (matched) matched->push_back(m);
  };
  auto* code = static_cast<pcre2_code*>(compiled);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  check(md != nullptr, "pre-tokenizer: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The text was validated as UTF-8 by the encoder, so PCRE2 need not check
    // it again at every call (which would make the loop quadratic).
    int rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit)
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
    if (start > pos) push(text.substr(pos, start - pos), false);
    if (end == start) {
      // An empty match cannot happen with these patterns; step one character
      // so that a future pattern with one cannot loop forever.
      size_t step = 1;
      while (start + step < text.size() && (uint8_t(text[start + step]) & 0xC0) == 0x80) ++step;
      push(text.substr(start, step), true);
      pos = start + step;
      continue;
    }
    push(text.substr(start, end - start), true);
    pos = end;
  }
  if (pos < text.size()) push(text.substr(pos), false);
}

}  // namespace

std::string_view pretokenizer_regex(std::string_view name) {
  const Named* n = find_named(name);
  return n ? n->regex : std::string_view();
}
bool pretokenizer_known(std::string_view name) { return find_named(name) != nullptr; }
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
  const Named* n = find_named(name);
  check(n != nullptr, "pre-tokenizer '{}' is not supported (known: {})", name, pretokenizer_names());
  code_ = compile_or_fail(name, n->regex, &jit_);
  if (n->digits_first) digits_ = compile_or_fail(name, kDigit, &digits_jit_);
}

PreTokenizer::~PreTokenizer() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
  if (digits_) pcre2_code_free(static_cast<pcre2_code*>(digits_));
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (!digits_) {
    split_with(code_, jit_, text, out);
    return;
  }
  // Digits first: each is a word; the main pattern splits what lies between.
  std::vector<std::string_view> parts;
  std::vector<bool> digit;
  split_with(digits_, digits_jit_, text, parts, &digit);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (digit[i]) out.push_back(parts[i]);
    else split_with(code_, jit_, parts[i], out);
  }
}

}  // namespace kvsieve
