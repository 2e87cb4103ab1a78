#include "tokenizer/unicode/byte_level.h"

#include <array>

#include "tokenizer/unicode/utf8.h"

namespace kvsieve::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> to_text;   // byte -> UTF-8 of its code point
  std::array<int16_t, 324> to_byte;       // code point (< 0x144) -> byte, or -1
  Tables() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      const uint32_t cp = printable ? b : next++;
      std::string s;
      utf8::append(s, cp);
      to_text[b] = s;
      to_byte[cp] = int16_t(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view encode_byte(uint8_t b) { return tables().to_text[b]; }

std::string encode(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.to_text[uint8_t(c)];
  return out;
}

bool decode(std::string_view text, std::string& out) {
  const Tables& t = tables();
  bool ok = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    const uint32_t cp = utf8::decode(text, pos);
    if (cp < t.to_byte.size() && t.to_byte[cp] >= 0) {
      out += char(t.to_byte[cp]);
    } else {
      out.append(text.substr(start, pos - start));
      ok = false;
    }
  }
  return ok;
}

}  // namespace kvsieve::byte_level
