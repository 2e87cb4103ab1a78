// Token ids of a prompt made of a context and a question. The whole text is
// tokenized once, so context + question are exactly the tokens of the full
// prompt; the split goes where the context's own tokens stop matching (one
// token early if a merge spans the boundary).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kvsieve {

struct PromptIds {
  std::vector<int32_t> context;   // with BOS when add_bos
  std::vector<int32_t> question;  // may be empty
};

PromptIds split_prompt(const Tokenizer& tok, const std::string& context,
                       const std::string& question, bool add_bos);

}  // namespace kvsieve
