#include "tokenizer/tokenizer.h"

#include <array>

#include "core/error.h"
#include "tokenizer/tokenizer_base.h"

namespace kvsieve {

std::unique_ptr<Tokenizer> Tokenizer::create(VocabSpec spec) {
  spec.validate();
  if (spec.model == "llama") return make_spm_tokenizer(std::move(spec));
  return make_bpe_tokenizer(std::move(spec));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += token_to_piece(ids[i], i == 0 ? -1 : ids[i - 1]);
  return out;
}

bool Tokenizer::is_eog(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return false;
  if (id == spec_.eos || id == spec_.eot) return true;
  // Chat models end a turn with a control token of their own; these are the
  // names the common families use (llama.cpp keeps a similar list).
  static constexpr std::array<std::string_view, 8> kEnders = {
      "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
      "<|endoftext|>", "<|end|>", "<end_of_turn>", "<EOT>"};
  if (spec_.types.empty() || spec_.types[size_t(id)] != TokenType::kControl) return false;
  for (std::string_view e : kEnders)
    if (spec_.tokens[size_t(id)] == e) return true;
  return false;
}

TokenizerBase::TokenizerBase(VocabSpec spec) : Tokenizer(std::move(spec)), specials_(spec_) {
  token_to_id_.reserve(spec_.tokens.size() * 2);
  for (size_t i = 0; i < spec_.tokens.size(); ++i) token_to_id_[spec_.tokens[i]] = int32_t(i);
}

void TokenizerBase::check_id(int32_t id) const {
  check(id >= 0 && id < n_vocab(), "token id {} is out of range (vocabulary has {} tokens)", id,
        n_vocab());
}

int32_t TokenizerBase::find_token(std::string_view text) const {
  auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

std::vector<int32_t> TokenizerBase::encode(std::string_view text, bool add_bos, bool add_eos,
                                           bool parse_special) const {
  validate_utf8(text, "text to tokenize");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos) {
    check(spec_.bos >= 0, "encode: BOS requested but the vocabulary has no BOS token");
    out.push_back(spec_.bos);
  }
  bool after_special = true, at_start = true;
  for (const Fragment& f : specials_.split(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
    } else {
      encode_text(f.text, after_special, at_start, out);
      after_special = false;
    }
    at_start = false;
  }
  if (add_eos) {
    check(spec_.eos >= 0, "encode: EOS requested but the vocabulary has no EOS token");
    out.push_back(spec_.eos);
  }
  return out;
}

}  // namespace kvsieve
