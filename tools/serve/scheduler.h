// Runs the requests: admission by KV memory, prefill (and the cut) on
// worker threads, and one decode thread that advances every live session
// by a token per step in one batched forward pass (continuous batching:
// sessions join the batch when their prefill is done and leave it when they
// finish, between any two steps).
//
// Memory. A request reserves what its cache may hold at its largest: the
// full prompt before the cut, or after it the kept rows plus room for the
// question and max_tokens new tokens, whichever is more (without a cut: the
// prompt, question and max_tokens). It waits in a bounded FIFO queue until
// that fits under --kv-memory and a session slot (--parallel) is free; when
// the queue is full it is turned away (503). When the cut is made the
// reservation shrinks to what the cut cache holds plus its room to grow,
// and waiting requests are admitted at once.
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kvsieve/engine.h"
#include "serve/job.h"
#include "serve/metrics.h"
#include "serve/serve_options.h"

namespace kvsieve::serve {

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Engine> engine, const ServeOptions& opts, Metrics& metrics);
  ~Scheduler();  // shutdown()

  // Queues a job. Throws ApiError: 503 when the queue is full or the server
  // is stopping, 400 when the job could never fit in --kv-memory.
  void submit(const std::shared_ptr<Job>& job);
  // Fails every queued and live job (503) and stops the threads.
  void shutdown();

  // The bytes a job reserves at admission (see above).
  size_t admission_bytes(const Job& job) const;

 private:
  struct Live;
  void prefill_loop();
  void decode_loop();
  void publish_gauges();                            // under mu_
  bool head_fits() const;                           // under mu_

  std::shared_ptr<const Engine> engine_;
  const ServeOptions opts_;
  Metrics& metrics_;
  size_t row_bytes_full_ = 0;  // K/V bytes of one position, uncut layout

  std::mutex mu_;
  std::condition_variable admit_cv_, decode_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::unique_ptr<Live>> arrivals_;  // prefilled, to join the batch
  size_t reserved_ = 0;
  size_t decoding_bytes_ = 0;  // what decoding sessions held at the last step
  int64_t prefilling_ = 0, decoding_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kvsieve::serve
