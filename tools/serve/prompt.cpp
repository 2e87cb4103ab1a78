#include "serve/prompt.h"

#include "serve/api_error.h"

namespace kvsieve::serve {

PromptPlan build_prompt(const Engine& engine, const ParsedRequest& r, const ServeOptions& opts) {
  PromptPlan p;
  const std::string param = r.endpoint == Endpoint::kChat ? "messages" : "prompt";
  try {
    if (r.prompt_is_ids) {
      // Ids are the caller's own tokenization: used as given (no BOS added).
      p.context = r.prompt_ids;
      for (int32_t id : p.context)
        if (id < 0 || id >= engine.n_vocab())
          throw bad_request("token id " + std::to_string(id) + " is out of range (vocabulary size " +
                                std::to_string(engine.n_vocab()) + ")",
                            "prompt");
      if (!r.question.empty()) p.question = engine.tokenize(r.question, false);
    } else {
      // As `kvsieve run`: query-aware puts the question into what is cut;
      // otherwise it follows the context and is read after the cut.
      std::string context = r.prompt, q = r.question;
      if (r.query_aware) {
        context += q;
        q.clear();
      }
      std::string tail = q;
      if (r.endpoint == Endpoint::kChat) {
        std::vector<Engine::ChatTurn> turns = r.messages;
        if (r.query_aware) turns.back().content += r.question;
        const Engine::ChatPrompt c = engine.chat_prompt(turns, r.query_aware ? "" : r.question, opts.chat_template);
        context = c.context;
        tail = c.question;
        p.chat_format = c.format;
      }
      const PromptTokens ids = engine.split_prompt(context, tail, true);
      p.context = ids.context;
      p.question = ids.question;
      if (p.context.empty() && !p.question.empty()) p.context.swap(p.question);  // no BOS, no template
      if (p.context.empty()) {
        if (engine.bos() < 0) throw bad_request("the prompt is empty and the model has no BOS token to start from", param);
        p.context.push_back(engine.bos());
      }
    }
  } catch (const Error& e) {
    throw bad_request(e.what(), param);
  }
  const int64_t n = p.n_tokens();
  const Limits& lim = opts.limits;
  if (lim.max_prompt_tokens > 0 && n > lim.max_prompt_tokens)
    throw bad_request("the prompt has " + std::to_string(n) + " tokens; this server takes at most " +
                          std::to_string(lim.max_prompt_tokens) + " (--max-prompt-tokens)",
                      param, "context_length_exceeded");
  if (lim.n_ctx > 0 && n + r.gen.max_tokens > lim.n_ctx)
    throw bad_request("This model's maximum context length is " + std::to_string(lim.n_ctx) +
                          " tokens. However, you requested " + std::to_string(n + r.gen.max_tokens) +
                          " tokens (" + std::to_string(n) + " in the prompt, " +
                          std::to_string(r.gen.max_tokens) + " for the completion).",
                      param, "context_length_exceeded");
  return p;
}

}  // namespace kvsieve::serve
