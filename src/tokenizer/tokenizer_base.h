// What the two tokenizer models share: the text -> id map, special-token
// splitting, BOS/EOS, and UTF-8 validation. Each model implements how a run of
// plain text becomes ids (encode_text) and how one token becomes bytes.
#pragma once
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve {

// Hash that lets unordered_map<std::string, ...> be searched with string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class TokenizerBase : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos,
                              bool parse_special) const override;
  int32_t find_token(std::string_view text) const override;

 protected:
  explicit TokenizerBase(VocabSpec spec);

  // Appends the ids of a non-empty run of plain text. after_special: nothing
  // or a special token comes before it (where SentencePiece adds its dummy
  // prefix); at_start: the run starts the input.
  virtual void encode_text(std::string_view text, bool after_special, bool at_start,
                           std::vector<int32_t>& out) const = 0;

  TokenType type_of(int32_t id) const {
    return spec_.types.empty() ? TokenType::kNormal : spec_.types[size_t(id)];
  }
  // Throws Error for ids outside the vocabulary.
  void check_id(int32_t id) const;

  TokenMap token_to_id_;  // exact token text -> id (the last of duplicates wins, as in llama.cpp)

 private:
  SpecialMatcher specials_;
};

std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabSpec spec);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabSpec spec);

}  // namespace kvsieve
