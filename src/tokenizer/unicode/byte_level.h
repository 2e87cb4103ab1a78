// GPT-2's byte-level alphabet: every byte is shown as one printable code point
// so that byte-level BPE vocabularies can be stored as text. Printable Latin-1
// bytes (33..126, 161..172, 174..255) stand for themselves; the other 68 bytes
// take U+0100 onwards in byte order (so ' ' is U+0120 'Ġ', '\n' is U+010A 'Ċ').
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace kvsieve::byte_level {

// UTF-8 text of the code point that stands for byte b (1 or 2 bytes).
std::string_view encode_byte(uint8_t b);

// Raw bytes -> byte-level text.
std::string encode(std::string_view bytes);

// Byte-level text -> raw bytes. Code points outside the alphabet are copied
// unchanged (as their UTF-8) and make the function return false.
bool decode(std::string_view text, std::string& out);

}  // namespace kvsieve::byte_level
