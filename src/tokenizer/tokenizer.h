// Text <-> token ids, exactly as the reference implementations do it:
//  - SentencePiece-style BPE ("llama" model: Llama 2, Mistral, llama2.c),
//    merging by score, with byte fallback (<0xNN>) and the dummy-prefix space;
//  - byte-level BPE ("gpt2" model: GPT-2, Llama 3, Qwen2), merging by rank
//    after a pre-tokenizer regex chosen by VocabSpec::pre.
// Special (control / user-defined) tokens in the text are matched verbatim
// when parse_special is set.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab_spec.h"

namespace kvsieve {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Builds the tokenizer a VocabSpec describes; throws Error if it is unusable.
  static std::unique_ptr<Tokenizer> create(VocabSpec spec);

  // Throws Error on invalid UTF-8 (naming the byte offset).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos = false,
                                      bool parse_special = true) const = 0;

  // The bytes of one token as they appear in text (SPM: U+2581 -> ' ', <0x0A> -> "\n";
  // byte-level BPE: the byte-to-unicode map undone). Control tokens give "".
  // When prev is BOS (or -1 for "first token") and the vocabulary adds a dummy
  // prefix, one leading space is dropped, as llama2.c and SentencePiece do.
  virtual std::string token_to_piece(int32_t id, int32_t prev = -2) const = 0;

  // Concatenated pieces of a whole sequence (may end in a partial UTF-8 char).
  std::string decode(const std::vector<int32_t>& ids) const;

  const VocabSpec& spec() const { return spec_; }
  int64_t n_vocab() const { return int64_t(spec_.tokens.size()); }
  int32_t bos() const { return spec_.bos; }
  int32_t eos() const { return spec_.eos; }
  // End of generation: eos, eot, or another control token marked as such.
  bool is_eog(int32_t id) const;
  // Id of a token by its exact text, or -1.
  virtual int32_t find_token(std::string_view text) const = 0;

 protected:
  explicit Tokenizer(VocabSpec spec) : spec_(std::move(spec)) {}
  VocabSpec spec_;
};

// Throws Error naming the offset of the first invalid UTF-8 sequence.
void validate_utf8(std::string_view text, const char* what = "text");

}  // namespace kvsieve
