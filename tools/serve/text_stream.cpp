#include "serve/text_stream.h"

#include <algorithm>

namespace kvsieve::serve {

TextStream::TextStream(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (const auto& s : stop_) longest_ = std::max(longest_, s.size());
}

bool TextStream::add(const std::string& piece) {
  if (stopped_) return true;
  const size_t old = text_.size();
  text_ += piece;
  // A stop string that ends in the new piece starts at most longest_-1
  // bytes before it; the earliest match wins.
  const size_t from = old >= longest_ ? old - longest_ + 1 : 0;
  size_t at = std::string::npos;
  for (const auto& s : stop_) at = std::min(at, text_.find(s, from));
  if (at == std::string::npos) return false;
  text_.resize(std::max(at, sent_));
  stopped_ = true;
  return true;
}

std::string TextStream::take(bool at_end) {
  size_t end = text_.size();
  if (!at_end && !stopped_) {
    // Hold back the longest tail that begins some stop string.
    for (const auto& s : stop_)
      for (size_t k = std::min(s.size() - 1, end - sent_); k > 0; --k)
        if (text_.compare(end - k, k, s, 0, k) == 0) {
          end = std::min(end, text_.size() - k);
          break;
        }
    // Hold back an unfinished UTF-8 character at the end.
    size_t i = end;
    int back = 0;
    while (i > sent_ && back < 4 && (static_cast<unsigned char>(text_[i - 1]) & 0xC0) == 0x80) --i, ++back;
    if (i > sent_) {
      const unsigned char lead = static_cast<unsigned char>(text_[i - 1]);
      const size_t len = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
      if (i - 1 + len > end) end = i - 1;
    }
  }
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

}  // namespace kvsieve::serve
