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
// How long a thread polls before it sleeps: longer than the gap between two
// parallel loops of a decode step (a few us of serial work), short enough
// that an idle or blocked pool costs little on shared cores.
constexpr auto kSpin = std::chrono::microseconds(100);

void chunk_range(int64_t n, int chunks, int i, int64_t& b, int64_t& e) {
  b = n * i / chunks;
  e = n * (i + 1) / chunks;
}

// Polls until pred() holds or kSpin has passed; true if it held.
template <class Pred>
bool spin_until(const Pred& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int polls = 1;; ++polls) {
    if (pred()) return true;
    KVSIEVE_PAUSE();
    if (polls % 64 == 0 && std::chrono::steady_clock::now() > deadline) return pred();
  }
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
  for (;;) {
    // Claim a chunk and read the job it belongs to in one step: a thread
    // that was slow to wake may find the next job already published.
    const std::function<void(int64_t, int64_t, int)>* job;
    int64_t n;
    int chunks, i;
    {
      std::lock_guard<std::mutex> lk(claim_mu_);
      if (next_chunk_ >= job_chunks_) return;
      i = next_chunk_++;
      job = job_;
      n = job_n_;
      chunks = job_chunks_;
    }
    int64_t b, e;
    chunk_range(n, chunks, i, b, e);
    if (b < e) (*job)(b, e, i);
    if (unfinished_.fetch_sub(1) == 1 && caller_waits_.load()) {  // seq_cst: see parallel_for
      unfinished_.notify_all();
    }
  }
}

void ThreadPool::worker() {
  uint64_t seen = 0;
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      // Sleep. sleepers_ is raised before the last look at generation_
      // (seq_cst on both sides): either parallel_for sees a sleeper and
      // notifies, or the wait sees the new generation and returns at once.
      sleepers_.fetch_add(1);
      generation_.wait(seen);
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_chunks();  // finds none if the others took every chunk
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t min_chunk, int max_chunks) {
  if (n <= 0) return;
  const int64_t fit = std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk));
  const int chunks = n_threads_ <= 1 ? 1 : int(std::min<int64_t>(std::max(n_threads_, max_chunks), fit));
  if (chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  // Publish the job, then bump the generation (seq_cst: see worker()). The
  // previous job's chunks have all finished (unfinished_ reached 0).
  unfinished_.store(chunks);
  {
    std::lock_guard<std::mutex> lk(claim_mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    next_chunk_ = 0;
  }
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) generation_.notify_all();
  run_chunks();
  // Chunks claimed by workers may still be running.
  if (!spin_until([&] { return unfinished_.load(std::memory_order_acquire) == 0; })) {
    caller_waits_.store(true);
    for (int left; (left = unfinished_.load()) != 0;) unfinished_.wait(left);
    caller_waits_.store(false);
  }
}

}  // namespace kvsieve
