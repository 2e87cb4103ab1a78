// A parsed request made into token ids, as `kvsieve run` makes them: the
// context (cut after its prefill) and the question read after the cut
// (empty unless the request has "question" and not query_aware), in the
// model's chat format for chat requests. Checks the prompt against the
// server's limits and the context window.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kvsieve/engine.h"
#include "serve/request.h"

namespace kvsieve::serve {

struct PromptPlan {
  std::vector<int32_t> context, question;
  std::string chat_format;  // "" for completions
  int64_t n_tokens() const { return int64_t(context.size() + question.size()); }
};

// Throws ApiError (400) for a prompt the model cannot take: too many
// tokens, beyond the context with max_tokens, token ids out of range, a chat
// the model's format cannot express.
PromptPlan build_prompt(const Engine& engine, const ParsedRequest& r, const ServeOptions& opts);

}  // namespace kvsieve::serve
