// matmul with Q4_0 weights on every SIMD target this CPU runs, against the
// scalar references, for both of its forms:
//
//  * dot form (n <= 8 on every target; every n on the scalar target): x is
//    quantized to 8-bit blocks (quantize_row_q8_0x) and each output is core's
//    dot_q4_0_q8_0 up to f32 summation order. The per-block integer sums and
//    the scale products s_b = d_w·d_x are the reference's, so only the f32
//    additions differ: the kernels add partial sums of at most 32 products
//    (each |Σ (q - 8)·x8| <= Σ (q + 8)·|x8| over its values) scaled by s_b,
//    through at most nb + 16 additions, and the reference nb + 1. Both are
//    within (nb + 18)·u·M of the exact value, M = Σ_b s_b·Σ_j (q_j + 8)·|x8_j|
//    + |bias|, so tol = 2·(nb + 18)·u·M. A wrong level, offset or scale
//    moves a result by about s_b·|x8|, M/(32·nb) or more: far outside.
//  * integer tiles (n > 20 on AVX2 and AVX-512): x quantized the same way,
//    the per-block terms rounded and added in the reference's order: bit
//    for bit dot_q4_0_q8_0 (checked besides the bound).
//  * panel form (n > 8 on SSE4): weights decoded by core's dequantize_row, x
//    in f32: the f64 reference with (cols + 2)·u·Σ|w·x|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops_ref.h"
#include "core/q4_0_dot.h"
#include "test_ops_util.h"

using namespace kvsieve;
using kvsieve::testing::fill_uniform;
using kvsieve::testing::kU;
using kvsieve::testing::Misaligned;

namespace {

struct Q4Weights {
  std::vector<uint8_t> storage;
  TensorView view;
  std::vector<float> deq;  // [rows, cols]
  Q4Weights(int64_t rows, int64_t cols, std::mt19937& rng) {
    const size_t rb = dtype_row_bytes(DType::Q4_0, cols);
    storage.assign(4 + size_t(rows) * rb, 0);  // 4 bytes off alignment, as in a file
    std::normal_distribution<float> nd(0.1f, 1.0f);
    std::vector<float> row(static_cast<size_t>(cols));
    deq.resize(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = nd(rng);
      quantize_row(DType::Q4_0, row.data(), storage.data() + 4 + size_t(r) * rb, cols);
      dequantize_row(DType::Q4_0, storage.data() + 4 + size_t(r) * rb, deq.data() + r * cols, cols);
    }
    view.name = "test.q4_0";
    view.type = DType::Q4_0;
    view.shape = {rows, cols};
    view.data = storage.data() + 4;
    view.nbytes = size_t(rows) * rb;
  }
  const BlockQ4_0* row(int64_t r) const {
    return reinterpret_cast<const BlockQ4_0*>(storage.data() + 4 + size_t(r) * dtype_row_bytes(DType::Q4_0, view.cols()));
  }
};

bool int_target(const CpuKernels& k) { return std::string(k.target) == "AVX2" || std::string(k.target).rfind("AVX3", 0) == 0; }
// x quantized (dot form or integer tiles) rather than the f32 panels.
bool quantized_x(const CpuKernels& k, int64_t n) {
  return std::string(k.target) == "SCALAR" || n <= 8 || int_target(k);
}

// M of the bound above for one row and one quantized x row.
double magnitude(const BlockQ4_0* w, const BlockQ8_0x* x, int64_t nb) {
  double m = 0;
  for (int64_t b = 0; b < nb; ++b) {
    double s = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      s += double((w[b].nib[j] & 0xF) + 8) * std::abs(x[b].qs[j]);
      s += double((w[b].nib[j] >> 4) + 8) * std::abs(x[b].qs[j + kQK / 2]);
    }
    m += double(std::fabs(f16_to_f32(w[b].d) * x[b].d)) * s;
  }
  return m;
}

void check_target(const CpuKernels& k, ThreadPool& pool, const Q4Weights& w, const float* x, int64_t n,
                  const float* bias) {
  const int64_t rows = w.view.rows(), cols = w.view.cols(), nb = cols / kQK;
  Misaligned y(n * rows);
  for (int64_t i = 0; i <= n * rows; ++i) y[i] = -999.0f;
  k.matmul(w.view, x, n, y.data(), pool, bias);
  const std::string what = std::string(k.target) + " rows=" + std::to_string(rows) + " cols=" +
                           std::to_string(cols) + " n=" + std::to_string(n) + (bias ? " bias" : "") +
                           " threads=" + std::to_string(pool.size());
  if (quantized_x(k, n)) {
    std::vector<BlockQ8_0x> xq(static_cast<size_t>(nb));
    for (int64_t i = 0; i < n; ++i) {
      quantize_row_q8_0x(x + i * cols, xq.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        const float ref = dot_q4_0_q8_0(w.row(r), xq.data(), nb) + (bias ? bias[r] : 0.0f);
        const double mag = magnitude(w.row(r), xq.data(), nb) + (bias ? std::fabs(bias[r]) : 0.0);
        ASSERT_NEAR(y[i * rows + r], ref, 2 * (nb + 18) * kU * mag + 1e-30) << what << " i=" << i << " r=" << r;
        if (int_target(k) && n > 20) {
          ASSERT_EQ(y[i * rows + r], ref) << what << " i=" << i << " r=" << r;
        }
      }
    }
  } else {
    std::vector<float> ref(size_t(n * rows));
    ref::matmul(w.view, x, n, ref.data(), bias);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < rows; ++r) {
        double mag = bias ? std::fabs(bias[r]) : 0.0;
        for (int64_t c = 0; c < cols; ++c) mag += std::fabs(double(w.deq[size_t(r * cols + c)]) * x[i * cols + c]);
        ASSERT_NEAR(y[i * rows + r], ref[size_t(i * rows + r)], (cols + 2) * kU * mag + 1e-30)
            << what << " i=" << i << " r=" << r;
      }
  }
  ASSERT_EQ(y[n * rows], -999.0f) << what << " wrote past y";
}

}  // namespace

// Odd and even block counts (the AVX2 kernel takes blocks in pairs, and
// pairs of pairs), rows that are not multiples of anything.
TEST(MatmulQ4_0, EveryTargetShapeAndThreadCount) {
  std::mt19937 rng(31);
  ThreadPool pool1(1), pool2(2);
  const auto targets = cpu_kernels_all();
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {37, 32}, {19, 64}, {8, 96}, {5, 160}, {9, 2048}, {3, 224}, {300, 512}}) {
    Q4Weights w(rows, cols, rng);
    std::vector<float> bias(static_cast<size_t>(rows));
    fill_uniform(bias.data(), rows, rng);
    for (int64_t n : {1, 2, 3, 8, 29, 30, 63}) {
      Misaligned x(n * cols);
      fill_uniform(x.data(), n * cols, rng);
      for (const CpuKernels* k : targets)
        for (ThreadPool* pool : {&pool1, &pool2})
          for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())})
            check_target(*k, *pool, w, x.data(), n, b);
    }
  }
}

// The activation quantizer of every target gives core's blocks bit for bit,
// for random rows, rows with ties at half a level, zeros and one huge value.
TEST(MatmulQ4_0, ActivationQuantizerIsBitExactOnEveryTarget) {
  std::mt19937 rng(32);
  const int64_t n = 8 * kQK;
  std::vector<float> x(static_cast<size_t>(n));
  for (int rep = 0; rep < 50; ++rep) {
    fill_uniform(x.data(), n, rng, -3.0f, 3.0f);
    if (rep % 5 == 1) {  // ties: with max|x| = 127, id = 1 and x·id = k + 0.5 exactly
      for (int64_t i = 0; i < n; ++i) x[size_t(i)] = float(int(rng() % 254) - 127) + 0.5f;
      for (int64_t i = 0; i < n; i += kQK) x[size_t(i)] = 127.0f;
    }
    if (rep % 5 == 2) std::fill(x.begin(), x.begin() + kQK, 0.0f);  // a zero block
    if (rep % 5 == 3) x[7] = 1e30f;
    std::vector<BlockQ8_0x> ref(size_t(n / kQK)), got(size_t(n / kQK));
    quantize_row_q8_0x(x.data(), ref.data(), n);
    for (const CpuKernels* k : cpu_kernels_all()) {
      std::memset(got.data(), 0x55, got.size() * sizeof(BlockQ8_0x));
      k->quantize_row_q8_0x(x.data(), got.data(), n);
      for (size_t b = 0; b < ref.size(); ++b) {
        ASSERT_EQ(got[b].d, ref[b].d) << k->target << " block " << b;
        ASSERT_EQ(got[b].sum, ref[b].sum) << k->target << " block " << b;
        ASSERT_EQ(std::memcmp(got[b].qs, ref[b].qs, kQK), 0) << k->target << " block " << b << " rep " << rep;
      }
    }
  }
}

// The dot form against the f32 product of the decoded weights: quantizing x
// moves each value by at most d/2 = max|x_block|/254, so
// |y - W·x| <= Σ_c |w_c|·max|x_block(c)|/254 (+ f32 slack); a wrong scale,
// level or offset is far outside that.
TEST(MatmulQ4_0, DotFormIsCloseToTheF32Product) {
  std::mt19937 rng(33);
  ThreadPool pool(2);
  const int64_t rows = 64, cols = 1024;
  Q4Weights w(rows, cols, rng);
  std::vector<float> x(static_cast<size_t>(cols)), y(static_cast<size_t>(rows));
  fill_uniform(x.data(), cols, rng);
  for (const CpuKernels* k : cpu_kernels_all()) {
    k->matmul(w.view, x.data(), 1, y.data(), pool, nullptr);
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, bound = 0;
      for (int64_t c = 0; c < cols; ++c) {
        double amax = 0;
        for (int64_t j = c - c % kQK; j < c - c % kQK + kQK; ++j) amax = std::max(amax, double(std::fabs(x[size_t(j)])));
        exact += double(w.deq[size_t(r * cols + c)]) * x[size_t(c)];
        bound += std::fabs(w.deq[size_t(r * cols + c)]) * (amax / 254) + 1e-6;
      }
      ASSERT_NEAR(y[size_t(r)], exact, bound) << k->target << " row " << r;
    }
  }
}
