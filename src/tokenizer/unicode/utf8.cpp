#include "tokenizer/unicode/utf8.h"

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve {
namespace utf8 {

size_t find_invalid(std::string_view s, const char** reason) {
  const char* why = nullptr;
  size_t i = 0;
  const size_t n = s.size();
  auto byte = [&](size_t k) { return uint8_t(s[k]); };
  auto cont = [&](size_t k) { return k < n && (byte(k) & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min_cp = 0;
    if ((c & 0xC0) == 0x80) {
      why = "unexpected continuation byte";
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min_cp = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min_cp = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min_cp = 0x10000;
    } else {
      why = "byte 0xF8..0xFF never occurs in UTF-8";
    }
    if (!why) {
      for (size_t k = 1; k < len; ++k) {
        if (!cont(i + k)) {
          why = i + k >= n ? "sequence truncated by the end of the text"
                           : "sequence truncated (missing continuation byte)";
          break;
        }
        cp = (cp << 6) | (byte(i + k) & 0x3F);
      }
    }
    if (!why) {
      if (cp < min_cp) why = "overlong encoding";
      else if (cp >= 0xD800 && cp <= 0xDFFF) why = "UTF-16 surrogate code point";
      else if (cp > 0x10FFFF) why = "code point above U+10FFFF";
    }
    if (why) {
      if (reason) *reason = why;
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

uint32_t decode(std::string_view s, size_t& pos) {
  const uint8_t c = uint8_t(s[pos]);
  const size_t len = std::min(seq_len(c), s.size() - pos);
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (uint8_t(s[pos + k]) & 0x3F);
  pos += len;
  return cp;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

}  // namespace utf8

void validate_utf8(std::string_view text, const char* what) {
  const char* reason = "";
  const size_t at = utf8::find_invalid(text, &reason);
  if (at == std::string_view::npos) return;
  std::string bytes;
  for (size_t k = at; k < text.size() && k < at + 4; ++k)
    bytes += fmt::format("{}{:02X}", bytes.empty() ? "" : " ", uint8_t(text[k]));
  fail("{}: invalid UTF-8 at byte offset {} ({}; bytes {})", what, at, reason, bytes);
}

}  // namespace kvsieve
