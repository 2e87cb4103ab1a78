#include "eval/text_fit.h"

#include <algorithm>
#include <cctype>

namespace kvsieve::eval {
namespace {

// Largest offset <= at that does not cut a word or a UTF-8 sequence.
size_t word_boundary(std::string_view t, size_t at) {
  at = std::min(at, t.size());
  while (at > 0 && at < t.size() && !std::isspace(static_cast<unsigned char>(t[at]))) --at;
  return at;
}

}  // namespace

std::string fit_prefix(std::string_view text, int64_t budget, const TokenCounter& count) {
  if (budget <= 0) return "";
  if (count(text) <= budget) return std::string(text);
  size_t lo = 0, hi = text.size();  // count(prefix lo) <= budget < count(prefix hi)
  while (hi - lo > 1) {
    const size_t mid = word_boundary(text, lo + (hi - lo) / 2);
    if (mid <= lo) {  // one long word: cut inside it only at a UTF-8 boundary
      size_t m = lo + (hi - lo) / 2;
      while (m > lo && (static_cast<unsigned char>(text[m]) & 0xC0) == 0x80) --m;
      if (m <= lo) break;
      if (count(text.substr(0, m)) <= budget) lo = m; else hi = m;
      continue;
    }
    if (count(text.substr(0, mid)) <= budget) lo = mid; else hi = mid;
  }
  return std::string(text.substr(0, lo));
}

size_t sentence_break_before(std::string_view c, double depth) {
  if (depth >= 100) return c.size();
  size_t at = size_t(double(c.size()) * std::max(0.0, depth) / 100.0);
  while (at > 0) {
    const char p = c[at - 1];
    if ((p == '.' || p == '!' || p == '?') &&
        (at == c.size() || std::isspace(static_cast<unsigned char>(c[at]))))
      return at;
    --at;
  }
  return 0;
}

std::string repeat_to(std::string_view unit, size_t min_chars) {
  std::string out;
  if (unit.empty()) return out;
  out.reserve(min_chars + unit.size());
  while (out.size() < min_chars) out += unit;
  return out;
}

}  // namespace kvsieve::eval
