// matmul with K-quant weights (Q4_K, Q5_K, Q6_K) on every SIMD target this
// CPU runs, against the scalar references, for both of its forms:
//
//  * dot form (n <= 8 on every target; every n on the scalar target): x is
//    quantized to Q8_K and each output is the reference dot_*_q8_K of core
//    up to f32 summation order. The integer sums are exact, so the only
//    error is f32 rounding of at most (nb + lanes + 4) additions of terms
//    bounded by |d·isum| + |dmin·msum| per block: we take
//    tol = (nb + 24)·u·4·Σ|w·x_q| (the 4: |d·sc·q| + |dmin·mn| <= |w| + 2·|dmin·mn|,
//    and the mins are at most the block's magnitude).
//  * Q4_K's integer tiles (n > 8 on AVX2 and AVX-512, gemm_q4_k.cpp): x
//    quantized to Q8_K as in the dot form, and each output is the reference
//    bit for bit (checked besides the bound).
//  * panel form (n > 20 on the SIMD targets, other types): weights decoded
//    by core's dequantize_row, x in f32, so the f64 reference of
//    test_ops_matmul.cpp applies with its bound (cols + 2)·u·Σ|w·x|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops_ref.h"
#include "core/kquant.h"
#include "test_ops_util.h"

using namespace kvsieve;
using kvsieve::testing::kU;
using kvsieve::testing::Misaligned;

namespace {

constexpr DType kKTypes[] = {DType::Q4_K, DType::Q5_K, DType::Q6_K};

struct KWeights {
  std::vector<uint8_t> storage;
  TensorView view;
  std::vector<float> deq;  // [rows, cols]
  KWeights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
    const size_t rb = dtype_row_bytes(t, cols);
    storage.assign(4 + size_t(rows) * rb, 0);  // 4 bytes off alignment, as in a file
    std::normal_distribution<float> nd(0.1f, 1.0f);
    std::vector<float> row(static_cast<size_t>(cols));
    deq.resize(size_t(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = nd(rng);
      quantize_row(t, row.data(), storage.data() + 4 + size_t(r) * rb, cols);
      dequantize_row(t, storage.data() + 4 + size_t(r) * rb, deq.data() + r * cols, cols);
    }
    view.name = "test.kquant";
    view.type = t;
    view.shape = {rows, cols};
    view.data = storage.data() + 4;
    view.nbytes = size_t(rows) * rb;
  }
  const uint8_t* row(int64_t r) const { return storage.data() + 4 + size_t(r) * dtype_row_bytes(view.type, view.cols()); }
};

bool int_target(const CpuKernels& k) {
  return std::string(k.target) == "AVX2" || std::string(k.target).rfind("AVX3", 0) == 0;
}
// x quantized to Q8_K: the dot form, or Q4_K's integer tiles.
bool dot_form(const CpuKernels& k, DType t, int64_t n) {
  return std::string(k.target) == "SCALAR" || n <= 8 || (t == DType::Q4_K && int_target(k));
}

void check_target(const CpuKernels& k, ThreadPool& pool, const KWeights& w, const float* x, int64_t n,
                  const float* bias) {
  const int64_t rows = w.view.rows(), cols = w.view.cols(), nb = cols / kQK_K;
  Misaligned y(n * rows);
  for (int64_t i = 0; i <= n * rows; ++i) y[i] = -999.0f;
  k.matmul(w.view, x, n, y.data(), pool, bias);
  const std::string what = std::string(k.target) + " " + std::string(dtype_name(w.view.type)) +
                           " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                           " n=" + std::to_string(n) + (bias ? " bias" : "") + " threads=" +
                           std::to_string(pool.size());
  if (dot_form(k, w.view.type, n)) {
    std::vector<BlockQ8_K> xq(size_t(n * nb));
    std::vector<float> xd(static_cast<size_t>(cols));
    for (int64_t i = 0; i < n; ++i) {
      quantize_row_q8_K(x + i * cols, xq.data() + i * nb, cols);
      dequantize_row(DType::Q8_K, xq.data() + i * nb, xd.data(), cols);
      for (int64_t r = 0; r < rows; ++r) {
        const float ref = dot_kquant_q8_K(w.view.type, w.row(r), xq.data() + i * nb, nb) + (bias ? bias[r] : 0.0f);
        double mag = bias ? std::fabs(bias[r]) : 0.0;
        for (int64_t c = 0; c < cols; ++c) mag += 4 * std::fabs(double(w.deq[size_t(r * cols + c)]) * xd[size_t(c)]);
        ASSERT_NEAR(y[i * rows + r], ref, (nb + 24) * kU * mag + 1e-30) << what << " i=" << i << " r=" << r;
        // The AVX-512 and AVX2 decode kernels of Q4_K and Q6_K add the exact
        // per-block integer sums in the reference's order: bit for bit the
        // reference.
        const std::string tn(k.target);
        if (n == 1 && (tn.rfind("AVX3", 0) == 0 || tn == "AVX2") && w.view.type != DType::Q5_K) {
          ASSERT_EQ(y[i * rows + r], ref) << what << " r=" << r;
        }
        // So do Q4_K's integer tiles.
        if (n > 20 && int_target(k) && w.view.type == DType::Q4_K) {
          ASSERT_EQ(y[i * rows + r], ref) << what << " r=" << r;
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

TEST(MatmulKQuant, EveryTypeTargetShapeAndThreadCount) {
  std::mt19937 rng(21);
  ThreadPool pool1(1), pool2(2);
  const auto targets = cpu_kernels_all();
  for (DType t : kKTypes) {
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{37, 256}, {19, 768}, {3, 512}, {9, 2048}, {5, 1792}, {4, 1280}}) {
      KWeights w(t, rows, cols, rng);
      std::vector<float> bias(static_cast<size_t>(rows));
      kvsieve::testing::fill_uniform(bias.data(), rows, rng);
      for (int64_t n : {1, 2, 3, 8, 29, 63}) {
        Misaligned x(n * cols);
        kvsieve::testing::fill_uniform(x.data(), n * cols, rng);
        for (const CpuKernels* k : targets)
          for (ThreadPool* pool : {&pool1, &pool2})
            for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())})
              check_target(*k, *pool, w, x.data(), n, b);
      }
    }
  }
}

// The dot form's activation quantization against the f32 product of the
// decoded weights: Q8_K's rounding is at most d/2 = max|x|/254 per value,
// so |y - W·x| <= Σ_c |w_c|·max|x_block|/254; a wrong scale, level or min is
// far outside that.
TEST(MatmulKQuant, DotFormIsCloseToTheF32Product) {
  std::mt19937 rng(22);
  ThreadPool pool(2);
  for (DType t : kKTypes) {
    KWeights w(t, 64, 1024, rng);
    std::vector<float> x(1024), y(64);
    kvsieve::testing::fill_uniform(x.data(), 1024, rng);
    cpu_kernels().matmul(w.view, x.data(), 1, y.data(), pool, nullptr);
    for (int64_t r = 0; r < 64; ++r) {
      double exact = 0, bound = 0;
      for (int64_t c = 0; c < 1024; ++c) {
        exact += double(w.deq[size_t(r * 1024 + c)]) * x[size_t(c)];
        bound += std::fabs(w.deq[size_t(r * 1024 + c)]) * (1.0 / 254) + 1e-6;
      }
      ASSERT_NEAR(y[size_t(r)], exact, bound) << dtype_name(t) << " row " << r;
    }
  }
}

// The SIMD decoders of the panel form give exactly core's values (bit for
// bit: d·sc·q is exact in f32 and the one rounding is the same), on every
// target, for random blocks and for the extremes of every field.
TEST(MatmulKQuant, DequantizeRowIsBitExactOnEveryTarget) {
  std::mt19937 rng(23);
  for (DType t : kKTypes) {
    const int64_t n = 4 * kQK_K;
    std::vector<uint8_t> raw(dtype_row_bytes(t, n));
    for (int rep = 0; rep < 20; ++rep) {
      for (auto& b : raw) b = uint8_t(rng());
      // Sane f16 scales (random bits can be inf/nan): d, dmin in the head of
      // Q4_K/Q5_K blocks, d at the end of Q6_K blocks.
      const size_t bb = dtype_block_bytes(t);
      for (int64_t blk = 0; blk < n / kQK_K; ++blk) {
        uint8_t* p = raw.data() + size_t(blk) * bb;
        const uint16_t h1 = f32_to_f16(std::ldexp(1.0f + float(rng() % 1000) / 1000, -int(rng() % 12)));
        const uint16_t h2 = f32_to_f16(std::ldexp(1.0f + float(rng() % 1000) / 1000, -int(rng() % 12)));
        if (t == DType::Q6_K) {
          std::memcpy(p + bb - 2, &h1, 2);
        } else {
          std::memcpy(p, &h1, 2);
          std::memcpy(p + 2, &h2, 2);
        }
      }
      std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      dequantize_row(t, raw.data(), ref.data(), n);
      for (const CpuKernels* k : cpu_kernels_all()) {
        k->dequantize_row(t, raw.data(), n, got.data());
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(got[size_t(i)], ref[size_t(i)]) << k->target << " " << dtype_name(t) << " value " << i;
      }
    }
  }
}
