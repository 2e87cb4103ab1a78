#include "train/prompt_file.h"

#include "core/error.h"
#include "engine/prompt.h"
#include "io/jsonl.h"

namespace kvsieve {

std::vector<PromptLine> read_prompt_lines(const std::string& path, const Tokenizer& tok,
                                          const char* what) {
  std::vector<PromptLine> out;
  for_each_json_line(path, what, [&](const nlohmann::json& j, int64_t n) {
    std::string context, question;
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      context = j["text"].get<std::string>();
    } else {
      check(j.is_object() && j.contains("context") && j["context"].is_string() &&
                (!j.contains("question") || j["question"].is_string()),
            "'{}' line {}: needs \"context\" (and \"question\") or \"text\", as strings", path, n);
      context = j["context"].get<std::string>();
      question = j.value("question", "");
    }
    validate_utf8(context + question, what);
    const PromptIds ids = split_prompt(tok, context, question, tok.spec().add_bos);
    PromptLine p;
    p.ids = ids.context;
    p.ids.insert(p.ids.end(), ids.question.begin(), ids.question.end());
    p.n_context = int64_t(ids.context.size());
    p.line = n;
    out.push_back(std::move(p));
  });
  check(!out.empty(), "{} '{}' holds no prompts", what, path);
  return out;
}

}  // namespace kvsieve
