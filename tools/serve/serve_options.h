// What `kvsieve serve` is started with: where it listens, its defaults and
// limits. Each request may ask for less than a limit, never more.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "kvsieve/policy.h"

namespace kvsieve::serve {

struct Limits {
  size_t max_body_bytes = 1 << 20;      // request body
  int64_t max_prompt_tokens = 0;        // 0: the model's training context
  int64_t max_new_tokens = 1024;        // max_tokens a request may ask for
  int64_t default_new_tokens = 128;     // when a request does not say
  double timeout_seconds = 600;         // a request's whole life, queue included
  size_t max_queue = 64;                // requests waiting for memory or a slot
  int64_t n_ctx = 0;                    // prompt + answer positions (0: unlimited)
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (printed)
  std::string model_id;                 // the name /v1/models lists and requests must use
  std::string api_key;                  // "" : no authentication
  std::string chat_template;            // "" : detected from the tokenizer
  std::string kv_type = "f32";
  int threads = 0;                      // CPU threads per session (0: engine default)
  int parallel = 16;                    // sessions alive at once (prefilling or decoding)
  int prefill_workers = 1;              // sessions prefilled at once
  size_t kv_memory = 0;                 // K/V bytes all sessions may hold (0: unlimited)
  int http_threads = 0;                 // 0: max_queue + parallel + 8
  EvictionConfig eviction;              // the default policy (spec "full": none)
  // Judge Q soft-token files named at start-up: a request names one by NAME.
  std::map<std::string, std::string> judgeq_files;
  Limits limits;
};

}  // namespace kvsieve::serve
