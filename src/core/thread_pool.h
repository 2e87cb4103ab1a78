// A fixed pool of worker threads for data-parallel loops. parallel_for splits
// [0, n) into contiguous chunks, at most one per thread, and returns when all
// are done; a pool of 1 runs inline.
//
// Chunk i always covers the same range and is passed thread index i, but it
// is run by whichever thread claims it first: the caller claims chunks too,
// so a worker that the OS has descheduled (cores shared with another busy
// process) does not hold the loop up; its chunk is done by the caller.
//
// Waiting: a decode step makes ~100 short parallel loops (tens of
// microseconds each), and waking a sleeping thread costs ~5-50 us, so an
// idle worker first polls for the next job for a short while (kSpin in
// thread_pool.cpp) and then sleeps on a futex (C++20 atomic wait); the caller
// waiting for a chunk still running elsewhere does the same. Nobody spins
// longer than that: on shared cores a spinning thread takes the time slice
// the thread it waits for needs.
#pragma once
#include <atomic>
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

  // fn(begin, end, chunk_index) over chunks of [0, n), chunk_index < size(),
  // each index used by one call at a time (callers index per-thread scratch
  // by it). Chunks hold at least min_chunk items, so small loops do not pay
  // for waking every thread. Not reentrant: fn must not call parallel_for on
  // the same pool.
  //
  // max_chunks > size(): up to that many chunks, claimed one at a time by
  // whichever thread is free (load balancing when the threads do not run
  // at the same speed, e.g. sharing memory bandwidth unevenly); chunk_index
  // is then < max_chunks, so fn must not index per-thread scratch by it.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t min_chunk = 1, int max_chunks = 0);

 private:
  void worker();
  // Claims and runs chunks of the current job until none is left.
  void run_chunks();

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current job and its next unclaimed chunk, under claim_mu_
  // (published before generation_ is bumped).
  std::mutex claim_mu_;
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int next_chunk_ = 0;
  std::atomic<int> unfinished_{0};   // chunks not yet finished
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};     // workers blocked in generation_.wait
  std::atomic<bool> caller_waits_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace kvsieve
