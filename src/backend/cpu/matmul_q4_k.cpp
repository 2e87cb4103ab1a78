// Q4_K x Q8_K matrix-vector kernel (layout in core/kquant.h), per Highway
// target; the driver and the integer dot are in kquant-inl.h.
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul_q4_k.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <cstring>
#include <vector>

#include "hwy/highway.h"
#include "backend/cpu/kquant-inl.h"
#include "backend/cpu/kquant_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// Chunks of the scaled levels: values 64c + l are sc[2c]·(qs[32c + l] & 15),
// values 64c + 32 + l are sc[2c+1]·(qs[32c + l] >> 4).
struct VisitQ4K {
  using D16 = hn::CappedTag<int16_t, 32>;  // at most one 32-value sub-block per vector
  template <class Fn>
  HWY_INLINE void operator()(const uint8_t* blk, kq::Unpacked* u, const Fn& fn) const {
    const auto* b = reinterpret_cast<const BlockQ4_K*>(blk);
    kq::HalfPair(blk, &u->d, &u->dmin);  // d, dmin: the block's first 4 bytes
    uint8_t sc[8], mn[8];
    unpack_scales_k4_all(b->scales, sc, mn);
    for (int j = 0; j < 8; ++j) u->mn[j] = int16_t(mn[j]);
    const D16 d16;
    const hn::Rebind<uint8_t, D16> d8;
    const size_t N = hn::Lanes(d16);
    const auto low4 = hn::Set(d16, 0xF);
    for (int c = 0; c < 4; ++c) {
      const auto s_lo = hn::Set(d16, int16_t(sc[2 * c])), s_hi = hn::Set(d16, int16_t(sc[2 * c + 1]));
      for (size_t l = 0; l < 32; l += N) {
        const auto raw = hn::PromoteTo(d16, hn::LoadU(d8, b->qs + 32 * c + l));
        fn(64 * c + l, hn::Mul(hn::And(raw, low4), s_lo));
        fn(64 * c + 32 + l, hn::Mul(hn::ShiftRight<4>(raw), s_hi));
      }
    }
  }
};

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Decode (n == 1) with AVX-512BW byte products: vpmaddubsw multiplies the
// unsigned 4-bit levels by the signed Q8_K values pairwise into int16 (at most
// 2·15·127, no saturation), vpmaddwd multiplies those by the sub-block scales
// (int32). Per super-block the integer sums Σ sc·q·q8 and Σ mn·bsum are exact
// and the f32 accumulation is the reference's (dot_q4_K_q8_K), term by term,
// so y equals the scalar reference bit for bit.
//
// A 64-byte load of qs holds, as low nibbles, values 128h + 0..31 and
// 128h + 64..95 and, as high nibbles, 128h + 32..63 and 128h + 96..127; the
// Q8_K values are copied once per call into that order (xq), and the pairs of
// bsums into sub-block sums (xs).
HWY_NOINLINE void DotRowsQ4K1(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1,
                              const BlockQ8_K* x, size_t nb, float* y, const float* bias) {
  static thread_local std::vector<int8_t> xq;
  static thread_local std::vector<int16_t> xs;
  xq.resize(nb * kQK_K);
  xs.resize(nb * 8);
  for (size_t b = 0; b < nb; ++b) {
    int8_t* dst = xq.data() + b * kQK_K;
    for (int h = 0; h < 2; ++h) {
      const int8_t* src = x[b].qs + 128 * h;
      std::memcpy(dst + 128 * h, src, 32);
      std::memcpy(dst + 128 * h + 32, src + 64, 32);
      std::memcpy(dst + 128 * h + 64, src + 32, 32);
      std::memcpy(dst + 128 * h + 96, src + 96, 32);
    }
    for (int j = 0; j < 8; ++j) xs[b * 8 + j] = int16_t(x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  // int16 lane i of the scale vector: sub-block 4h + (0 or 2) for the low
  // nibbles, 4h + (1 or 3) for the high ones, lanes 16..31 the second.
  auto idx = [](int a, int b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(short(a))),
                              _mm256_set1_epi16(short(b)), 1);
  };
  const __m512i ilo0 = idx(0, 2), ihi0 = idx(1, 3), ilo1 = idx(4, 6), ihi1 = idx(5, 7);
  for (int64_t r = r0; r < r1; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ4_K*>(w + size_t(r) * row_bytes);
    float sum = 0;
    for (size_t b = 0; b < nb; ++b) {
      const BlockQ4_K& q = blk[b];
      uint32_t w0, w1, w2;
      std::memcpy(&w0, q.scales, 4);
      std::memcpy(&w1, q.scales + 4, 4);
      std::memcpy(&w2, q.scales + 8, 4);
      const uint32_t lo = w0 & 0x3f3f3f3fu, mlo = w1 & 0x3f3f3f3fu;
      const uint32_t hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
      const uint32_t mhi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
      const __m512i sc = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(hi), int(lo))));
      const __m128i mn = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(mhi), int(mlo)));
      const int8_t* xb = xq.data() + b * kQK_K;
      const __m512i v0 = _mm512_loadu_si512(q.qs), v1 = _mm512_loadu_si512(q.qs + 64);
      const __m512i p0 = _mm512_maddubs_epi16(_mm512_and_si512(v0, m4), _mm512_loadu_si512(xb));
      const __m512i p1 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v0, 4), m4),
                                              _mm512_loadu_si512(xb + 64));
      const __m512i p2 = _mm512_maddubs_epi16(_mm512_and_si512(v1, m4), _mm512_loadu_si512(xb + 128));
      const __m512i p3 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v1, 4), m4),
                                              _mm512_loadu_si512(xb + 192));
      const __m512i s01 = _mm512_add_epi32(_mm512_madd_epi16(p0, _mm512_permutexvar_epi16(ilo0, sc)),
                                           _mm512_madd_epi16(p1, _mm512_permutexvar_epi16(ihi0, sc)));
      const __m512i s23 = _mm512_add_epi32(_mm512_madd_epi16(p2, _mm512_permutexvar_epi16(ilo1, sc)),
                                           _mm512_madd_epi16(p3, _mm512_permutexvar_epi16(ihi1, sc)));
      const int32_t isum = _mm512_reduce_add_epi32(_mm512_add_epi32(s01, s23));
      __m128i m = _mm_madd_epi16(mn, _mm_loadu_si128(reinterpret_cast<const __m128i*>(xs.data() + b * 8)));
      m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0x4E));
      m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 0xB1));
      const int32_t msum = _mm_cvtsi128_si32(m);
      const float d = _cvtsh_ss(q.d) * x[b].d, dmin = _cvtsh_ss(q.dmin) * x[b].d;
      // sum += d·isum - dmin·msum, each product rounded (no FMA contraction,
      // as the reference compiled without FMA).
      const __m128 t = _mm_sub_ss(_mm_mul_ss(_mm_set_ss(d), _mm_set_ss(float(isum))),
                                  _mm_mul_ss(_mm_set_ss(dmin), _mm_set_ss(float(msum))));
      sum += _mm_cvtss_f32(t);
    }
    y[size_t(r)] = sum + (bias ? bias[r] : 0.0f);
  }
}
#endif

}  // namespace

void DequantRowQ4K(const uint8_t* row, size_t K, float* out) {
  kq::Unpacked u;
  for (size_t b = 0; b < K / kQK_K; ++b) {
    kq::Unpack(VisitQ4K(), row + b * sizeof(BlockQ4_K), &u);
    kq::StoreQ45(u, out + b * kQK_K);
  }
}

void DotRowsQ4K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if (n == 1) return DotRowsQ4K1(w, row_bytes, r0, r1, x, nb, y, bias);
#endif
  kq::DotRowsK<sizeof(BlockQ4_K), true>(
      VisitQ4K(),
      [](const uint8_t* wr, const BlockQ8_K* xr, int64_t k) {
        return dot_q4_K_q8_K(reinterpret_cast<const BlockQ4_K*>(wr), xr, k);
      },
      w, row_bytes, r0, r1, x, n, nb, y, ys, bias);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
