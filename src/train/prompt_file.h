// The prompt files of the Judge Q tools (train-judgeq, judgeq-overlap): JSON
// lines with "context" and an optional "question", or "text" (a context with
// no question), as `kvsieve eval --print-samples` writes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kvsieve {

struct PromptLine {
  std::vector<int32_t> ids;  // context + question, tokenized as the eval does
  int64_t n_context = 0;     // ids[0, n_context) is the context
  int64_t line = 0;          // 1-based line in the file, for messages
};

// Every non-empty line of `path`; bad JSON, missing fields or invalid UTF-8
// get a message naming the line. `what` names the file's role in messages.
std::vector<PromptLine> read_prompt_lines(const std::string& path, const Tokenizer& tok,
                                          const char* what);

}  // namespace kvsieve
