// Q6_K x Q8_K matrix-vector kernel (layout in core/kquant.h), per Highway
// target; the driver and the integer dot are in kquant-inl.h.
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul_q6_k.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "backend/cpu/kquant-inl.h"
#include "backend/cpu/kquant_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// Chunks of sc[v/16]·(q - 32). Per half h and quarter t (values 128h + 32t +
// l): low bits from ql[64h + l (+32 for t odd)] (low nibble for t < 2, high
// for t >= 2), top bits (qh[32h + l] >> 2t) & 3. kScaled = false: q - 32
// alone (the dequantisation must round (d·sc)·q as core does).
template <bool kScaled>
struct VisitQ6K {
  using D16 = hn::CappedTag<int16_t, 16>;  // at most one 16-value scale group per vector
  template <class Fn>
  HWY_INLINE void operator()(const uint8_t* blk, kq::Unpacked* u, const Fn& fn) const {
    const auto* b = reinterpret_cast<const BlockQ6_K*>(blk);
    // d is the block's last two bytes: widen the pair ending there (the first
    // half is scales[14..15], discarded) so nothing past the block is read.
    float unused;
    kq::HalfPair(blk + sizeof(BlockQ6_K) - 4, &unused, &u->d);
    const D16 d16;
    const hn::Rebind<uint8_t, D16> d8;
    const size_t N = hn::Lanes(d16);
    const auto low4 = hn::Set(d16, 0xF), three = hn::Set(d16, 3), k32 = hn::Set(d16, 32);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b->ql + 64 * h;
      const uint8_t* qh = b->qh + 32 * h;
      for (size_t l = 0; l < 32; l += N) {
        const auto hb = hn::PromoteTo(d16, hn::LoadU(d8, qh + l));
        const auto l0 = hn::PromoteTo(d16, hn::LoadU(d8, ql + l));
        const auto l1 = hn::PromoteTo(d16, hn::LoadU(d8, ql + 32 + l));
        const decltype(l0) lows[4] = {hn::And(l0, low4), hn::And(l1, low4), hn::ShiftRight<4>(l0),
                                      hn::ShiftRight<4>(l1)};
        for (int t = 0; t < 4; ++t) {
          const auto top = hn::And(hn::ShiftRightSame(hb, 2 * t), three);
          const auto q = hn::Sub(hn::Or(lows[t], hn::ShiftLeft<4>(top)), k32);
          const size_t v = size_t(128 * h + 32 * t) + l;
          if constexpr (kScaled) {
            fn(v, hn::Mul(q, hn::Set(d16, int16_t(b->scales[v / 16]))));
          } else {
            fn(v, q);
          }
        }
      }
    }
  }
};

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// Decode (n == 1) with AVX-512BW byte products: the 6-bit levels q (0..63,
// unsigned) times the signed Q8_K values pairwise into int16 (vpmaddubsw, at
// most 2·63·127, no saturation), times the group scales into int32
// (vpmaddwd); the offset of 32 is taken off once per super-block as
// 32·Σ_g sc[g]·bsums[g]. The integer sum of each super-block is exact and the
// f32 accumulation is the reference's (dot_q6_K_q8_K), so y equals the scalar
// reference bit for bit.
//
// For half h a 64-byte load of ql with qh (and qh >> 2) beside it gives, as
// low nibbles, values 128h + 0..63 and, as high nibbles, 128h + 64..127: the
// Q8_K values in their own order.
//
// Blocks go in groups of up to four for the reductions: the four blocks'
// int32 partial sums are folded together (one 128-bit lane each) and the
// four terms (d·x.d)·isum formed in one vector before they are added to the
// row's sum one at a time, in block order.
struct ConstQ6K {
  __m512i m4, m3, m30, isum_idx;
  __m512i sidx[2][2];  // vpermw patterns, [half][part]: int16 lane i takes group 8h + 4·part + i/8
  ConstQ6K() {
    m4 = _mm512_set1_epi8(0x0F);
    m3 = _mm512_set1_epi8(0x03);
    m30 = _mm512_set1_epi8(0x30);
    isum_idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int h = 0; h < 2; ++h)
      for (int part = 0; part < 2; ++part) {
        alignas(64) int16_t v[32];
        for (int i = 0; i < 32; ++i) v[i] = int16_t(8 * h + 4 * part + i / 8);
        sidx[h][part] = _mm512_load_si512(v);
      }
  }
};

// Adds blocks q[0..G) of a row (against x[0..G)) to sum, the reference's order; G <= 4.
template <int G>
HWY_INLINE float GroupQ6K(const ConstQ6K& c, const BlockQ6_K* q, const BlockQ8_K* x, float sum) {
  __m512i acc[4];
  for (int k = 0; k < 4; ++k) {
    if (k >= G) {
      acc[k] = _mm512_setzero_si512();
      continue;
    }
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q[k].scales)));
    const __m512i sc = _mm512_castsi256_si512(sc16);
    __m512i a = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = _mm512_loadu_si512(q[k].ql + 64 * h);
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k].qh + 32 * h));
      const __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
      const __m512i lo = _mm512_or_si512(_mm512_and_si512(ql, c.m4),
                                         _mm512_slli_epi16(_mm512_and_si512(qh2, c.m3), 4));
      const __m512i hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), c.m4),
                                         _mm512_and_si512(qh2, c.m30));
      const __m512i plo = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(x[k].qs + 128 * h));
      const __m512i phi = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(x[k].qs + 128 * h + 64));
      a = _mm512_add_epi32(a, _mm512_madd_epi16(plo, _mm512_permutexvar_epi16(c.sidx[h][0], sc)));
      a = _mm512_add_epi32(a, _mm512_madd_epi16(phi, _mm512_permutexvar_epi16(c.sidx[h][1], sc)));
    }
    const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].bsums)));
    acc[k] = _mm512_sub_epi32(a, _mm512_slli_epi32(_mm512_zextsi256_si512(corr), 5));
  }
  // Lane k: block k's 16 partial sums folded to four, then to one (element 0).
  const __m512i x01 = _mm512_add_epi32(_mm512_shuffle_i64x2(acc[0], acc[1], 0x44),
                                       _mm512_shuffle_i64x2(acc[0], acc[1], 0xEE));
  const __m512i x23 = _mm512_add_epi32(_mm512_shuffle_i64x2(acc[2], acc[3], 0x44),
                                       _mm512_shuffle_i64x2(acc[2], acc[3], 0xEE));
  __m512i z = _mm512_add_epi32(_mm512_shuffle_i64x2(x01, x23, 0x88), _mm512_shuffle_i64x2(x01, x23, 0xDD));
  z = _mm512_add_epi32(z, _mm512_shuffle_epi32(z, _MM_PERM_BADC));
  z = _mm512_add_epi32(z, _mm512_shuffle_epi32(z, _MM_PERM_CDAB));
  const __m128i isum = _mm512_castsi512_si128(_mm512_permutexvar_epi32(c.isum_idx, z));
  // (d·x.d)·isum, each product rounded (no FMA contraction), as the reference.
  const __m128 d = _mm_cvtph_ps(_mm_setr_epi16(short(q[0].d), short(G > 1 ? q[1].d : 0), short(G > 2 ? q[2].d : 0),
                                               short(G > 3 ? q[3].d : 0), 0, 0, 0, 0));
  const __m128 xd = _mm_setr_ps(x[0].d, G > 1 ? x[1].d : 0.0f, G > 2 ? x[2].d : 0.0f, G > 3 ? x[3].d : 0.0f);
  const __m128 t = _mm_mul_ps(_mm_mul_ps(d, xd), _mm_cvtepi32_ps(isum));
  sum += _mm_cvtss_f32(t);
  if constexpr (G > 1) sum += _mm_cvtss_f32(_mm_shuffle_ps(t, t, 1));
  if constexpr (G > 2) sum += _mm_cvtss_f32(_mm_shuffle_ps(t, t, 2));
  if constexpr (G > 3) sum += _mm_cvtss_f32(_mm_shuffle_ps(t, t, 3));
  return sum;
}

HWY_NOINLINE void DotRowsQ6K1(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1,
                              const BlockQ8_K* x, size_t nb, float* y, const float* bias) {
  const ConstQ6K c;
  for (int64_t r = r0; r < r1; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(w + size_t(r) * row_bytes);
    float sum = 0;
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      kq::PrefetchAhead(blk + b, 4 * sizeof(BlockQ6_K));
      sum = GroupQ6K<4>(c, blk + b, x + b, sum);
    }
    switch (nb - b) {
      case 3: sum = GroupQ6K<3>(c, blk + b, x + b, sum); break;
      case 2: sum = GroupQ6K<2>(c, blk + b, x + b, sum); break;
      case 1: sum = GroupQ6K<1>(c, blk + b, x + b, sum); break;
      default: break;
    }
    y[size_t(r)] = sum + (bias ? bias[r] : 0.0f);
  }
}
#endif

#if HWY_TARGET == HWY_AVX2
// Decode (n == 1) with AVX2 byte products: the AVX-512 kernel's arithmetic
// (bit for bit the reference) at half the width. For half h and quarter t a
// 32-byte vector holds the levels of values 128h + 32t + 0..31 (low bits from
// ql[64h + 32(t & 1) + l], low or high nibble, top bits from qh[32h + l]),
// whose scale groups 8h + 2t and 8h + 2t + 1 are its two 128-bit lanes.
HWY_NOINLINE void DotRowsQ6K1(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1,
                              const BlockQ8_K* x, size_t nb, float* y, const float* bias) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
  // vpshufb patterns: group word 2t in the low lane, 2t + 1 in the high one.
  __m256i pat[4];
  for (int t = 0; t < 4; ++t)
    pat[t] = _mm256_setr_epi8(char(4 * t), char(4 * t + 1), char(4 * t), char(4 * t + 1), char(4 * t),
                              char(4 * t + 1), char(4 * t), char(4 * t + 1), char(4 * t), char(4 * t + 1),
                              char(4 * t), char(4 * t + 1), char(4 * t), char(4 * t + 1), char(4 * t),
                              char(4 * t + 1), char(4 * t + 2), char(4 * t + 3), char(4 * t + 2),
                              char(4 * t + 3), char(4 * t + 2), char(4 * t + 3), char(4 * t + 2),
                              char(4 * t + 3), char(4 * t + 2), char(4 * t + 3), char(4 * t + 2),
                              char(4 * t + 3), char(4 * t + 2), char(4 * t + 3), char(4 * t + 2),
                              char(4 * t + 3));
  for (int64_t r = r0; r < r1; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(w + size_t(r) * row_bytes);
    float sum = 0;
    for (size_t b = 0; b < nb; ++b) {
      const BlockQ6_K& q = blk[b];
      const BlockQ8_K& xb = x[b];
      kq::PrefetchAhead(&q, sizeof(BlockQ6_K));
      const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q.scales)));
      __m256i acc = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q.qh + 32 * h));
        const __m256i lv[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
            _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                            _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30))};
        const __m256i sch = h ? _mm256_permute2x128_si256(sc, sc, 0x11)  // constant immediates
                              : _mm256_permute2x128_si256(sc, sc, 0x00);
        for (int t = 0; t < 4; ++t) {
          const __m256i p = _mm256_maddubs_epi16(
              lv[t], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs + 128 * h + 32 * t)));
          acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, pat[t])));
        }
      }
      const __m256i corr = _mm256_madd_epi16(sc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums)));
      acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(corr, 5));
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      const int32_t isum = _mm_cvtsi128_si32(s4);
      // (d·x.d)·isum rounded before the sum (no FMA contraction), as the reference.
      sum += _mm_cvtss_f32(_mm_mul_ss(_mm_set_ss(_cvtsh_ss(q.d) * xb.d), _mm_set_ss(float(isum))));
    }
    y[size_t(r)] = sum + (bias ? bias[r] : 0.0f);
  }
}
#endif

}  // namespace

void DequantRowQ6K(const uint8_t* row, size_t K, float* out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int32_t, decltype(df)> d32;
  const size_t N = hn::Lanes(df);
  kq::Unpacked u;
  for (size_t b = 0; b < K / kQK_K; ++b) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(row + b * sizeof(BlockQ6_K));
    kq::Unpack(VisitQ6K<false>(), row + b * sizeof(BlockQ6_K), &u);
    for (size_t v = 0; v < size_t(kQK_K); v += N) {
      // (d·sc)·(q - 32), in core's order: d·sc is exact, the product rounds once.
      const auto ds = hn::Set(df, u.d * float(blk->scales[v / 16]));
      const auto q = hn::ConvertTo(df, hn::PromoteTo(d32, hn::LoadU(d16, u.ws + v)));
      hn::StoreU(hn::Mul(ds, q), df, out + b * kQK_K + v);
    }
  }
}

void DotRowsQ6K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
  if (n == 1) return DotRowsQ6K1(w, row_bytes, r0, r1, x, nb, y, bias);
#endif
  kq::DotRowsK<sizeof(BlockQ6_K), false>(
      VisitQ6K<true>(),
      [](const uint8_t* wr, const BlockQ8_K* xr, int64_t k) {
        return dot_q6_K_q8_K(reinterpret_cast<const BlockQ6_K*>(wr), xr, k);
      },
      w, row_bytes, r0, r1, x, n, nb, y, ys, bias);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
