#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

using namespace kvsieve;

TEST(ThreadPool, CoversEveryIndexOnceAcrossManyJobs) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 64, 1001}) {
      for (int rep = 0; rep < 50; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
          EXPECT_GE(t, 0);
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "n=" << n;
      }
    }
  }
}

TEST(ThreadPool, MinChunkLimitsTheSplit) {
  ThreadPool pool(4);
  std::atomic<int> calls{0};
  pool.parallel_for(10, [&](int64_t, int64_t, int) { calls++; }, 8);
  EXPECT_EQ(calls.load(), 1);
}

// The caller goes to sleep when a chunk runs long (past the short spin) and
// is woken when it finishes; parallel_for returns only after every chunk.
TEST(ThreadPool, WaitsForALongChunkAndWakes) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<int> done{0};
    pool.parallel_for(3, [&](int64_t b, int64_t, int) {
      if (b == 2) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      done++;
    });
    ASSERT_EQ(done.load(), 3);
  }
}

// Idle workers sleep after a short spin instead of polling: loops separated
// by 2 ms pauses use far less CPU time than the pool's threads x wall time
// (a pool that polls for milliseconds after each job, as this one did before,
// would use about 2x the wall time here with 3 threads).
TEST(ThreadPool, IdleWorkersDoNotSpin) {
  ThreadPool pool(3);
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double c0 = cpu_now();
  const auto w0 = std::chrono::steady_clock::now();
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 25; ++rep) {
    pool.parallel_for(3, [&](int64_t b, int64_t e, int) { sum += e - b; });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  const double cpu = cpu_now() - c0;
  EXPECT_EQ(sum.load(), 75);
  EXPECT_LT(cpu, 0.5 * wall) << "cpu " << cpu << " s over " << wall << " s";
}
