// load_vocab_file: tells the tokenizer formats apart by their first bytes.
#include <cctype>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

// "base64 digits" on the first line: Meta's tiktoken format.
bool looks_like_tiktoken(std::string_view head) {
  const size_t eol = head.find('\n');
  if (eol == std::string_view::npos) return false;
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size()) return false;
  for (size_t i = 0; i < sp; ++i) {
    const char c = line[i];
    if (!(std::isalnum(uint8_t(c)) || c == '+' || c == '/' || c == '=')) return false;
  }
  for (size_t i = sp + 1; i < line.size(); ++i)
    if (!std::isdigit(uint8_t(line[i]))) return false;
  return true;
}

}  // namespace

VocabSpec load_vocab_file(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.bin"})
      if (fs::exists(fs::path(path) / name)) return load_vocab_file((fs::path(path) / name).string());
    fail("'{}': directory has no tokenizer.json, tokenizer.model or tokenizer.bin", path);
  }
  MappedFile f(path);
  const std::string_view head(reinterpret_cast<const char*>(f.data()),
                              std::min<size_t>(f.size(), 4096));
  check(!head.empty(), "'{}': tokenizer file is empty", path);
  if (head.substr(0, 4) == "GGUF") return vocab_from_gguf(GgufFile(path));
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && head[first] == '{') return vocab_from_tokenizer_json(path);
  if (looks_like_tiktoken(head)) return vocab_from_tiktoken(path);
  // A SentencePiece ModelProto starts with field 1 (pieces), length-delimited: 0x0A.
  if (uint8_t(head[0]) == 0x0A) return vocab_from_sentencepiece(path);
  // llama2.c tokenizer.bin: a small positive i32 max_token_length.
  if (head.size() >= 4) {
    int32_t max_len;
    std::memcpy(&max_len, head.data(), 4);
    if (max_len > 0 && max_len <= 65536) return vocab_from_llama2c(path, 0);
  }
  fail("'{}': unknown tokenizer format (not GGUF, tokenizer.json, SentencePiece, tiktoken or "
       "llama2.c tokenizer.bin)", path);
}

}  // namespace kvsieve
