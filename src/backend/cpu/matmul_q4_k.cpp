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

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
struct XQ4K {
  std::vector<int8_t> q;     // [nb][256] Q8_K values in the qs load order (AVX-512 only)
  std::vector<int16_t> s;    // [nb + 4][8] bsums[2j] + bsums[2j + 1] (4 blocks of padding)
  std::vector<float> d4;     // [nb + 4][4] x.d repeated
};

template <bool kReorder>
HWY_INLINE void PrepareQ4K(const BlockQ8_K* x, size_t nb, XQ4K* p) {
  if constexpr (kReorder) p->q.resize(nb * kQK_K);
  p->s.assign((nb + 4) * 8, 0);
  p->d4.assign((nb + 4) * 4, 0.0f);
  for (size_t b = 0; b < nb; ++b) {
    if constexpr (kReorder) {
      int8_t* dst = p->q.data() + b * kQK_K;
      for (int h = 0; h < 2; ++h) {
        const int8_t* src = x[b].qs + 128 * h;
        std::memcpy(dst + 128 * h, src, 32);
        std::memcpy(dst + 128 * h + 32, src + 64, 32);
        std::memcpy(dst + 128 * h + 64, src + 32, 32);
        std::memcpy(dst + 128 * h + 96, src + 96, 32);
      }
    }
    for (int j = 0; j < 8; ++j) p->s[b * 8 + j] = int16_t(x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
    for (int i = 0; i < 4; ++i) p->d4[b * 4 + i] = x[b].d;
  }
}

// Head bytes (per block, 16): 0..3 d, dmin; 4 + i scales byte i. The scale
// unpack below gives bytes 0..7 the scales sc[0..7], 8..15 the mins mn[0..7]
// (see unpack_scales_k4): low bits from kPickA (masked by kLow6, mins 4..7
// shifted down by 4), the top two bits of sc/mn[4..7] from kPickB's bits 6..7.
alignas(16) constexpr int8_t kPickA[16] = {4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15};
alignas(16) constexpr int8_t kPickB[16] = {-128, -128, -128, -128, 4, 5, 6, 7, -128, -128, -128, -128, 8, 9, 10, 11};
alignas(16) constexpr int8_t kLow6[16] = {63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15};
alignas(16) constexpr int8_t kMinWords[16] = {8, -128, 9, -128, 10, -128, 11, -128, 12, -128, 13, -128, 14, -128, 15, -128};
#endif

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
// Q8_K values are copied once per call into that order (xq), the pairs of
// bsums into sub-block sums (xs) and x.d four times per block (xd4).
//
// Blocks go in groups of up to four, one per 128-bit lane for what is not
// per value: the four 16-byte heads (d, dmin, 12 scale bytes) are unpacked
// together (vpshufb), the four integer sums and the four min sums reduced
// together, and the four terms d·isum - dmin·msum computed in one vector
// before they are added to the row's sum one at a time, in block order.

// The per-lane byte pattern c[0..15] repeated in the four 128-bit lanes.
HWY_INLINE __m512i Lanes16(const int8_t* c) {
  return _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
}

struct ConstQ4K {
  __m512i m4, m30, sc_lo6, pick_a, pick_b, mn_words, half_idx;
  __m512i s[4];  // vpshufb patterns: sub-block scale words for the products p0..p3
  ConstQ4K() {
    m4 = _mm512_set1_epi8(0x0F);
    m30 = _mm512_set1_epi8(0x30);
    pick_a = Lanes16(kPickA);
    pick_b = Lanes16(kPickB);
    sc_lo6 = Lanes16(kLow6);
    mn_words = Lanes16(kMinWords);
    half_idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    // p0 (low nibbles of qs[0..63]): sub-blocks 0 (lanes 0-1) and 2 (2-3);
    // p1 the high nibbles: 1 and 3; p2, p3 (qs[64..127]): 4/6 and 5/7.
    const int first[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
    for (int i = 0; i < 4; ++i) {
      const __m256i lo = _mm256_set1_epi16(short(first[i][0] | 0x8000));
      const __m256i hi = _mm256_set1_epi16(short(first[i][1] | 0x8000));
      s[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
  }
};

// Adds blocks q[0..G) of a row to sum (the reference's order), G <= 4.
template <int G>
HWY_INLINE float GroupQ4K(const ConstQ4K& c, const BlockQ4_K* q, const int8_t* xq, const int16_t* xs,
                          const float* xd4, float sum) {
  __m512i head = _mm512_zextsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  if constexpr (G > 1) head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 1)), 1);
  if constexpr (G > 2) head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 2)), 2);
  if constexpr (G > 3) head = _mm512_inserti32x4(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 3)), 3);
  // Scales and mins of lane k's block, bytes 0..7 and 8..15 of lane k.
  const __m512i a = _mm512_shuffle_epi8(head, c.pick_a);
  const __m512i b = _mm512_shuffle_epi8(head, c.pick_b);
  const __m512i low = _mm512_mask_blend_epi8(__mmask64(0xF000F000F000F000ull), a, _mm512_srli_epi16(a, 4));
  const __m512i scmn = _mm512_ternarylogic_epi32(_mm512_and_si512(low, c.sc_lo6), _mm512_srli_epi16(b, 2),
                                                 c.m30, 0xF8);  // A | (B & C)
  __m512i acc[4];
  for (int k = 0; k < 4; ++k) {
    if (k >= G) {
      acc[k] = _mm512_setzero_si512();
      continue;
    }
    // Lane k of scmn in every lane. The immediate must be a constant where
    // the loop is not unrolled (the sanitizer build's -O1).
    const __m512i sck = k == 0   ? _mm512_shuffle_i32x4(scmn, scmn, 0x00)
                        : k == 1 ? _mm512_shuffle_i32x4(scmn, scmn, 0x55)
                        : k == 2 ? _mm512_shuffle_i32x4(scmn, scmn, 0xAA)
                                 : _mm512_shuffle_i32x4(scmn, scmn, 0xFF);
    const int8_t* xb = xq + k * kQK_K;
    const __m512i v0 = _mm512_loadu_si512(q[k].qs), v1 = _mm512_loadu_si512(q[k].qs + 64);
    const __m512i p0 = _mm512_maddubs_epi16(_mm512_and_si512(v0, c.m4), _mm512_loadu_si512(xb));
    const __m512i p1 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v0, 4), c.m4),
                                            _mm512_loadu_si512(xb + 64));
    const __m512i p2 = _mm512_maddubs_epi16(_mm512_and_si512(v1, c.m4), _mm512_loadu_si512(xb + 128));
    const __m512i p3 = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(v1, 4), c.m4),
                                            _mm512_loadu_si512(xb + 192));
    const __m512i s01 = _mm512_add_epi32(_mm512_madd_epi16(p0, _mm512_shuffle_epi8(sck, c.s[0])),
                                         _mm512_madd_epi16(p1, _mm512_shuffle_epi8(sck, c.s[1])));
    const __m512i s23 = _mm512_add_epi32(_mm512_madd_epi16(p2, _mm512_shuffle_epi8(sck, c.s[2])),
                                         _mm512_madd_epi16(p3, _mm512_shuffle_epi8(sck, c.s[3])));
    acc[k] = _mm512_add_epi32(s01, s23);
  }
  // Lane k: the 16 int32 partial sums of block k, folded to four.
  const __m512i x01 = _mm512_add_epi32(_mm512_shuffle_i64x2(acc[0], acc[1], 0x44),
                                       _mm512_shuffle_i64x2(acc[0], acc[1], 0xEE));
  const __m512i x23 = _mm512_add_epi32(_mm512_shuffle_i64x2(acc[2], acc[3], 0x44),
                                       _mm512_shuffle_i64x2(acc[2], acc[3], 0xEE));
  const __m512i z = _mm512_add_epi32(_mm512_shuffle_i64x2(x01, x23, 0x88), _mm512_shuffle_i64x2(x01, x23, 0xDD));
  // Lane k: Σ mn·(bsum pairs) of block k in four int32.
  const __m512i m = _mm512_madd_epi16(_mm512_shuffle_epi8(scmn, c.mn_words), _mm512_loadu_si512(xs));
  // Lane k: (isum, msum, isum, msum).
  __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi32(z, m), _mm512_unpackhi_epi32(z, m));
  r = _mm512_add_epi32(r, _mm512_shuffle_epi32(r, _MM_PERM_BADC));
  // Lane k: (d·x.d, dmin·x.d, ...): the heads' f16 pairs widened, times x.d.
  const __m512 dd = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi64_epi32(head)), _mm512_loadu_ps(xd4));
  const __m512 prod = _mm512_mul_ps(_mm512_cvtepi32_ps(r), dd);
  // Lane k element 0: d·isum - dmin·msum, each product rounded (as the
  // reference; no FMA contraction in this ISO C++ build).
  const __m512 t = _mm512_sub_ps(prod, _mm512_movehdup_ps(prod));
  const __m128 t4 = _mm512_castps512_ps128(_mm512_permutexvar_ps(c.half_idx, t));
  sum += _mm_cvtss_f32(t4);
  if constexpr (G > 1) sum += _mm_cvtss_f32(_mm_shuffle_ps(t4, t4, 1));
  if constexpr (G > 2) sum += _mm_cvtss_f32(_mm_shuffle_ps(t4, t4, 2));
  if constexpr (G > 3) sum += _mm_cvtss_f32(_mm_shuffle_ps(t4, t4, 3));
  return sum;
}

HWY_NOINLINE void DotRowsQ4K1(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1,
                              const BlockQ8_K* x, size_t nb, float* y, const float* bias) {
  static thread_local XQ4K xp;
  PrepareQ4K<true>(x, nb, &xp);
  const ConstQ4K c;
  const int8_t* xq = xp.q.data();
  const int16_t* xs = xp.s.data();
  const float* xd4 = xp.d4.data();
  for (int64_t r = r0; r < r1; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ4_K*>(w + size_t(r) * row_bytes);
    float sum = 0;
    size_t b = 0;
    for (; b + 4 <= nb; b += 4) {
      kq::PrefetchAhead(blk + b, 4 * sizeof(BlockQ4_K));
      sum = GroupQ4K<4>(c, blk + b, xq + b * kQK_K, xs + b * 8, xd4 + b * 4, sum);
    }
    switch (nb - b) {
      case 3: sum = GroupQ4K<3>(c, blk + b, xq + b * kQK_K, xs + b * 8, xd4 + b * 4, sum); break;
      case 2: sum = GroupQ4K<2>(c, blk + b, xq + b * kQK_K, xs + b * 8, xd4 + b * 4, sum); break;
      case 1: sum = GroupQ4K<1>(c, blk + b, xq + b * kQK_K, xs + b * 8, xd4 + b * 4, sum); break;
      default: break;
    }
    y[size_t(r)] = sum + (bias ? bias[r] : 0.0f);
  }
}
#endif

#if HWY_TARGET == HWY_AVX2
// Decode (n == 1) with AVX2 byte products, as the AVX-512 kernel above (the
// same exact integer sums, the same f32 terms in the same order: bit for bit
// the reference) at half the width: a 32-byte load of qs holds values
// 64i + 0..31 as low nibbles and 64i + 32..63 as high ones, so the Q8_K
// values are used in their own order; blocks go in pairs, one per 128-bit
// lane, for the heads, the reductions and the f32 terms.
struct ConstQ4K2 {
  __m256i m4, m30, sc_lo6, pick_a, pick_b, mn_words, half_idx;
  __m256i s[8];  // vpshufb patterns: scale byte j widened to every word
  ConstQ4K2() {
    m4 = _mm256_set1_epi8(0x0F);
    m30 = _mm256_set1_epi8(0x30);
    pick_a = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kPickA)));
    pick_b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kPickB)));
    sc_lo6 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kLow6)));
    mn_words = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kMinWords)));
    half_idx = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 0, 0);
    for (int j = 0; j < 8; ++j) s[j] = _mm256_set1_epi16(short(j | 0x8000));
  }
};

// Adds blocks q[0..G) of a row to sum (the reference's order), G <= 2.
template <int G>
HWY_INLINE float GroupQ4K2(const ConstQ4K2& c, const BlockQ4_K* q, const BlockQ8_K* x, const int16_t* xs,
                           const float* xd4, float sum) {
  __m256i head = _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
  if constexpr (G > 1) head = _mm256_inserti128_si256(head, _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 1)), 1);
  // Scales and mins of lane k's block, bytes 0..7 and 8..15 of lane k.
  const __m256i a = _mm256_shuffle_epi8(head, c.pick_a);
  const __m256i b = _mm256_shuffle_epi8(head, c.pick_b);
  const __m256i low = _mm256_blend_epi32(a, _mm256_srli_epi16(a, 4), 0x88);  // dword 3 of each lane
  const __m256i scmn = _mm256_or_si256(_mm256_and_si256(low, c.sc_lo6),
                                       _mm256_and_si256(_mm256_srli_epi16(b, 2), c.m30));
  __m256i acc[2];
  for (int k = 0; k < 2; ++k) {
    if (k >= G) {
      acc[k] = _mm256_setzero_si256();
      continue;
    }
    const __m256i sck = k ? _mm256_permute2x128_si256(scmn, scmn, 0x11)  // constant immediates
                          : _mm256_permute2x128_si256(scmn, scmn, 0x00);
    const int8_t* xb = x[k].qs;
    __m256i s = _mm256_setzero_si256();
    for (int i = 0; i < 4; ++i) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[k].qs + 32 * i));
      const __m256i plo = _mm256_maddubs_epi16(
          _mm256_and_si256(v, c.m4), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 64 * i)));
      const __m256i phi = _mm256_maddubs_epi16(
          _mm256_and_si256(_mm256_srli_epi16(v, 4), c.m4),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 64 * i + 32)));
      s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(plo, _mm256_shuffle_epi8(sck, c.s[2 * i])),
                                               _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sck, c.s[2 * i + 1]))));
    }
    acc[k] = s;
  }
  // Lane k: the 8 int32 partial sums of block k folded to four; the min sums.
  const __m256i z = _mm256_add_epi32(_mm256_permute2x128_si256(acc[0], acc[1], 0x20),
                                     _mm256_permute2x128_si256(acc[0], acc[1], 0x31));
  const __m256i m = _mm256_madd_epi16(_mm256_shuffle_epi8(scmn, c.mn_words),
                                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs)));
  // Lane k: (isum, msum, isum, msum).
  __m256i r = _mm256_add_epi32(_mm256_unpacklo_epi32(z, m), _mm256_unpackhi_epi32(z, m));
  r = _mm256_add_epi32(r, _mm256_shuffle_epi32(r, 0x4E));
  // Lane k: (d·x.d, dmin·x.d, ...), then d·isum - dmin·msum in element 0.
  const __m128i halves = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(head, c.half_idx));
  const __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(halves), _mm256_loadu_ps(xd4));
  const __m256 prod = _mm256_mul_ps(_mm256_cvtepi32_ps(r), dd);
  const __m256 t = _mm256_sub_ps(prod, _mm256_movehdup_ps(prod));
  sum += _mm256_cvtss_f32(t);
  if constexpr (G > 1) sum += _mm_cvtss_f32(_mm256_extractf128_ps(t, 1));
  return sum;
}

HWY_NOINLINE void DotRowsQ4K1(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1,
                              const BlockQ8_K* x, size_t nb, float* y, const float* bias) {
  static thread_local XQ4K xp;
  PrepareQ4K<false>(x, nb, &xp);
  const ConstQ4K2 c;
  const int16_t* xs = xp.s.data();
  const float* xd4 = xp.d4.data();
  for (int64_t r = r0; r < r1; ++r) {
    const auto* blk = reinterpret_cast<const BlockQ4_K*>(w + size_t(r) * row_bytes);
    float sum = 0;
    size_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      kq::PrefetchAhead(blk + b, 2 * sizeof(BlockQ4_K));
      sum = GroupQ4K2<2>(c, blk + b, x + b, xs + b * 8, xd4 + b * 4, sum);
    }
    if (b < nb) sum = GroupQ4K2<1>(c, blk + b, x + b, xs + b * 8, xd4 + b * 4, sum);
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
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
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
