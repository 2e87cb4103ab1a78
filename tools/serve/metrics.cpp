#include "serve/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace kvsieve::serve {

void Metrics::request(const std::string& endpoint, int status) {
  std::lock_guard lk(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::prefill(int64_t tokens, double seconds) {
  std::lock_guard lk(mu_);
  prompt_tokens_ += tokens;
  prefill_seconds_ += seconds;
}

void Metrics::decode_step(int64_t rows, double seconds) {
  std::lock_guard lk(mu_);
  decode_rows_ += rows;
  ++decode_steps_;
  decode_seconds_ += seconds;
}

void Metrics::generated(int64_t tokens) {
  std::lock_guard lk(mu_);
  generated_tokens_ += tokens;
}

void Metrics::cut(const std::string& method, double seconds, size_t before, size_t after) {
  std::lock_guard lk(mu_);
  Cut& c = cuts_[method];
  ++c.n;
  c.seconds += seconds;
  const double saved = before > after ? double(before - after) : 0.0;
  c.saved += saved;
  kv_saved_ += saved;
}

void Metrics::rejected(const std::string& reason) {
  std::lock_guard lk(mu_);
  ++rejected_[reason];
}

void Metrics::set_kv(size_t in_use, size_t reserved, size_t limit) {
  std::lock_guard lk(mu_);
  kv_in_use_ = in_use;
  kv_reserved_ = reserved;
  kv_limit_ = limit;
}

void Metrics::set_sessions(int64_t queued, int64_t prefilling, int64_t decoding) {
  std::lock_guard lk(mu_);
  queued_ = queued;
  prefilling_ = prefilling;
  decoding_ = decoding;
  peak_decoding_ = std::max(peak_decoding_, prefilling + decoding);
}

std::string Metrics::prometheus() const {
  std::lock_guard lk(mu_);
  std::string o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  head("kvsieve_requests_total", "counter", "HTTP requests answered, by endpoint and status");
  for (const auto& [k, n] : requests_)
    o += fmt::format("kvsieve_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", k.first, k.second, n);
  head("kvsieve_rejected_total", "counter", "Requests turned away before running, by reason");
  for (const auto& [k, n] : rejected_) o += fmt::format("kvsieve_rejected_total{{reason=\"{}\"}} {}\n", k, n);
  head("kvsieve_prompt_tokens_total", "counter", "Prompt tokens prefilled");
  o += fmt::format("kvsieve_prompt_tokens_total {}\n", prompt_tokens_);
  head("kvsieve_generated_tokens_total", "counter", "Tokens generated");
  o += fmt::format("kvsieve_generated_tokens_total {}\n", generated_tokens_);
  head("kvsieve_prefill_seconds_total", "counter", "Time spent prefilling prompts (summed over workers)");
  o += fmt::format("kvsieve_prefill_seconds_total {:.6f}\n", prefill_seconds_);
  head("kvsieve_prefill_tokens_per_second", "gauge", "Prompt tokens per second of prefill, since start");
  o += fmt::format("kvsieve_prefill_tokens_per_second {:.3f}\n",
                   prefill_seconds_ > 0 ? double(prompt_tokens_) / prefill_seconds_ : 0.0);
  head("kvsieve_decode_seconds_total", "counter", "Time spent in batched decode steps");
  o += fmt::format("kvsieve_decode_seconds_total {:.6f}\n", decode_seconds_);
  head("kvsieve_decode_tokens_per_second", "gauge",
       "Tokens decoded per second of decode steps (all sessions of a step together), since start");
  o += fmt::format("kvsieve_decode_tokens_per_second {:.3f}\n",
                   decode_seconds_ > 0 ? double(decode_rows_) / decode_seconds_ : 0.0);
  head("kvsieve_decode_steps_total", "counter", "Batched decode steps run");
  o += fmt::format("kvsieve_decode_steps_total {}\n", decode_steps_);
  head("kvsieve_decode_batch_rows_total", "counter", "Session rows decoded over all steps (rows/steps: mean batch)");
  o += fmt::format("kvsieve_decode_batch_rows_total {}\n", decode_rows_);
  head("kvsieve_kv_bytes_in_use", "gauge", "K/V bytes the decoding sessions held at the last decode step");
  o += fmt::format("kvsieve_kv_bytes_in_use {}\n", kv_in_use_);
  head("kvsieve_kv_bytes_reserved", "gauge", "K/V bytes reserved by admission (what live sessions may grow to)");
  o += fmt::format("kvsieve_kv_bytes_reserved {}\n", kv_reserved_);
  head("kvsieve_kv_bytes_limit", "gauge", "--kv-memory (0: unlimited)");
  o += fmt::format("kvsieve_kv_bytes_limit {}\n", kv_limit_);
  head("kvsieve_kv_bytes_saved_total", "counter", "K/V bytes freed by cuts");
  o += fmt::format("kvsieve_kv_bytes_saved_total {:.0f}\n", kv_saved_);
  head("kvsieve_queue_length", "gauge", "Requests waiting for KV memory or a session slot");
  o += fmt::format("kvsieve_queue_length {}\n", queued_);
  head("kvsieve_sessions", "gauge", "Live sessions by state");
  o += fmt::format("kvsieve_sessions{{state=\"prefill\"}} {}\nkvsieve_sessions{{state=\"decode\"}} {}\n",
                   prefilling_, decoding_);
  head("kvsieve_sessions_peak", "gauge", "Most sessions alive at once since start");
  o += fmt::format("kvsieve_sessions_peak {}\n", peak_decoding_);
  head("kvsieve_cuts_total", "counter", "KV cuts made, by method");
  for (const auto& [m, c] : cuts_) o += fmt::format("kvsieve_cuts_total{{method=\"{}\"}} {}\n", m, c.n);
  head("kvsieve_cut_seconds_total", "counter", "Time spent cutting caches (scoring, probes, compaction), by method");
  for (const auto& [m, c] : cuts_) o += fmt::format("kvsieve_cut_seconds_total{{method=\"{}\"}} {:.6f}\n", m, c.seconds);
  return o;
}

}  // namespace kvsieve::serve
