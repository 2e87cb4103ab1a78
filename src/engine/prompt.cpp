#include "engine/prompt.h"

namespace kvsieve {

PromptIds split_prompt(const Tokenizer& tok, const std::string& context,
                       const std::string& question, bool add_bos) {
  PromptIds p;
  p.context = tok.encode(context + question, add_bos);
  if (question.empty()) return p;
  const std::vector<int32_t> ctx = tok.encode(context, add_bos);
  size_t k = 0;
  while (k < ctx.size() && k < p.context.size() && ctx[k] == p.context[k]) ++k;
  p.question.assign(p.context.begin() + int64_t(k), p.context.end());
  p.context.resize(k);
  return p;
}

}  // namespace kvsieve
