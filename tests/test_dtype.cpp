#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"

using namespace kvsieve;

TEST(DType, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << "half bits " << h;
  }
}

TEST(DType, F16RoundsToNearestEven) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 2048)), 1.0f);  // tie -> even (1.0)
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 3.0f / 2048)), 1.0f + 2.0f / 1024);
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(70000.0f))));
  EXPECT_EQ(f16_to_f32(f32_to_f16(65504.0f)), 65504.0f);
}

TEST(DType, Bf16RoundTrip) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);  // tie -> even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(DType, Q4_1KeepsEachBlocksRangeInSixteenLevels) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.5f, 2.0f);  // off-centre: the minimum matters
  std::vector<float> x(256), y(256);
  std::vector<uint8_t> buf(256 / kQK * sizeof(BlockQ4_1));
  ASSERT_EQ(dtype_row_bytes(DType::Q4_1, 256), buf.size());
  for (auto& v : x) v = nd(rng);
  quantize_row(DType::Q4_1, x.data(), buf.data(), 256);
  dequantize_row(DType::Q4_1, buf.data(), y.data(), 256);
  for (int b = 0; b < 256 / kQK; ++b) {
    const float* xb = x.data() + b * kQK;
    const float lo = *std::min_element(xb, xb + kQK), hi = *std::max_element(xb, xb + kQK);
    // Half a step of (hi - lo) / 15, plus the f16 rounding of the scale (times
    // up to 15 levels) and of the minimum.
    const float step = (hi - lo) / 15;
    for (int j = 0; j < kQK; ++j)
      EXPECT_LE(std::fabs(xb[j] - y[b * kQK + j]),
                0.5f * step + 15 * step * 0x1p-11f + std::fabs(lo) * 0x1p-11f + 1e-6f)
          << "block " << b;
  }
  EXPECT_EQ(dtype_from_ggml(3), DType::Q4_1);
  EXPECT_EQ(dtype_from_name("q4_1"), DType::Q4_1);
}

TEST(DType, QuantizeErrorIsBounded) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(256), y(256);
  std::vector<uint8_t> buf(1024);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (auto& v : x) v = nd(rng);
    quantize_row(t, x.data(), buf.data(), 256);
    dequantize_row(t, buf.data(), y.data(), 256);
    for (int b = 0; b < 256 / kQK; ++b) {
      float amax = 0;
      for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[b * kQK + j]));
      // Q8_0 rounds to the nearest of 255 levels: half a step. Q4_0 maps the
      // largest magnitude to -8, so a value of opposite sign near it is clamped
      // at +7: up to a whole step.
      const float step = t == DType::Q8_0 ? amax / 127 * 0.5f : amax / 8;
      for (int j = 0; j < kQK; ++j)
        EXPECT_LE(std::fabs(x[b * kQK + j] - y[b * kQK + j]), step + 1e-3f * amax)
            << dtype_name(t) << " block " << b;
    }
  }
}
