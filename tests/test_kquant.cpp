// K-quants in core: the byte layouts (blocks built by hand from GGML's
// layout, decoded by dequantize_row), the quantizers' error, Q8_K, and the
// scalar reference dot products against f64 sums of the decoded values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/kquant.h"

using namespace kvsieve;

namespace {

// Scales and mins of 8 sub-blocks, some >= 16 so the top two bits matter.
constexpr uint8_t kSc[8] = {1, 17, 33, 63, 5, 40, 20, 62};
constexpr uint8_t kMn[8] = {0, 3, 63, 16, 31, 1, 48, 2};

// The 12 scale bytes written from GGML's description, independently of
// pack_scales_k4: j < 4 in bytes j (scale) and j + 4 (min) with the top two
// bits of j + 4's in bits 6..7; j >= 4's low nibbles in byte j + 4.
void write_scales(uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; ++j) {
    s[j] = kSc[j] | uint8_t((kSc[j + 4] >> 4) << 6);
    s[j + 4] = kMn[j] | uint8_t((kMn[j + 4] >> 4) << 6);
    s[j + 8] = uint8_t((kSc[j + 4] & 15) | ((kMn[j + 4] & 15) << 4));
  }
}

}  // namespace

TEST(KQuant, TypesAndSizes) {
  EXPECT_EQ(dtype_from_ggml(12), DType::Q4_K);
  EXPECT_EQ(dtype_from_ggml(13), DType::Q5_K);
  EXPECT_EQ(dtype_from_ggml(14), DType::Q6_K);
  EXPECT_FALSE(dtype_from_ggml(15).has_value());  // Q8_K: not a weight type
  EXPECT_FALSE(dtype_from_ggml(10).has_value());  // Q2_K: not supported
  EXPECT_EQ(dtype_from_name("q4_k"), DType::Q4_K);
  EXPECT_EQ(dtype_from_name("Q6_K"), DType::Q6_K);
  EXPECT_FALSE(dtype_from_name("q8_k").has_value());
  EXPECT_EQ(dtype_block_size(DType::Q5_K), 256);
  EXPECT_EQ(dtype_row_bytes(DType::Q4_K, 512), 288u);
  EXPECT_EQ(dtype_row_bytes(DType::Q5_K, 256), 176u);
  EXPECT_EQ(dtype_row_bytes(DType::Q6_K, 768), 630u);
}

TEST(KQuant, ScalePackingRoundTrips) {
  std::mt19937 rng(3);
  for (int it = 0; it < 200; ++it) {
    uint8_t sc[8], mn[8], packed[12];
    for (int j = 0; j < 8; ++j) sc[j] = uint8_t(rng() % 64), mn[j] = uint8_t(rng() % 64);
    pack_scales_k4(sc, mn, packed);
    uint8_t sc_all[8], mn_all[8];
    unpack_scales_k4_all(packed, sc_all, mn_all);
    for (int j = 0; j < 8; ++j) {
      ASSERT_EQ(sc_all[j], sc[j]) << j;
      ASSERT_EQ(mn_all[j], mn[j]) << j;
      int s, m;
      unpack_scales_k4(packed, j, &s, &m);
      ASSERT_EQ(s, sc[j]) << j;
      ASSERT_EQ(m, mn[j]) << j;
    }
  }
  uint8_t mine[12], theirs[12];
  pack_scales_k4(kSc, kMn, mine);
  write_scales(theirs);
  EXPECT_EQ(std::memcmp(mine, theirs, 12), 0);
}

TEST(KQuant, Q4KDecodesAKnownBlock) {
  BlockQ4_K b;
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  write_scales(b.scales);
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t(i * 7 + 3);
  float y[256];
  dequantize_row(DType::Q4_K, &b, y, 256);
  for (int v = 0; v < 256; ++v) {
    const int c = v / 64, l = v % 64, j = v / 32;
    const int q = l < 32 ? (b.qs[32 * c + l] & 15) : (b.qs[32 * c + l - 32] >> 4);
    ASSERT_EQ(y[v], 0.5f * kSc[j] * q - 0.25f * kMn[j]) << "value " << v;
  }
}

TEST(KQuant, Q5KDecodesAKnownBlock) {
  BlockQ5_K b;
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.25f);
  write_scales(b.scales);
  for (int i = 0; i < 128; ++i) b.qs[i] = uint8_t(i * 11 + 5);
  for (int i = 0; i < 32; ++i) b.qh[i] = uint8_t(i * 37 + 1);
  float y[256];
  dequantize_row(DType::Q5_K, &b, y, 256);
  for (int v = 0; v < 256; ++v) {
    const int c = v / 64, l = v % 64, j = v / 32;
    const int lo = l < 32 ? (b.qs[32 * c + l] & 15) : (b.qs[32 * c + l - 32] >> 4);
    const int hi = (b.qh[l % 32] >> (2 * c + (l < 32 ? 0 : 1))) & 1;
    ASSERT_EQ(y[v], 0.5f * kSc[j] * (lo + 16 * hi) - 0.25f * kMn[j]) << "value " << v;
  }
}

TEST(KQuant, Q6KDecodesAKnownBlock) {
  BlockQ6_K b;
  b.d = f32_to_f16(0.5f);
  for (int g = 0; g < 16; ++g) b.scales[g] = int8_t(g * 17 - 128 + (g == 0));  // -127 .. 127
  for (int i = 0; i < 128; ++i) b.ql[i] = uint8_t(i * 13 + 7);
  for (int i = 0; i < 64; ++i) b.qh[i] = uint8_t(i * 29 + 3);
  float y[256];
  dequantize_row(DType::Q6_K, &b, y, 256);
  for (int v = 0; v < 256; ++v) {
    // GGML: in half h, value l + 32t takes ql[l + 32(t&1)] (low nibble for
    // t < 2) and bits 2t..2t+1 of qh[l].
    const int h = v / 128, t = (v % 128) / 32, l = v % 32;
    const uint8_t qlb = b.ql[64 * h + l + 32 * (t & 1)];
    const int lo = t < 2 ? (qlb & 15) : (qlb >> 4);
    const int top = (b.qh[32 * h + l] >> (2 * t)) & 3;
    ASSERT_EQ(y[v], 0.5f * float(b.scales[v / 16]) * float((lo | (top << 4)) - 32)) << "value " << v;
  }
}

// Relative RMS error of quantize -> dequantize on Gaussian rows. Bounds: about
// half again the measured values (Q4_K 0.074, Q5_K 0.036, Q6_K 0.018, Q4_0
// 0.10 at these sizes); a wrong layout or scale is off by O(1).
TEST(KQuant, QuantizeErrorIsSmallAndOrdered) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.3f, 1.0f);
  const int64_t n = 256 * 64;
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  auto rel_rms = [&](DType t) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, n));
    quantize_row(t, x.data(), buf.data(), n);
    dequantize_row(t, buf.data(), y.data(), n);
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; ++i) e += double(y[i] - x[i]) * (y[i] - x[i]), s += double(x[i]) * x[i];
    return std::sqrt(e / s);
  };
  const double q4k = rel_rms(DType::Q4_K), q5k = rel_rms(DType::Q5_K), q6k = rel_rms(DType::Q6_K);
  const double q40 = rel_rms(DType::Q4_0);
  std::printf("relative RMS error: Q4_K %.4f Q5_K %.4f Q6_K %.4f (Q4_0 %.4f)\n", q4k, q5k, q6k, q40);
  EXPECT_LT(q4k, 0.11);
  EXPECT_LT(q5k, 0.055);
  EXPECT_LT(q6k, 0.027);
  EXPECT_LT(q4k, q40);
  EXPECT_LT(q5k, q4k);
  EXPECT_LT(q6k, q5k);
}

TEST(KQuant, QuantizeHandlesZeroAndConstantBlocks) {
  std::vector<float> x(512, 0.0f), y(512);
  for (int i = 256; i < 512; ++i) x[size_t(i)] = -1.5f;  // a constant negative block
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, 512));
    quantize_row(t, x.data(), buf.data(), 512);
    dequantize_row(t, buf.data(), y.data(), 512);
    for (int i = 0; i < 512; ++i) {
      ASSERT_TRUE(std::isfinite(y[size_t(i)])) << dtype_name(t);
      ASSERT_NEAR(y[size_t(i)], x[size_t(i)], 1.5 * 0x1p-9) << dtype_name(t) << " " << i;  // f16 scale rounding
    }
  }
}

TEST(KQuant, Q8KValuesAndGroupSums) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-3, 3);
  std::vector<float> x(512);
  for (auto& v : x) v = u(rng);
  x[17] = 0;
  std::vector<BlockQ8_K> q(2);
  quantize_row_q8_K(x.data(), q.data(), 512);
  for (int b = 0; b < 2; ++b) {
    for (int g = 0; g < 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[size_t(b)].qs[16 * g + l];
      EXPECT_EQ(q[size_t(b)].bsums[g], s);
    }
    for (int v = 0; v < 256; ++v) {
      EXPECT_LE(std::abs(int(q[size_t(b)].qs[v])), 127);
      EXPECT_LE(std::fabs(q[size_t(b)].d * q[size_t(b)].qs[v] - x[size_t(256 * b + v)]), 0.5001f * q[size_t(b)].d);
    }
  }
}

// The reference dots keep integer sums exact per block, so against an f64
// sum of the decoded products they differ only by f32 rounding: a few
// roundings per block of terms of size |d·isum| plus the running sum
// (bound (nb + 4)·u·Σ_blocks(|d·isum| + |dmin·msum|), taken <= (nb + 4)·u·4·Σ|w·x|).
TEST(KQuant, ReferenceDotsMatchDecodedSums) {
  std::mt19937 rng(6);
  std::normal_distribution<float> nd;
  const int64_t nb = 6, n = nb * 256;
  std::vector<float> w(static_cast<size_t>(n)), x(static_cast<size_t>(n)), wd(static_cast<size_t>(n)), xd(static_cast<size_t>(n));
  for (auto& v : w) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  std::vector<BlockQ8_K> xq(static_cast<size_t>(nb));
  quantize_row_q8_K(x.data(), xq.data(), n);
  dequantize_row(DType::Q8_K, xq.data(), xd.data(), n);
  for (DType t : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::vector<uint8_t> buf(dtype_row_bytes(t, n));
    quantize_row(t, w.data(), buf.data(), n);
    dequantize_row(t, buf.data(), wd.data(), n);
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) exact += double(wd[size_t(i)]) * xd[size_t(i)], mag += std::fabs(double(wd[size_t(i)]) * xd[size_t(i)]);
    const float got = dot_kquant_q8_K(t, buf.data(), xq.data(), nb);
    EXPECT_NEAR(got, exact, (nb + 4) * 0x1p-24 * 4 * mag + 1e-6) << dtype_name(t);
    // And against the unquantized product: the two quantizations' error, a
    // few percent of the magnitude (a wrong layout would be off by ~mag).
    double f = 0;
    for (int64_t i = 0; i < n; ++i) f += double(w[size_t(i)]) * x[size_t(i)];
    EXPECT_NEAR(got, f, 0.05 * mag) << dtype_name(t);
  }
}
