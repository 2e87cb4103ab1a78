// A fixed pool of worker threads for data-parallel loops. parallel_for splits
// [0, n) into contiguous chunks, one per thread, and returns when all are done;
// the calling thread takes the first chunk so a pool of 1 runs inline.
//
// Why workers spin: a decode step makes ~100 short parallel loops (tens of
// microseconds each). Waking threads through a condition variable costs about
// 50 us each time, more than the work; so workers poll the job counter for a
// short while after each job and only then sleep.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvsieve {

class ThreadPool {
 public:
  // n_threads <= 0: use the number of hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(begin, end, thread_index) over chunks of [0, n). Chunks hold at least
  // min_chunk items, so small loops do not pay for waking every thread.
  // Not reentrant: fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t min_chunk = 1);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace kvsieve
