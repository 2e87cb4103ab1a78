// Pre-tokenizers of byte-level BPE: a regex splits the text into words before
// BPE runs inside each word. PCRE2 with UTF and UCP (Unicode \p{L}, \p{N}, \s),
// matching what tiktoken (Rust regex) and Hugging Face tokenizers (Oniguruma)
// do for these patterns.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace kvsieve {

// The pattern of a pre-tokenizer name ("gpt2"/"default", "llama3"/"llama-bpe"/
// "llama-v3", "qwen2", "smollm"/"starcoder": single digits first, then
// GPT-2's pattern), or "" when unknown.
std::string_view pretokenizer_regex(std::string_view name);
bool pretokenizer_known(std::string_view name);
std::string pretokenizer_names();  // for error messages
// The name whose pattern is exactly `regex`, or "" (tokenizer.json detection).
std::string_view pretokenizer_from_regex(std::string_view regex);

class PreTokenizer {
 public:
  // Throws Error when the name is unknown.
  explicit PreTokenizer(std::string_view name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends the words of `text` (valid UTF-8) to out, in order; together they
  // cover the text exactly (unmatched gaps become words of their own).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  void* code_ = nullptr;    // pcre2_code*
  void* digits_ = nullptr;  // pcre2_code* of \p{N}, for the digits-first pre-tokenizers
  bool jit_ = false, digits_jit_ = false;
};

}  // namespace kvsieve
