// llama2.c tokenizer.bin -> VocabSpec.
//
// Layout (little-endian): i32 max_token_length, then for each of n_vocab
// tokens: f32 score, i32 length, length bytes. llama2.c's export
// (tokenizer.py) wrote SentencePiece pieces with U+2581 turned into ' ', BOS as
// "\n<s>\n" and EOS as "\n</s>\n"; byte pieces stay "<0xNN>". Those edits are
// undone here so the vocabulary looks like the SentencePiece one it came from.
#include <cstring>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

bool is_byte_piece(const std::string& t) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

}  // namespace

VocabSpec vocab_from_llama2c(const std::string& path, int64_t n_vocab) {
  MappedFile f(path);
  const uint8_t* d = f.data();
  const size_t size = f.size();
  size_t pos = 0;
  auto read_i32 = [&](const char* what, int64_t index) {
    check(size - pos >= 4, "'{}': truncated at byte {} (reading {} of token {})", path, pos, what,
          index);
    int32_t x;
    std::memcpy(&x, d + pos, 4);
    pos += 4;
    return x;
  };
  check(size >= 4, "'{}': too small for a llama2.c tokenizer ({} bytes)", path, size);
  const int32_t max_len = read_i32("max_token_length", -1);
  check(max_len > 0 && max_len <= 65536, "'{}': max_token_length {} is not plausible", path, max_len);
  check(n_vocab <= 0 || n_vocab <= int64_t(size / 8),
        "'{}': {} tokens cannot fit in {} bytes", path, n_vocab, size);

  VocabSpec v;
  v.model = "llama";
  const std::string kSpace = "\xE2\x96\x81";
  // n_vocab <= 0: read every token the file holds.
  for (int64_t i = 0; n_vocab > 0 ? i < n_vocab : pos < size; ++i) {
    float score;
    check(size - pos >= 4, "'{}': truncated at byte {} (score of token {} of {})", path, pos, i,
          n_vocab);
    std::memcpy(&score, d + pos, 4);
    pos += 4;
    const int32_t len = read_i32("length", i);
    check(len >= 0 && size_t(len) <= size - pos,
          "'{}': token {} claims {} bytes at byte {} ({} are left)", path, i, len, pos, size - pos);
    std::string raw(reinterpret_cast<const char*>(d + pos), size_t(len));
    pos += size_t(len);
    TokenType type = TokenType::kNormal;
    if (raw == "\n<s>\n") {
      raw = "<s>";
      type = TokenType::kControl;
      v.bos = int32_t(i);
    } else if (raw == "\n</s>\n") {
      raw = "</s>";
      type = TokenType::kControl;
      v.eos = int32_t(i);
    } else if (raw == "<unk>") {
      type = TokenType::kUnknown;
      v.unk = int32_t(i);
    } else if (is_byte_piece(raw)) {
      type = TokenType::kByte;
    }
    std::string tok;
    tok.reserve(raw.size());
    for (char c : raw) {
      if (c == ' ' && type == TokenType::kNormal) tok += kSpace;
      else tok += c;
    }
    v.tokens.push_back(std::move(tok));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  check(!v.tokens.empty(), "'{}': no tokens", path);
  v.add_bos = v.bos >= 0;
  v.add_space_prefix = true;  // llama2.c's encode always adds the dummy prefix
  try {
    v.validate();
  } catch (const Error& e) {
    fail("'{}': {}", path, e.what());
  }
  return v;
}

}  // namespace kvsieve
