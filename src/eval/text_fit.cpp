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
  // Secant steps on the characters-per-token ratio, kept inside a bracket
  // [lo: fits, hi: too long]; stops within 2 tokens of the budget. A few
  // tokenizations instead of a binary search's dozen.
  size_t lo = 0, hi = text.size() + 1;
  size_t guess = std::min(text.size(), size_t(budget) * 4);
  for (int step = 0; step < 40 && hi - lo > 1; ++step) {
    guess = word_boundary(text, guess);
    if (guess <= lo || guess >= hi) {  // fall back to bisection
      guess = word_boundary(text, lo + (hi - lo) / 2);
      if (guess <= lo) {  // one long word: cut it at a UTF-8 boundary
        guess = lo + (hi - lo) / 2;
        while (guess > lo && (static_cast<unsigned char>(text[guess]) & 0xC0) == 0x80) --guess;
        if (guess <= lo) break;
      }
    }
    const int64_t c = count(text.substr(0, guess));
    if (c <= budget) {
      lo = guess;
      if (c >= budget - 2 || guess == text.size()) break;
    } else {
      hi = guess;
    }
    const double per_token = double(guess) / double(std::max<int64_t>(c, 1));
    guess = size_t(std::max(0.0, double(guess) + double(budget - 1 - c) * per_token));
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
