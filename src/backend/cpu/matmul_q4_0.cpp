// Q4_0 x Q8_0 dot-form kernels (decode and small batches), per Highway
// target; the scalar reference is core/q4_0_dot.h.
//
// Why integers: Q4_0 decode with weights widened to f32 (nibble -> int32 ->
// f32, times the scale, then an FMA per value) was bound by that arithmetic,
// not by memory (0.75x llama.cpp's tokens/s at 1.1B). With x quantized to
// 8 bits, vpmaddubsw multiplies 32 nibbles by 32 int8 values per instruction.
//
// AVX2 (also compiled for the AVX-512 target, which runs AVX2 code): two
// blocks per step, one per 128-bit lane. Their 2 x 16 nibble bytes are
// loaded into one vector; the low nibbles are values 0..15 of each block,
// the high ones values 16..31, so the activations are copied once per call
// into that order (XQ::q). vpmaddubsw (unsigned levels 0..15 times the int8
// x, pairs to int16: at most 2·15·127) and vpmaddwd with ones give int32
// lanes, 4 per block; the -8 offset enters as -8·Σx.qs in the first lane of
// each block (XQ::corr), so the integer sums are exact. The lanes are then
// converted and multiplied by d_w·d_x (the same rounded product as the
// reference) and accumulated in f32.
//
// Prefill (GemmQ4_0, n > kDotMaxN) quantizes x the same way and multiplies
// 8 W rows by 4 x rows at a time in integers; see TileQ4_0.
//
// Other targets (SSE4, scalar): the reference, row by row, in the dot form;
// f32 panels of dequantized weights for prefill (matmul-inl.h).
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul_q4_0.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstring>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "backend/cpu/kquant-inl.h"
#include "backend/cpu/q4_0_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
#define KVSIEVE_Q4_0_AVX2 1

// One x row in the kernel's order, per pair of blocks p (blocks 2p, 2p+1;
// an odd last block is paired with a zero block):
//   q    [np][64]  x.qs[0..15] of 2p, of 2p+1, then x.qs[16..31] of 2p, of 2p+1
//   corr [np][8]   int32 (-8·sum of 2p, 0, 0, 0, -8·sum of 2p+1, 0, 0, 0)
//   dx   [np][8]   f32 (d of 2p x4, d of 2p+1 x4)
struct XQ {
  std::vector<int8_t> q;
  std::vector<int32_t> corr;
  std::vector<float> dx;
};

HWY_INLINE void PrepareX(const BlockQ8_0x* x, size_t nb, XQ* p) {
  const size_t np = (nb + 1) / 2;
  p->q.assign(np * 64, 0);
  p->corr.assign(np * 8, 0);
  p->dx.assign(np * 8, 0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const size_t pr = b / 2, h = b % 2;
    std::memcpy(&p->q[pr * 64 + 16 * h], x[b].qs, 16);
    std::memcpy(&p->q[pr * 64 + 32 + 16 * h], x[b].qs + 16, 16);
    p->corr[pr * 8 + 4 * h] = -8 * x[b].sum;
    for (int i = 0; i < 4; ++i) p->dx[pr * 8 + 4 * h + i] = x[b].d;
  }
}

// Σ lanes of v (any order: the bound of the tests allows it).
HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct ConstQ4_0 {
  __m256i m4, ones;
  __m128i widen;  // the two f16 scales (words 0, 1) to words 0..3 and 4..7
  // A written constructor (not member initializers): it carries the
  // target's attributes, which the AVX2 intrinsics need.
  ConstQ4_0() {
    m4 = _mm256_set1_epi8(0x0F);
    ones = _mm256_set1_epi16(1);
    widen = _mm_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3);
  }
};

// Adds the pair of blocks at b (b[0..35]; hi2: whether the second exists)
// against x pair p to acc.
template <bool kTwo>
HWY_INLINE __m256 PairQ4_0(const ConstQ4_0& c, const uint8_t* b, const int8_t* xq, const int32_t* corr,
                           const float* dx, __m256 acc) {
  const __m128i n0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
  uint16_t d0, d1 = 0;
  std::memcpy(&d0, b, 2);
  __m256i v;
  if constexpr (kTwo) {
    std::memcpy(&d1, b + sizeof(BlockQ4_0), 2);
    v = _mm256_inserti128_si256(_mm256_castsi128_si256(n0),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + sizeof(BlockQ4_0) + 2)), 1);
  } else {
    v = _mm256_zextsi128_si256(n0);
  }
  const __m256i lo = _mm256_and_si256(v, c.m4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), c.m4);
  const __m256i p16 = _mm256_add_epi16(
      _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq))),
      _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32))));
  const __m256i i32 = _mm256_add_epi32(_mm256_madd_epi16(p16, c.ones),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr)));
  const __m128i h = _mm_shuffle_epi8(_mm_cvtsi32_si128(int(uint32_t(d0) | (uint32_t(d1) << 16))), c.widen);
  const __m256 s = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(dx));  // d_w·d_x, as the reference
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), s, acc);
}

// Σ of one row against one prepared x row.
HWY_INLINE float RowQ4_0(const ConstQ4_0& c, const uint8_t* row, size_t nb, const XQ& xp) {
  constexpr size_t kPair = 2 * sizeof(BlockQ4_0);  // 36 bytes
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();  // two FMA chains
  size_t p = 0;
  for (; 2 * p + 4 <= nb; p += 2) {
    const uint8_t* b = row + p * kPair;
    kq::PrefetchAhead(b, 2 * kPair);
    acc0 = PairQ4_0<true>(c, b, &xp.q[p * 64], &xp.corr[p * 8], &xp.dx[p * 8], acc0);
    acc1 = PairQ4_0<true>(c, b + kPair, &xp.q[p * 64 + 64], &xp.corr[p * 8 + 8], &xp.dx[p * 8 + 8], acc1);
  }
  for (; 2 * p + 2 <= nb; ++p)
    acc0 = PairQ4_0<true>(c, row + p * kPair, &xp.q[p * 64], &xp.corr[p * 8], &xp.dx[p * 8], acc0);
  if (2 * p < nb)
    acc1 = PairQ4_0<false>(c, row + p * kPair, &xp.q[p * 64], &xp.corr[p * 8], &xp.dx[p * 8], acc1);
  return HSum(_mm256_add_ps(acc0, acc1));
}

// ---- prefill (n > kDotMaxN): the matrix-matrix form ----------------------
// W is taken 8 rows at a time, one row per f32/int32 lane, so that a
// block's scale multiplies whole vectors and no lane sums are needed. A
// tile holds the 8 rows' levels transposed in words of 4 values:
//   q [nb][8 g][8 r][4]  level (0..15) of value 4g + i of row r, in byte
//                        b·256 + 32g + 4r + i
//   d [nb][8]            the rows' scales (f16 widened; 0 past the last row)
// so that vpmaddubsw of q's 32 bytes g with one x row's values 4g..4g+3
// (broadcast) gives each row's pair products; 8 of them summed in int16
// (|.| <= 8·2·15·127 < 2^15) and vpmaddwd with ones give each row's exact
// Σ q·x8 for the block. Then, as the reference, per row and block
// float(isum - 8·Σx8)·(d_w·d_x), rounded, added in block order: the result is
// dot_q4_0_q8_0 bit for bit (mul and add, not an FMA: the reference rounds
// the product).
struct TileQ4_0 {
  hwy::AlignedFreeUniquePtr<uint8_t[]> q;
  hwy::AlignedFreeUniquePtr<float[]> d;
  size_t cap = 0;  // blocks q and d have room for
  void reserve(size_t nb) {
    if (nb <= cap) return;
    q = hwy::AllocateAligned<uint8_t>(nb * 256);
    d = hwy::AllocateAligned<float>(nb * 8);
    cap = nb;
  }
};

// Rows [r0, r0 + nr) of w (nr <= 8) into t.
HWY_INLINE void RepackQ4_0(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t nr, size_t nb, TileQ4_0* t) {
  t->reserve(nb);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  for (size_t b = 0; b < nb; ++b) {
    __m256i v[8];
    alignas(16) uint16_t dh[8];
    for (int r = 0; r < 8; ++r) {
      if (r < nr) {
        const uint8_t* blk = w + size_t(r0 + r) * row_bytes + b * sizeof(BlockQ4_0);
        const __m128i n16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
        // values 0..15 (low nibbles), then 16..31 (high): word g = values 4g..4g+3
        v[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(n16, m4)),
                                       _mm_and_si128(_mm_srli_epi16(n16, 4), m4), 1);
        std::memcpy(&dh[r], blk, 2);
      } else {
        v[r] = _mm256_setzero_si256();
        dh[r] = 0;
      }
    }
    // 8 x 8 transpose of 32-bit words: out[g] word r = v[r] word g.
    __m256i u[8];
    for (int h = 0; h < 2; ++h) {
      const __m256i* s = v + 4 * h;
      const __m256i t0 = _mm256_unpacklo_epi32(s[0], s[1]), t1 = _mm256_unpackhi_epi32(s[0], s[1]);
      const __m256i t2 = _mm256_unpacklo_epi32(s[2], s[3]), t3 = _mm256_unpackhi_epi32(s[2], s[3]);
      u[4 * h + 0] = _mm256_unpacklo_epi64(t0, t2);  // lane L: rows 4h..4h+3 of word 4L
      u[4 * h + 1] = _mm256_unpackhi_epi64(t0, t2);  // word 4L + 1
      u[4 * h + 2] = _mm256_unpacklo_epi64(t1, t3);  // word 4L + 2
      u[4 * h + 3] = _mm256_unpackhi_epi64(t1, t3);  // word 4L + 3
    }
    __m256i* out = reinterpret_cast<__m256i*>(t->q.get() + b * 256);
    for (int g = 0; g < 4; ++g) {
      _mm256_store_si256(out + g, _mm256_permute2x128_si256(u[g], u[4 + g], 0x20));
      _mm256_store_si256(out + 4 + g, _mm256_permute2x128_si256(u[g], u[4 + g], 0x31));
    }
    _mm256_store_ps(t->d.get() + b * 8, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dh))));
  }
}

// out[c][8] = the tile's 8 rows against x rows xr[c] (c < C), nb blocks each.
template <int C>
HWY_NOINLINE void TileKernelQ4_0(const TileQ4_0& t, size_t nb, const BlockQ8_0x* const* xr, float* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const __m256i* q = reinterpret_cast<const __m256i*>(t.q.get() + b * 256);
    __m256i s[C];
    for (int c = 0; c < C; ++c) s[c] = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i wv = _mm256_load_si256(q + g);
      for (int c = 0; c < C; ++c) {
        int32_t x4;
        std::memcpy(&x4, xr[c][b].qs + 4 * g, 4);
        s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(x4)));
      }
    }
    const __m256 dw = _mm256_load_ps(t.d.get() + b * 8);
    for (int c = 0; c < C; ++c) {
      const __m256i i32 = _mm256_add_epi32(_mm256_madd_epi16(s[c], ones), _mm256_set1_epi32(-8 * xr[c][b].sum));
      const __m256 sc = _mm256_mul_ps(dw, _mm256_set1_ps(xr[c][b].d));
      __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(i32), sc);
      // The compiler fuses a product and a sum into an FMA where the
      // target has one (the reference rounds the product): an empty asm
      // on the product keeps them apart.
      __asm__("" : "+x"(t));
      acc[c] = _mm256_add_ps(acc[c], t);
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}

// x·(127/amax) rounded to int32 (nearest even, as nearbyint), clamped.
HWY_INLINE __m256i Levels(const float* x, __m256 id) {
  const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
  return _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}
#endif

}  // namespace

void QuantizeRowQ8_0x(const float* x, BlockQ8_0x* y, int64_t n) {
#ifdef KVSIEVE_Q4_0_AVX2
  // The reference's values bit for bit: the same amax (max is exact and
  // order-free; NaN ignored as std::max does: maxps returns its second
  // operand when the first is NaN), the same id and d, one rounded product
  // per value, converted with the current rounding mode (nearest even, as
  // nearbyint), clamped.
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    __m256 m = _mm256_setzero_ps();
    for (int v = 0; v < kQK; v += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + v)), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    y[i].d = amax / 127.0f;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256i q0 = Levels(xb, vid), q1 = Levels(xb + 8, vid), q2 = Levels(xb + 16, vid),
                  q3 = Levels(xb + 24, vid);
    // int32 -> int8 (no saturation: |q| <= 127); packs work per 128-bit
    // lane, the permute puts the values back in order.
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs),
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    y[i].sum = _mm_cvtsi128_si32(s4);
  }
#else
  quantize_row_q8_0x(x, y, n);
#endif
}

void DotRowsQ4_0(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_0x* x,
                 int64_t n, size_t nb, float* y, size_t ys, const float* bias) {
#ifdef KVSIEVE_Q4_0_AVX2
  constexpr int64_t kMaxN = 32;  // matmul-inl.h sends at most kDotMaxN (<= 20) rows
  HWY_ASSERT(n <= kMaxN);
  static thread_local std::vector<XQ> xp;
  if (xp.size() < size_t(n)) xp.resize(size_t(n));
  for (int64_t m = 0; m < n; ++m) PrepareX(x + size_t(m) * nb, nb, &xp[size_t(m)]);
  const ConstQ4_0 c;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * row_bytes;
    for (int64_t m = 0; m < n; ++m)
      y[size_t(m) * ys + size_t(r)] = RowQ4_0(c, row, nb, xp[size_t(m)]) + (bias ? bias[r] : 0.0f);
  }
#else
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t m = 0; m < n; ++m)
      y[size_t(m) * ys + size_t(r)] =
          dot_q4_0_q8_0(reinterpret_cast<const BlockQ4_0*>(w + size_t(r) * row_bytes), x + size_t(m) * nb,
                        int64_t(nb)) +
          (bias ? bias[r] : 0.0f);
#endif
}

bool GemmQ4_0(const uint8_t* w, size_t row_bytes, int64_t rows, const float* x, int64_t n, size_t K, float* y,
              ThreadPool& pool, const float* bias) {
#ifdef KVSIEVE_Q4_0_AVX2
  const size_t nb = K / kQK;
  // xq [n][nb]: every x row quantized once, the rows split between threads.
  static thread_local std::vector<BlockQ8_0x> xq_buf;
  if (xq_buf.size() < size_t(n) * nb) xq_buf.resize(size_t(n) * nb);
  BlockQ8_0x* xq = xq_buf.data();
  pool.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) QuantizeRowQ8_0x(x + i * int64_t(K), xq + size_t(i) * nb, int64_t(K));
  });
  const int64_t n_tiles = (rows + 7) / 8;
  // Tiles in chunks claimed by whichever thread is free (as the f32 panels).
  pool.parallel_for(n_tiles, [&](int64_t t0, int64_t t1, int) {
    static thread_local TileQ4_0 tile;
    for (int64_t ti = t0; ti < t1; ++ti) {
      const int64_t r0 = ti * 8, nr = std::min<int64_t>(8, rows - r0);
      RepackQ4_0(w, row_bytes, r0, nr, nb, &tile);
      for (int64_t i0 = 0; i0 < n; i0 += 4) {
        const int C = int(std::min<int64_t>(4, n - i0));
        const BlockQ8_0x* xr[4];
        for (int c = 0; c < C; ++c) xr[c] = xq + size_t(i0 + c) * nb;
        alignas(32) float out[4 * 8];
        switch (C) {
          case 4: TileKernelQ4_0<4>(tile, nb, xr, out); break;
          case 3: TileKernelQ4_0<3>(tile, nb, xr, out); break;
          case 2: TileKernelQ4_0<2>(tile, nb, xr, out); break;
          default: TileKernelQ4_0<1>(tile, nb, xr, out); break;
        }
        for (int c = 0; c < C; ++c) {
          float* yr = y + size_t(i0 + c) * size_t(rows) + size_t(r0);
          for (int64_t r = 0; r < nr; ++r) yr[r] = out[8 * c + r] + (bias ? bias[r0 + r] : 0.0f);
        }
      }
    }
  }, 1, 8 * pool.size());
  return true;
#else
  (void)w, (void)row_bytes, (void)rows, (void)x, (void)n, (void)K, (void)y, (void)pool, (void)bias;
  return false;  // the f32 panels of matmul-inl.h
#endif
}

#undef KVSIEVE_Q4_0_AVX2

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
