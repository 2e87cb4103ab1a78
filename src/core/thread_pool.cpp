#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KVSIEVE_PAUSE() _mm_pause()
#else
#define KVSIEVE_PAUSE() std::this_thread::yield()
#endif

namespace kvsieve {

namespace {
// How long an idle worker polls for the next job before sleeping.
constexpr auto kSpin = std::chrono::microseconds(2000);

void chunk_range(int64_t n, int chunks, int i, int64_t& b, int64_t& e) {
  b = n * i / chunks;
  e = n * (i + 1) / chunks;
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Poll first, then sleep until the generation changes.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    int polls = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      KVSIEVE_PAUSE();
      if (++polls % 256 == 0 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lk(mu_);
        start_cv_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    const auto* job = job_;
    const int64_t n = job_n_;
    const int chunks = job_chunks_;
    if (index < chunks) {
      int64_t b, e;
      chunk_range(n, chunks, index, b, e);
      if (b < e) (*job)(b, e, index);
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t min_chunk) {
  if (n <= 0) return;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
  const int chunks = int(std::min<int64_t>(n_threads_, max_chunks));
  if (chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  {
    // Job fields are published before the generation bump (release), and
    // read by workers after they see it (acquire).
    std::lock_guard<std::mutex> lk(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  int64_t b, e;
  chunk_range(n, chunks, 0, b, e);
  fn(b, e, 0);
  // Yield now and then: with more threads than free cores a worker may be
  // descheduled, and spinning on its core would only delay it.
  for (int polls = 1; pending_.load(std::memory_order_acquire) != 0; ++polls) {
    if (polls % 1024 == 0) std::this_thread::yield(); else KVSIEVE_PAUSE();
  }
}

}  // namespace kvsieve
