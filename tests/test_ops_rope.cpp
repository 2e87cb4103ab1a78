// RoPE: frequencies (plain, linear, llama3, per-dim factors) against the
// formulas evaluated in double here, and the rotation on every SIMD target
// against a naive complex-number rotation, for both pairings.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <vector>

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/ops_ref.h"
#include "core/rope.h"
#include "model/model_config.h"
#include "core/error.h"
#include "test_ops_util.h"

using namespace kvsieve;
using kvsieve::testing::kU;

namespace {

// inv_freq is an f32 computation (as transformers): the f32 exponent 2i/d is
// off by up to u·e, which theta^e turns into ln(theta)·u relative (~13u for
// theta = 5e5), plus a few roundings; 3e-6 relative covers that with margin
// while a wrong rule (e.g. the smoothing weights swapped) is off by > 1e-2.
constexpr double kFreqTol = 3e-6;

double base_inv_freq(double theta, int64_t i, int64_t d) {
  return 1.0 / std::pow(theta, double(2 * i) / double(d));
}

}  // namespace

TEST(Rope, PlainFrequencies) {
  const auto f = RopeFreqs::make(64, 10000.0f);
  ASSERT_EQ(f.inv_freq.size(), 32u);
  EXPECT_EQ(f.inv_freq[0], 1.0f);
  for (int64_t i = 0; i < 32; ++i)
    EXPECT_NEAR(f.inv_freq[size_t(i)], base_inv_freq(10000, i, 64), kFreqTol * base_inv_freq(10000, i, 64));
}

TEST(Rope, LinearScalingDividesByFactor) {
  RopeScaling s;
  s.type = RopeScalingType::kLinear;
  s.factor = 4.0f;
  const auto f = RopeFreqs::make(128, 10000.0f, s);
  for (int64_t i = 0; i < 64; ++i) {
    const double want = base_inv_freq(10000, i, 128) / 4.0;
    EXPECT_NEAR(f.inv_freq[size_t(i)], want, kFreqTol * want) << i;
  }
}

TEST(Rope, Llama3ScalingFollowsMetasRule) {
  // Llama 3.1's parameters.
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  s.factor = 8.0f;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_max_position = 8192;
  const double theta = 500000.0;
  const int64_t d = 128;
  const auto f = RopeFreqs::make(d, float(theta), s);
  ASSERT_EQ(f.inv_freq.size(), size_t(d / 2));

  // Meta's apply_scaling, in double.
  const double low_wavelen = 8192.0 / 1.0, high_wavelen = 8192.0 / 4.0;
  int kept = 0, scaled = 0, smoothed = 0;
  for (int64_t i = 0; i < d / 2; ++i) {
    const double inv = base_inv_freq(theta, i, d);
    const double wavelen = 2 * std::numbers::pi / inv;
    double want;
    if (wavelen < high_wavelen) {
      want = inv;
      ++kept;
    } else if (wavelen > low_wavelen) {
      want = inv / 8.0;
      ++scaled;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * inv / 8.0 + smooth * inv;
      ++smoothed;
    }
    EXPECT_NEAR(f.inv_freq[size_t(i)], want, kFreqTol * want) << "i=" << i << " wavelen=" << wavelen;
  }
  // All three regimes are exercised by these parameters.
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);
}

TEST(Rope, FrequencyFactorsDivide) {
  std::vector<float> ff(32);
  for (size_t i = 0; i < ff.size(); ++i) ff[i] = 1.0f + 0.25f * float(i % 5);
  const auto plain = RopeFreqs::make(64, 10000.0f);
  const auto f = RopeFreqs::make(64, 10000.0f, {}, ff.data());
  for (size_t i = 0; i < ff.size(); ++i) EXPECT_EQ(f.inv_freq[i], plain.inv_freq[i] / ff[i]);
}

TEST(Rope, RejectsBadParameters) {
  EXPECT_THROW(RopeFreqs::make(63, 10000.0f), Error);
  EXPECT_THROW(RopeFreqs::make(0, 10000.0f), Error);
  EXPECT_THROW(RopeFreqs::make(64, -1.0f), Error);
  EXPECT_THROW(RopeFreqs::make(64, NAN), Error);
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  s.factor = 8.0f;
  s.low_freq_factor = 4.0f;
  s.high_freq_factor = 1.0f;  // must be above low_freq_factor
  EXPECT_THROW(RopeFreqs::make(64, 10000.0f, s), Error);
  s.type = RopeScalingType::kLinear;
  s.factor = 0.0f;
  EXPECT_THROW(RopeFreqs::make(64, 10000.0f, s), Error);
  std::vector<float> ff(32, 1.0f);
  ff[7] = 0.0f;
  EXPECT_THROW(RopeFreqs::make(64, 10000.0f, {}, ff.data()), Error);
}

TEST(Rope, ConfigHelperUsesModelParameters) {
  ModelConfig cfg;
  cfg.head_dim = 32;
  cfg.rope_theta = 1e6f;
  cfg.rope_scaling.type = RopeScalingType::kLinear;
  cfg.rope_scaling.factor = 2.0f;
  const auto f = rope_freqs_for(cfg);
  ASSERT_EQ(f.head_dim, 32);
  EXPECT_NEAR(f.inv_freq[5], base_inv_freq(1e6, 5, 32) / 2, kFreqTol * base_inv_freq(1e6, 5, 32));
}

TEST(Rope, CosSinUseTheF32Angle) {
  const auto f = RopeFreqs::make(64, 10000.0f);
  std::vector<float> c(32), s(32);
  for (int64_t pos : {0, 1, 7, 1000, 123457}) {
    rope_cos_sin(f, pos, c.data(), s.data());
    for (size_t i = 0; i < 32; ++i) {
      // The angle is the f32 product (as transformers), then cos/sin rounded once.
      const float angle = float(pos) * f.inv_freq[i];
      EXPECT_EQ(c[i], float(std::cos(double(angle))));
      EXPECT_EQ(s[i], float(std::sin(double(angle))));
      // ... which is the exact angle up to its f32 rounding, u·|angle|.
      const double exact = double(pos) * double(f.inv_freq[i]);
      EXPECT_NEAR(c[i], std::cos(exact), kU * std::fabs(exact) + 2 * kU);
      EXPECT_NEAR(s[i], std::sin(exact), kU * std::fabs(exact) + 2 * kU);
    }
  }
}

TEST(Rope, RotationMatchesComplexMultiplication) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (const CpuKernels* k : cpu_kernels_all()) {
    SCOPED_TRACE(k->target);
    // head dims below, at and above the vector widths, odd half sizes too.
    for (int64_t hd : {2, 6, 8, 16, 30, 32, 34, 64, 96, 128, 130}) {
      const auto f = RopeFreqs::make(hd, 10000.0f);
      const int64_t half = hd / 2, heads = 3;
      std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
      rope_cos_sin(f, 4321, c.data(), s.data());
      for (RopeStyle style : {RopeStyle::kInterleaved, RopeStyle::kNeox}) {
        kvsieve::testing::Misaligned x(heads * hd);
        for (int64_t i = 0; i < heads * hd; ++i) x[i] = u(rng);
        *x.guard(heads * hd) = 777.0f;
        std::vector<float> orig(x.data(), x.data() + heads * hd);
        k->apply_rope(x.data(), heads, hd, c.data(), s.data(), style);
        EXPECT_EQ(*x.guard(heads * hd), 777.0f);
        for (int64_t h = 0; h < heads; ++h) {
          for (int64_t i = 0; i < half; ++i) {
            const int64_t ia = style == RopeStyle::kInterleaved ? 2 * i : i;
            const int64_t ib = style == RopeStyle::kInterleaved ? 2 * i + 1 : i + half;
            const std::complex<double> z(orig[size_t(h * hd + ia)], orig[size_t(h * hd + ib)]);
            const std::complex<double> rot = z * std::complex<double>(c[size_t(i)], s[size_t(i)]);
            // Two products and a sum (or one FMA) per output: 2u·(|a·c| + |b·s|) <= 4u·|z|.
            const double tol = 4 * kU * std::abs(z) + 1e-30;
            ASSERT_NEAR(x[h * hd + ia], rot.real(), tol) << "hd=" << hd << " h=" << h << " i=" << i;
            ASSERT_NEAR(x[h * hd + ib], rot.imag(), tol) << "hd=" << hd << " h=" << h << " i=" << i;
          }
        }
        // And the scalar reference agrees with the same rotation.
        std::vector<float> r = orig;
        ref::apply_rope(r.data(), heads, hd, c.data(), s.data(), style);
        for (size_t i = 0; i < r.size(); ++i) ASSERT_NEAR(x[int64_t(i)], r[i], 2 * 4 * kU * 3.0);  // both within 4u·|z|, |z| < 3
      }
    }
  }
}

TEST(Rope, PublicApplyRopeRotatesByAngle) {
  // One pair turned by 90°: (1, 0) -> (0, 1), through the dispatched entry point.
  std::vector<float> x{1.0f, 0.0f}, c{0.0f}, s{1.0f};
  apply_rope(x.data(), 1, 2, c.data(), s.data(), RopeStyle::kInterleaved);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f);
}
