// matmul on every SIMD target this CPU runs, every weight type, against the
// f64 reference (ref::matmul: weights decoded by core's dequantize_row, dot
// products summed in double).
//
// Tolerance: the kernels decode weights to exactly the f32 values the
// reference uses, so the only error is the f32 accumulation of cols products
// plus the bias: any order of summation is within (cols + 2)·u·(Σ|w·x| + |b|)
// of the exact sum (u = 2^-24). A wrong or missing term is off by about
// |w·x| ~ 1/cols of Σ|w·x|, far above that bound for the sizes used here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/ops_ref.h"
#include "core/error.h"
#include "test_ops_util.h"

using namespace kvsieve;
using kvsieve::testing::fill_uniform;
using kvsieve::testing::kU;
using kvsieve::testing::Misaligned;

namespace {

// Q4_0's dot form quantizes x (tests in test_ops_matmul_q4_0.cpp).
constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_1};
constexpr float kGuard = -999.0f;

// A random weight matrix stored in type t, starting 4 bytes past an aligned
// address (weights in a safetensors file need not be vector-aligned).
struct Weights {
  std::vector<uint8_t> storage;
  TensorView view;
  std::vector<float> deq;  // [rows, cols] the decoded values, for the error bound

  Weights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
    const size_t row_bytes = dtype_row_bytes(t, cols);
    storage.assign(4 + size_t(rows) * row_bytes, 0);
    std::vector<float> row(static_cast<size_t>(cols));
    deq.resize(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      fill_uniform(row.data(), cols, rng);
      uint8_t* dst = storage.data() + 4 + size_t(r) * row_bytes;
      quantize_row(t, row.data(), dst, cols);
      dequantize_row(t, dst, deq.data() + r * cols, cols);
    }
    view.name = "test.weight";
    view.type = t;
    view.shape = {rows, cols};
    view.data = storage.data() + 4;
    view.nbytes = size_t(rows) * row_bytes;
  }
};

// Checks y [n, rows] against the reference with the bound above, and that
// the value after y is untouched.
void expect_close(const Weights& w, const float* x, int64_t n, const float* bias,
                  const std::vector<float>& ref, const Misaligned& y, const char* what) {
  const int64_t rows = w.view.rows(), cols = w.view.cols();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double mag = bias ? std::fabs(bias[r]) : 0.0;
      for (int64_t k = 0; k < cols; ++k) mag += std::fabs(double(w.deq[size_t(r * cols + k)]) * x[i * cols + k]);
      const double tol = (cols + 2) * kU * mag + 1e-30;
      ASSERT_NEAR(y[i * rows + r], ref[size_t(i * rows + r)], tol)
          << what << " " << dtype_name(w.view.type) << " rows=" << rows << " cols=" << cols
          << " n=" << n << " i=" << i << " r=" << r;
    }
  }
  ASSERT_EQ(const_cast<Misaligned&>(y)[n * rows], kGuard) << what << " wrote past y";
}

}  // namespace

TEST(Matmul, EveryTypeTargetShapeAndThreadCount) {
  std::mt19937 rng(11);
  ThreadPool pool1(1), pool2(2);
  const auto targets = cpu_kernels_all();
  for (DType t : kTypes) {
    const bool quant = dtype_block_size(t) > 1;
    // rows not multiples of any vector width or tile; cols odd for plain
    // types (tails) and 1..3 blocks for quantized ones.
    const std::vector<std::pair<int64_t, int64_t>> shapes =
        quant ? std::vector<std::pair<int64_t, int64_t>>{{37, 64}, {19, 96}, {8, 32}}
              : std::vector<std::pair<int64_t, int64_t>>{{37, 45}, {19, 67}, {8, 16}};
    for (auto [rows, cols] : shapes) {
      Weights w(t, rows, cols, rng);
      std::vector<float> bias(static_cast<size_t>(rows));
      fill_uniform(bias.data(), rows, rng);
      // 29: a partial panel (n % 32 > 20); 129: whole panels plus one row by the dot form.
      for (int64_t n : {1, 2, 3, 7, 29, 64, 129}) {
        Misaligned x(n * cols);
        fill_uniform(x.data(), n * cols, rng);
        for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
          std::vector<float> ref(static_cast<size_t>(n * rows));
          ref::matmul(w.view, x.data(), n, ref.data(), b);
          for (const CpuKernels* k : targets) {
            for (ThreadPool* pool : {&pool1, &pool2}) {
              Misaligned y(n * rows);
              for (int64_t i = 0; i <= n * rows; ++i) y[i] = kGuard;
              k->matmul(w.view, x.data(), n, y.data(), *pool, b);
              std::string what = std::string(k->target) + (b ? " bias" : " no-bias") +
                                 (pool->size() == 1 ? " 1 thread" : " 2 threads");
              expect_close(w, x.data(), n, b, ref, y, what.c_str());
            }
          }
        }
      }
    }
  }
}

TEST(Matmul, LargerShapeSpansTilesAndThreads) {
  // Several row blocks per thread, several x panels, cols past many vectors.
  std::mt19937 rng(12);
  ThreadPool pool(2);
  for (DType t : kTypes) {
    const int64_t rows = 300, cols = dtype_block_size(t) > 1 ? 512 : 520, n = 129;
    Weights w(t, rows, cols, rng);
    std::vector<float> bias(static_cast<size_t>(rows));
    fill_uniform(bias.data(), rows, rng);
    Misaligned x(n * cols);
    fill_uniform(x.data(), n * cols, rng);
    std::vector<float> ref(static_cast<size_t>(n * rows));
    ref::matmul(w.view, x.data(), n, ref.data(), bias.data());
    for (const CpuKernels* k : cpu_kernels_all()) {
      Misaligned y(n * rows);
      y[n * rows] = kGuard;
      k->matmul(w.view, x.data(), n, y.data(), pool, bias.data());
      expect_close(w, x.data(), n, bias.data(), ref, y, k->target);
    }
  }
}

// matmuls (a layer's q/k/v or gate/up products as one parallel loop) gives
// every output as matmul does: bit for bit for the K-quants and Q4_0 (each
// row is one kernel call whatever the chunks), within the f32 bound for the others
// (their tiles depend on where a thread's chunk starts). Mixed types, rows
// of every product split between chunks, n in the dot form and past it.
TEST(Matmul, FusedProductsMatchSeparateOnes) {
  std::mt19937 rng(13);
  ThreadPool pool1(1), pool2(2);
  const int64_t cols = 512;
  const std::vector<std::vector<std::pair<DType, int64_t>>> groups = {
      {{DType::Q4_K, 600}, {DType::Q4_K, 37}, {DType::Q6_K, 45}},
      {{DType::Q5_K, 9}, {DType::F32, 130}, {DType::Q8_0, 70}, {DType::Q4_0, 33}},
      {{DType::BF16, 64}}};
  for (const auto& g : groups) {
    std::vector<Weights> ws;
    std::vector<std::vector<float>> biases;
    for (auto [t, rows] : g) {
      ws.emplace_back(t, rows, cols, rng);
      biases.emplace_back(size_t(rows));
      fill_uniform(biases.back().data(), rows, rng);
    }
    for (int64_t n : {1, 3, 8, 21}) {
      Misaligned x(n * cols);
      fill_uniform(x.data(), n * cols, rng);
      for (const CpuKernels* k : cpu_kernels_all()) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          std::vector<Misaligned> ys, sep;
          std::vector<MatmulOut> outs;
          for (size_t j = 0; j < ws.size(); ++j) {
            const int64_t rows = ws[j].view.rows();
            ys.emplace_back(n * rows);
            sep.emplace_back(n * rows);
          }
          for (size_t j = 0; j < ws.size(); ++j) {
            const int64_t rows = ws[j].view.rows();
            for (int64_t i = 0; i <= n * rows; ++i) ys[j][i] = kGuard;
            const float* b = j % 2 ? nullptr : biases[j].data();
            outs.push_back({&ws[j].view, ys[j].data(), b});
            k->matmul(ws[j].view, x.data(), n, sep[j].data(), *pool, b);
          }
          k->matmuls(outs.data(), outs.size(), x.data(), n, *pool);
          for (size_t j = 0; j < ws.size(); ++j) {
            const std::string what = std::string(k->target) + " product " + std::to_string(j) +
                                     " threads=" + std::to_string(pool->size());
            const int64_t rows = ws[j].view.rows();
            if (is_kquant(ws[j].view.type) || ws[j].view.type == DType::Q4_0) {
              for (int64_t i = 0; i < n * rows; ++i) ASSERT_EQ(ys[j][i], sep[j][i]) << what << " n=" << n << " at " << i;
              ASSERT_EQ(ys[j][n * rows], kGuard) << what << " wrote past y";
            } else {
              std::vector<float> ref(static_cast<size_t>(n * rows));
              ref::matmul(ws[j].view, x.data(), n, ref.data(), outs[j].bias);
              expect_close(ws[j], x.data(), n, outs[j].bias, ref, ys[j], what.c_str());
            }
          }
        }
      }
    }
  }
}

TEST(Matmul, FusedProductsCheckEachWeight) {
  ThreadPool pool(2);
  std::mt19937 rng(14);
  Weights a(DType::Q4_K, 8, 256, rng), b(DType::Q8_0, 8, 256, rng);
  std::vector<float> x(256), ya(8), yb(8), yc(8);
  fill_uniform(x.data(), 256, rng);
  TensorView bad = b.view;
  bad.name = "blk.3.attn_v.weight";
  bad.nbytes = 10;  // smaller than its shape
  const MatmulOut outs[] = {{&a.view, ya.data()}, {&bad, yb.data()}};
  try {
    matmuls(outs, x.data(), 1, pool);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.3.attn_v.weight"), std::string::npos) << e.what();
  }
  // Products with different row lengths are run one by one.
  Weights c(DType::F32, 8, 64, rng);
  const MatmulOut mixed[] = {{&a.view, ya.data()}, {&c.view, yc.data()}};
  std::vector<float> xc(256);
  fill_uniform(xc.data(), 256, rng);
  matmuls(mixed, xc.data(), 1, pool);  // c reads only the first 64 values of x
  std::vector<float> ra(8), rc(8);
  matmul(a.view, xc.data(), 1, ra.data(), pool);
  matmul(c.view, xc.data(), 1, rc.data(), pool);
  EXPECT_EQ(ya, ra);
  EXPECT_EQ(yc, rc);
}

TEST(Matmul, PublicEntryPointAndEmptyShapes) {
  // [2, 3] · [3] through the dispatched entry point, exact small integers.
  std::vector<float> wf{1, 2, 3, 4, 5, 6}, x{1, -1, 2}, y(2), bias{10, 20};
  TensorView w;
  w.type = DType::F32;
  w.shape = {2, 3};
  w.data = wf.data();
  w.nbytes = wf.size() * 4;
  ThreadPool pool(2);
  matmul(w, x.data(), 1, y.data(), pool, bias.data());
  EXPECT_EQ(y[0], 10 + 1 - 2 + 6);
  EXPECT_EQ(y[1], 20 + 4 - 5 + 12);
  // n = 0 writes nothing.
  y = {7, 7};
  matmul(w, x.data(), 0, y.data(), pool);
  EXPECT_EQ(y[0], 7);
}

TEST(Matmul, RejectsBadWeights) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(34 * 4);
  std::vector<float> x(64), y(4);
  TensorView w;
  w.name = "blk.0.attn_q.weight";
  w.type = DType::Q8_0;
  w.shape = {2, 48};  // not a multiple of the 32-value block
  w.data = bytes.data();
  w.nbytes = bytes.size();
  try {
    matmul(w, x.data(), 1, y.data(), pool);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.attn_q.weight"), std::string::npos) << e.what();
  }
  w.shape = {4, 64};  // needs 4 * 2 blocks = 272 bytes, has 136
  EXPECT_THROW(matmul(w, x.data(), 1, y.data(), pool), Error);
  w.data = nullptr;
  w.nbytes = 0;
  EXPECT_THROW(matmul(w, x.data(), 1, y.data(), pool), Error);
}
