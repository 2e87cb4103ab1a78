// An OpenAI request body, read and checked: /v1/completions and
// /v1/chat/completions with the fields kvsieve serves (max_tokens,
// temperature, top_p, seed, stop, stream, n = 1) and its extensions:
//   "kv": {"method": "laq++", "budget": 512} or {"method": "snapkv", "ratio": 0.75}
//        (+ "soft_tokens": NAME for judgeq, "granularity", "decode_every"),
//   "question": text read after the cut (as `kvsieve run --question`),
//   "query_aware": true to cut the question together with the prompt,
//   "ignore_eos": true to generate max_tokens whatever the model says.
// Every fault throws ApiError (400, naming the field); nothing here touches
// the model, so it is cheap and testable alone.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kvsieve/engine.h"
#include "kvsieve/policy.h"
#include "kvsieve/session.h"
#include "serve/serve_options.h"

namespace kvsieve::serve {

enum class Endpoint { kCompletions, kChat };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  // completions: the prompt as text, or as token ids (used as given)
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  bool prompt_is_ids = false;
  // chat: the conversation, the last message the user's
  std::vector<Engine::ChatTurn> messages;
  std::string question;      // extension: read after the cut unless query_aware
  bool query_aware = false;
  GenerateOptions gen;       // max_tokens, temperature, top_p, seed
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  EvictionConfig eviction;     // the request's over the server's default
  std::string kv_label;        // how usage and metrics name the method ("snapkv", "full")
};

// Throws ApiError for malformed JSON, a field of the wrong type or out of
// range, an unsupported feature, an unknown method or an impossible budget.
ParsedRequest parse_request(std::string_view body, Endpoint endpoint, const ServeOptions& opts);

// The eviction a request asks for ("kv" may be null: the server's default).
EvictionConfig resolve_eviction(const nlohmann::json* kv, const ServeOptions& opts, std::string* label);

}  // namespace kvsieve::serve
