// Finding special tokens written verbatim in a text. Control and unknown
// tokens (<s>, <|eot_id|>, <unk>) are matched only when the caller asks for
// parse_special; user-defined tokens (Hugging Face added tokens that are not
// special) always are, as llama.cpp and Hugging Face tokenizers do. At each
// position the longest matching token wins; the scan goes left to right.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab_spec.h"

namespace kvsieve {

// A piece of the input: a special token, or a run of plain text.
struct Fragment {
  int32_t token = -1;  // >= 0: this special token; -1: text
  std::string_view text;
};

class SpecialMatcher {
 public:
  explicit SpecialMatcher(const VocabSpec& spec);

  // Splits text into fragments; text fragments are never empty.
  std::vector<Fragment> split(std::string_view text, bool parse_special) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool always;  // user-defined: matched even without parse_special
  };
  std::vector<Entry> entries_;
  // Entries by first byte, longest first: [byte] -> indices into entries_.
  std::array<std::vector<uint32_t>, 256> by_first_;
};

}  // namespace kvsieve
