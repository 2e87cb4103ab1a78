// The text a request generates, token by token: where a stop string ends
// it (the stop string itself is not part of the answer, as OpenAI does), and
// which part is safe to send while streaming: never the start of what may
// become a stop string, never half of a UTF-8 character.
#pragma once
#include <string>
#include <vector>

namespace kvsieve::serve {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop = {});
  // Adds a token's text; true when a stop string is now complete (the text
  // then ends just before it).
  bool add(const std::string& piece);
  bool stopped() const { return stopped_; }
  // The text not sent yet that is final; at_end: all of it.
  std::string take(bool at_end);
  const std::string& text() const { return text_; }

 private:
  std::vector<std::string> stop_;
  size_t longest_ = 0;
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

}  // namespace kvsieve::serve
