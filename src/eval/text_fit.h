// Building prompts of a target length in tokens from filler text: the
// longest prefix of a text that fits a token budget, and needle insertion at
// a depth, moved back to the nearest sentence end (as the standard
// Needle-in-a-Haystack test does).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kvsieve::eval {

// Token count of a text (the model's tokenizer, without BOS).
using TokenCounter = std::function<int64_t(std::string_view)>;

// A prefix of `text` that ends at a word boundary and counts at most
// `budget` tokens, and at least budget - 2 unless words or the text's end
// prevent it (then the longest such prefix found).
std::string fit_prefix(std::string_view text, int64_t budget, const TokenCounter& count);

// Byte offset where a needle goes for a depth in percent of `context`: the
// depth's offset moved back to just after the nearest sentence end ('.', '!'
// or '?' followed by whitespace), 0 if there is none; depth 100 is the end.
size_t sentence_break_before(std::string_view context, double depth_percent);

// Text of at least `min_chars` characters: `unit` repeated.
std::string repeat_to(std::string_view unit, size_t min_chars);

}  // namespace kvsieve::eval
