// One request on its way through the server: what it asks for (filled by
// the HTTP handler before it is queued) and the channel that carries its
// text back to the handler (filled by the scheduler's threads). The handler
// waits on it; a handler that gives up (timeout, client gone) cancels it,
// and the scheduler then drops its session and frees its memory.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvsieve/policy.h"
#include "kvsieve/session.h"
#include "serve/api_error.h"
#include "serve/prompt.h"

namespace kvsieve::serve {

using Clock = std::chrono::steady_clock;

// OpenAI's usage plus what the cut did.
struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::string kv_method = "full", kv_budget;
  size_t kv_bytes_full = 0;  // the same positions uncut
  size_t kv_bytes_kept = 0;  // what the session held at the end
  double cut_seconds = 0, probe_seconds = 0;
  double prefill_seconds = 0;
};

class Job {
 public:
  // ---- the request (set before submit)
  PromptPlan prompt;
  GenerateOptions gen;
  std::vector<std::string> stop;
  EvictionConfig eviction;
  std::string kv_label;
  Clock::time_point deadline;

  // ---- the handler's side
  struct Update {
    // New text, one piece per decode step that made some (a stream sends
    // each as its own chunk, as OpenAI streams a token per chunk).
    std::vector<std::string> pieces;
    bool finished = false;
  };
  // Waits until there is new text, the job is over, or `until`.
  Update wait(Clock::time_point until);
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  // Valid once finished: finish_reason "stop" or "length", or an error.
  std::string finish_reason;
  std::optional<ApiError> error;
  Usage usage;
  double ttft_seconds = -1;  // submit to first token

  // ---- the scheduler's side
  void push(const std::string& text);
  void finish(const std::string& reason, const Usage& u);
  void fail(const ApiError& e);
  Clock::time_point submitted = Clock::now();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> pending_;
  bool finished_ = false;
  std::atomic<bool> cancelled_{false};
};

}  // namespace kvsieve::serve
