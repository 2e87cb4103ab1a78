// The server's counters and gauges, written out in Prometheus' text format
// for GET /metrics. Every update takes one short lock: a handful per
// request and per decode step, nothing per byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace kvsieve::serve {

class Metrics {
 public:
  void request(const std::string& endpoint, int status);
  void prefill(int64_t tokens, double seconds);
  // One batched decode step: `rows` sessions advanced by a token each.
  void decode_step(int64_t rows, double seconds);
  void generated(int64_t tokens);
  void cut(const std::string& method, double seconds, size_t bytes_before, size_t bytes_after);
  void rejected(const std::string& reason);
  // Gauges, set by the scheduler.
  void set_kv(size_t in_use, size_t reserved, size_t limit);
  void set_sessions(int64_t queued, int64_t prefilling, int64_t decoding);

  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> rejected_;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0, decode_rows_ = 0, decode_steps_ = 0;
  double prefill_seconds_ = 0, decode_seconds_ = 0;
  struct Cut {
    int64_t n = 0;
    double seconds = 0;
    double saved = 0;
  };
  std::map<std::string, Cut> cuts_;
  double kv_saved_ = 0;
  size_t kv_in_use_ = 0, kv_reserved_ = 0, kv_limit_ = 0;
  int64_t queued_ = 0, prefilling_ = 0, decoding_ = 0, peak_decoding_ = 0;
};

}  // namespace kvsieve::serve
