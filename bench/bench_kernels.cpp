// Kernel benchmarks (Google Benchmark). matmul for every weight type at the
// shapes of a ~100M-parameter Llama (hidden 768, feed-forward 2048, vocab
// 32000), at decode (n = 1) and prefill (n = 128), plus the row ops.
//
//   cmake -S . -B build -DKVSIEVE_BUILD_BENCH=ON && cmake --build build -j2 --target bench_kernels
//   build/bench_kernels [--threads=2] [--target=AVX2] [--benchmark_filter=...]
//
// Counters: GFLOP/s = 2·n·rows·cols per second; GB/s = bytes of W read per
// second (W is read once per call in both paths; x and y are small beside it).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops.h"
#include "core/dtype.h"
#include "core/kquant.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

using namespace kvsieve;

namespace {

int g_threads = 2;
const CpuKernels* g_kernels = nullptr;

ThreadPool& pool() {
  static ThreadPool p(g_threads);
  return p;
}

constexpr DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                            DType::Q4_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
constexpr int kNumTypes = int(sizeof(kTypes) / sizeof(kTypes[0]));

struct Matrix {
  std::vector<uint8_t> bytes;
  TensorView view;
};

Matrix random_matrix(DType t, int64_t rows, int64_t cols) {
  std::mt19937 rng(uint32_t(rows * 31 + cols));
  std::normal_distribution<float> nd(0.0f, 0.02f);
  Matrix m;
  const size_t row_bytes = dtype_row_bytes(t, cols);
  m.bytes.resize(size_t(rows) * row_bytes);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) v = nd(rng);
    quantize_row(t, row.data(), m.bytes.data() + size_t(r) * row_bytes, cols);
  }
  m.view.name = "bench";
  m.view.type = t;
  m.view.shape = {rows, cols};
  m.view.data = m.bytes.data();
  m.view.nbytes = m.bytes.size();
  return m;
}

// args: type index, rows, cols, n
void BM_Matmul(benchmark::State& state) {
  const DType t = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2), n = state.range(3);
  const Matrix w = random_matrix(t, rows, cols);
  std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  for (auto _ : state) {
    g_kernels->matmul(w.view, x.data(), n, y.data(), pool(), nullptr);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double iters = double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(n * rows * cols) * iters / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * iters / 1e9,
                                              benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(t)) + " " + g_kernels->target);
}

void matmul_args(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
  for (int64_t n : {1, 128})
    for (int ti = 0; ti < kNumTypes; ++ti)
      for (auto& s : shapes) b->Args({ti, s[0], s[1], n});
  b->ArgNames({"type", "rows", "cols", "n"});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Matmul)->Apply(matmul_args);

// Small batches between decode and prefill, where the kernel switches from
// the dot form to the panel form (2048 x 768, F32 and Q8_0).
void small_n_args(benchmark::internal::Benchmark* b) {
  for (int ti : {0, 3})
    for (int64_t n : {2, 3, 4, 5, 7, 8, 12, 16, 32}) b->Args({ti, 2048, 768, n});
  b->ArgNames({"type", "rows", "cols", "n"});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Matmul)->Name("BM_MatmulSmallN")->Apply(small_n_args);

// The K-quant kernels beside their scalar references, one thread, decode
// (n = 1): the SIMD dot form (matmul: x quantized to Q8_K, integer dots) and
// the reference it is tested against (quantize_row_q8_K + dot_*_q8_K per
// row); then the dequantisation that the panel form (prefill) runs per row.
// args: type index (6 Q4_K, 7 Q5_K, 8 Q6_K), rows, cols
void BM_KQuantMatvecSimd(benchmark::State& state) {
  const DType t = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2);
  const Matrix w = random_matrix(t, rows, cols);
  std::vector<float> x(static_cast<size_t>(cols), 0.25f), y(static_cast<size_t>(rows));
  ThreadPool one(1);
  for (auto _ : state) {
    g_kernels->matmul(w.view, x.data(), 1, y.data(), one, nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * double(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(t)) + " " + g_kernels->target);
}
void BM_KQuantMatvecRef(benchmark::State& state) {
  const DType t = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2), nb = cols / kQK_K;
  const Matrix w = random_matrix(t, rows, cols);
  std::vector<float> x(static_cast<size_t>(cols), 0.25f), y(static_cast<size_t>(rows));
  std::vector<BlockQ8_K> xq(static_cast<size_t>(nb));
  const size_t rb = dtype_row_bytes(t, cols);
  for (auto _ : state) {
    quantize_row_q8_K(x.data(), xq.data(), cols);
    for (int64_t r = 0; r < rows; ++r) y[size_t(r)] = dot_kquant_q8_K(t, w.bytes.data() + size_t(r) * rb, xq.data(), nb);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(double(w.bytes.size()) * double(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.SetLabel(std::string(dtype_name(t)) + " scalar reference");
}
void BM_KQuantDequantRow(benchmark::State& state) {
  const DType t = kTypes[state.range(0)];
  const int64_t rows = state.range(1), cols = state.range(2);
  const Matrix w = random_matrix(t, rows, cols);
  std::vector<float> out(static_cast<size_t>(cols));
  const size_t rb = dtype_row_bytes(t, cols);
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) dequantize_row(t, w.bytes.data() + size_t(r) * rb, out.data(), cols);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * rows * cols);
  state.SetLabel(std::string(dtype_name(t)) + " scalar");
}
void kquant_args(benchmark::internal::Benchmark* b) {
  // 768 columns: 3 super-blocks per row; 2048: 8, as in a 1.1B model (2.4-3.4 MB, in L3).
  for (int ti : {6, 7, 8}) b->Args({ti, 2048, 768});
  for (int ti : {6, 7, 8}) b->Args({ti, 2048, 2048});
  b->ArgNames({"type", "rows", "cols"});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_KQuantMatvecSimd)->Apply(kquant_args);
BENCHMARK(BM_KQuantMatvecRef)->Apply(kquant_args);
BENCHMARK(BM_KQuantDequantRow)->Apply(kquant_args);

void BM_RmsNorm(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> x(static_cast<size_t>(n), 0.5f), w(static_cast<size_t>(n), 1.1f),
      out(static_cast<size_t>(n));
  for (auto _ : state) {
    g_kernels->rmsnorm(x.data(), w.data(), out.data(), n, 1e-5f);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_RmsNorm)->Arg(768)->Arg(4096);

void BM_Softmax(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(i % 97) * 0.1f;
  for (auto _ : state) {
    // The output is a valid input again (a probability row), so no refill.
    g_kernels->softmax(x.data(), n);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_Softmax)->Arg(4096)->Arg(32768);

void BM_SiluMul(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> g(static_cast<size_t>(n), 0.3f), u(static_cast<size_t>(n), 1.5f),
      out(static_cast<size_t>(n));
  for (auto _ : state) {
    g_kernels->silu_mul(g.data(), u.data(), out.data(), n);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_SiluMul)->Arg(2048)->Arg(14336);

// Attention-style scores: one query against `keys` rows of head_dim 64.
void BM_DotScores(benchmark::State& state) {
  const int64_t hd = 64, keys = state.range(0);
  std::vector<float> q(static_cast<size_t>(hd), 0.1f), k(static_cast<size_t>(hd * keys), 0.2f),
      s(static_cast<size_t>(keys));
  for (auto _ : state) {
    for (int64_t t = 0; t < keys; ++t) s[size_t(t)] = g_kernels->dot(q.data(), k.data() + t * hd, hd);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetItemsProcessed(state.iterations() * keys);
}
BENCHMARK(BM_DotScores)->Arg(4096);

// The same scores through dot_rows_f32, and the weighted sum of value rows.
void BM_DotRows(benchmark::State& state) {
  const int64_t hd = 64, keys = state.range(0);
  std::vector<float> q(static_cast<size_t>(hd), 0.1f), k(static_cast<size_t>(hd * keys), 0.2f),
      s(static_cast<size_t>(keys));
  for (auto _ : state) {
    g_kernels->dot_rows(q.data(), k.data(), keys, hd, hd, s.data());
    benchmark::DoNotOptimize(s.data());
  }
  state.SetItemsProcessed(state.iterations() * keys);
}
BENCHMARK(BM_DotRows)->Arg(4096);


void BM_AxpyRows(benchmark::State& state) {
  const int64_t hd = 64, keys = state.range(0);
  std::vector<float> p(static_cast<size_t>(keys), 1e-4f), v(static_cast<size_t>(hd * keys), 0.2f),
      out(static_cast<size_t>(hd));
  for (auto _ : state) {
    g_kernels->axpy_rows(p.data(), v.data(), keys, hd, hd, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * keys);
}
BENCHMARK(BM_AxpyRows)->Arg(4096);

void BM_Rope(benchmark::State& state) {
  const int64_t hd = 64, heads = 12;
  const auto f = RopeFreqs::make(hd, 10000.0f);
  std::vector<float> c(32), s(32), x(static_cast<size_t>(hd * heads), 0.3f);
  rope_cos_sin(f, 1234, c.data(), s.data());
  const RopeStyle style = state.range(0) ? RopeStyle::kNeox : RopeStyle::kInterleaved;
  for (auto _ : state) {
    g_kernels->apply_rope(x.data(), heads, hd, c.data(), s.data(), style);
    benchmark::DoNotOptimize(x.data());
  }
}
BENCHMARK(BM_Rope)->Arg(0)->Arg(1);

// The cost of waking the pool for an empty loop: the floor under every
// multi-threaded matmul call (decode runs ~7 of them per layer).
void BM_ParallelForOverhead(benchmark::State& state) {
  std::vector<int64_t> sink(64);
  for (auto _ : state) {
    pool().parallel_for(int64_t(g_threads), [&](int64_t b, int64_t, int t) { sink[size_t(t)] += b; });
    benchmark::DoNotOptimize(sink.data());
  }
}
BENCHMARK(BM_ParallelForOverhead)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  // Our flags first (--threads=N, --target=NAME); the rest go to Google Benchmark.
  std::vector<char*> rest;
  std::string target;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      g_threads = std::atoi(argv[i] + 10);
    else if (std::strncmp(argv[i], "--target=", 9) == 0)
      target = argv[i] + 9;
    else
      rest.push_back(argv[i]);
  }
  g_kernels = &cpu_kernels();
  if (!target.empty()) {
    g_kernels = nullptr;
    for (const CpuKernels* k : cpu_kernels_all())
      if (target == k->target) g_kernels = k;
    if (!g_kernels) {
      std::fprintf(stderr, "target %s is not compiled in or not supported by this CPU\n", target.c_str());
      return 1;
    }
  }
  benchmark::AddCustomContext("kvsieve_threads", std::to_string(g_threads));
  benchmark::AddCustomContext("kvsieve_target", g_kernels->target);
  int rc = int(rest.size());
  benchmark::Initialize(&rc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
