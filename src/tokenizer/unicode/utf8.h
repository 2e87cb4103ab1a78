// UTF-8 helpers for the tokenizers: strict validation (the encoder rejects
// invalid text with the byte offset instead of guessing), sequence lengths and
// code point encoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvsieve::utf8 {

// Length in bytes of the sequence a lead byte starts (1..4); 1 for bytes that
// cannot start a sequence, so a scan always advances.
inline size_t seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Offset of the first invalid sequence in s, or std::string_view::npos.
// Invalid: stray continuation bytes, truncated sequences, overlong forms,
// UTF-16 surrogates (U+D800..U+DFFF) and code points above U+10FFFF.
// *reason (if given) says which.
size_t find_invalid(std::string_view s, const char** reason = nullptr);

// Decodes the (valid) sequence at s[pos] and advances pos.
uint32_t decode(std::string_view s, size_t& pos);

// Appends the UTF-8 form of a code point (which must be <= U+10FFFF).
void append(std::string& out, uint32_t cp);

}  // namespace kvsieve::utf8
