// Q4_K x Q8_K matrix-matrix product (prefill), per Highway target: integer
// tiles on AVX2 (also compiled for the AVX-512 target, which runs AVX2 code).
//
// Why: the panel form decodes Q4_K to f32 and runs f32 FMAs, 8 products per
// instruction; vpmaddubsw does 32 byte products per instruction. x is
// quantized to Q8_K (as the decode kernels do), so each output is
// dot_q4_K_q8_K of core, bit for bit:
//
// W is taken 8 rows at a time, one row per 32-bit lane, so that no lane sums
// are needed and the per-row scales multiply whole vectors. A tile holds,
// per super-block i of the 8 rows:
//   q   [8 j][8 g][8 r][4]  level (0..15) of value 32j + 4g + t of row r at
//                           byte 2048i + 256j + 32g + 4r + t
//   sc  [8 j][16] int16     sub-block scale sc[j] of row r in words 2r, 2r+1
//   mn  [4 k][16] int16     mins mn[2k], mn[2k+1] of row r in words 2r, 2r+1
//   d, dmin [8] f32         the rows' super-block scales (0 past the last row)
// Per x row and super-block: for sub-block j, vpmaddubsw of q's vectors g
// with the x values 32j + 4g..+3 (broadcast), 8 summed in int16 (|.| <=
// 8·2·15·127 < 2^15), then vpmaddwd with sc[j] gives each row's sc·Σ q·x8 in
// int32 (|isum| <= 8·63·32·15·127 < 2^31); vpmaddwd of mn with pairs of
// sub-block sums of x gives msum. Then, per row, as the reference:
//   sum += (d·x.d)·float(isum) - (dmin·x.d)·float(msum)
// each product rounded, in super-block order.
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/gemm_q4_k.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstring>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "backend/cpu/kquant_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX2
#define KVSIEVE_GEMM_Q4K_AVX2 1

constexpr size_t kTileBytes = 2048 + 8 * 32 + 4 * 32 + 2 * 32;  // per super-block

struct TileQ4K {
  hwy::AlignedFreeUniquePtr<uint8_t[]> p;  // [nb][kTileBytes]: q, sc, mn, d, dmin
  size_t cap = 0;
  uint8_t* get(size_t nb) {
    if (nb > cap) {
      p = hwy::AllocateAligned<uint8_t>(nb * kTileBytes);
      cap = nb;
    }
    return p.get();
  }
};

// 8 x 8 transpose of 32-bit words: out[g] word r = v[r] word g.
HWY_INLINE void Transpose8(const __m256i* v, __m256i* out) {
  __m256i u[8];
  for (int h = 0; h < 2; ++h) {
    const __m256i* s = v + 4 * h;
    const __m256i t0 = _mm256_unpacklo_epi32(s[0], s[1]), t1 = _mm256_unpackhi_epi32(s[0], s[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(s[2], s[3]), t3 = _mm256_unpackhi_epi32(s[2], s[3]);
    u[4 * h + 0] = _mm256_unpacklo_epi64(t0, t2);  // 128-bit lane L: rows 4h..4h+3 of word 4L
    u[4 * h + 1] = _mm256_unpackhi_epi64(t0, t2);  // word 4L + 1
    u[4 * h + 2] = _mm256_unpacklo_epi64(t1, t3);  // word 4L + 2
    u[4 * h + 3] = _mm256_unpackhi_epi64(t1, t3);  // word 4L + 3
  }
  for (int g = 0; g < 4; ++g) {
    out[g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x20);
    out[4 + g] = _mm256_permute2x128_si256(u[g], u[4 + g], 0x31);
  }
}

// Rows [r0, r0 + nr) of w (nr <= 8) into a tile.
HWY_INLINE void RepackQ4K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t nr, size_t nb, uint8_t* tile) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (size_t i = 0; i < nb; ++i) {
    uint8_t* t = tile + i * kTileBytes;
    int16_t* sc = reinterpret_cast<int16_t*>(t + 2048);
    int16_t* mn = reinterpret_cast<int16_t*>(t + 2048 + 256);
    float* d = reinterpret_cast<float*>(t + 2048 + 384);
    float* dmin = d + 8;
    const BlockQ4_K* blk[8];
    for (int r = 0; r < 8; ++r)
      blk[r] = r < nr ? reinterpret_cast<const BlockQ4_K*>(w + size_t(r0 + r) * row_bytes) + i : nullptr;
    for (int c = 0; c < 4; ++c) {  // sub-blocks 2c (low nibbles) and 2c + 1 (high)
      __m256i lo[8], hi[8];
      for (int r = 0; r < 8; ++r) {
        const __m256i v = blk[r] ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[r]->qs + 32 * c))
                                 : _mm256_setzero_si256();
        lo[r] = _mm256_and_si256(v, m4);
        hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      }
      Transpose8(lo, reinterpret_cast<__m256i*>(t + 256 * (2 * c)));
      Transpose8(hi, reinterpret_cast<__m256i*>(t + 256 * (2 * c + 1)));
    }
    for (int r = 0; r < 8; ++r) {
      uint8_t s[8] = {}, m[8] = {};
      if (blk[r]) {
        unpack_scales_k4_all(blk[r]->scales, s, m);
        d[r] = f16_to_f32(blk[r]->d);
        dmin[r] = f16_to_f32(blk[r]->dmin);
      } else {
        d[r] = dmin[r] = 0.0f;
      }
      for (int j = 0; j < 8; ++j) sc[16 * j + 2 * r] = sc[16 * j + 2 * r + 1] = int16_t(s[j]);
      for (int k = 0; k < 4; ++k) {
        mn[16 * k + 2 * r] = int16_t(m[2 * k]);
        mn[16 * k + 2 * r + 1] = int16_t(m[2 * k + 1]);
      }
    }
  }
}

// One x row as the kernel reads it, per super-block: the Q8_K block and
// its 8 sub-block sums (bsums[2j] + bsums[2j + 1]).
struct XRow {
  const BlockQ8_K* x;
  const int16_t* bs;  // [nb][8]
};

// out[c][8] = the tile's 8 rows against x rows xr[c] (c < C).
template <int C>
HWY_NOINLINE void TileKernelQ4K(const uint8_t* tile, size_t nb, const XRow* xr, float* out) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (size_t i = 0; i < nb; ++i) {
    const uint8_t* t = tile + i * kTileBytes;
    const __m256i* q = reinterpret_cast<const __m256i*>(t);
    const __m256i* sc = reinterpret_cast<const __m256i*>(t + 2048);
    const __m256i* mn = reinterpret_cast<const __m256i*>(t + 2048 + 256);
    const float* dd = reinterpret_cast<const float*>(t + 2048 + 384);
    __m256i isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      __m256i s[C];
      for (int c = 0; c < C; ++c) s[c] = _mm256_setzero_si256();
      for (int g = 0; g < 8; ++g) {
        const __m256i wv = _mm256_load_si256(q + 8 * j + g);
        for (int c = 0; c < C; ++c) {
          int32_t x4;
          std::memcpy(&x4, xr[c].x[i].qs + 32 * j + 4 * g, 4);
          s[c] = _mm256_add_epi16(s[c], _mm256_maddubs_epi16(wv, _mm256_set1_epi32(x4)));
        }
      }
      const __m256i scj = _mm256_load_si256(sc + j);
      for (int c = 0; c < C; ++c) isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s[c], scj));
    }
    const __m256 d = _mm256_load_ps(dd), dmin = _mm256_load_ps(dd + 8);
    for (int c = 0; c < C; ++c) {
      __m256i msum = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        int32_t b2;
        std::memcpy(&b2, xr[c].bs + 8 * i + 2 * k, 4);
        msum = _mm256_add_epi32(msum, _mm256_madd_epi16(_mm256_load_si256(mn + k), _mm256_set1_epi32(b2)));
      }
      const __m256 xd = _mm256_set1_ps(xr[c].x[i].d);
      __m256 t1 = _mm256_mul_ps(_mm256_mul_ps(d, xd), _mm256_cvtepi32_ps(isum[c]));
      __m256 t2 = _mm256_mul_ps(_mm256_mul_ps(dmin, xd), _mm256_cvtepi32_ps(msum));
      // Kept from being fused into FMAs (the reference rounds each product).
      __asm__("" : "+x"(t1), "+x"(t2));
      acc[c] = _mm256_add_ps(acc[c], _mm256_sub_ps(t1, t2));
    }
  }
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}
#endif

}  // namespace

bool GemmQ4K(const uint8_t* w, size_t row_bytes, int64_t rows, const BlockQ8_K* xq, int64_t n, size_t nb,
             float* y, ThreadPool& pool, const float* bias) {
#ifdef KVSIEVE_GEMM_Q4K_AVX2
  // bs [n][nb][8]: the sub-block sums of x.
  static thread_local std::vector<int16_t> bs_buf;
  bs_buf.resize(size_t(n) * nb * 8);
  int16_t* bs = bs_buf.data();
  for (size_t b = 0; b < size_t(n) * nb; ++b)
    for (int j = 0; j < 8; ++j) bs[8 * b + j] = int16_t(xq[b].bsums[2 * j] + xq[b].bsums[2 * j + 1]);
  const int64_t n_tiles = (rows + 7) / 8;
  pool.parallel_for(n_tiles, [&](int64_t t0, int64_t t1, int) {
    static thread_local TileQ4K tile_buf;
    uint8_t* tile = tile_buf.get(nb);
    for (int64_t ti = t0; ti < t1; ++ti) {
      const int64_t r0 = ti * 8, nr = std::min<int64_t>(8, rows - r0);
      RepackQ4K(w, row_bytes, r0, nr, nb, tile);
      for (int64_t i0 = 0; i0 < n; i0 += 4) {
        const int C = int(std::min<int64_t>(4, n - i0));
        XRow xr[4];
        for (int c = 0; c < C; ++c) xr[c] = {xq + size_t(i0 + c) * nb, bs + size_t(i0 + c) * nb * 8};
        alignas(32) float out[4 * 8];
        switch (C) {
          case 4: TileKernelQ4K<4>(tile, nb, xr, out); break;
          case 3: TileKernelQ4K<3>(tile, nb, xr, out); break;
          case 2: TileKernelQ4K<2>(tile, nb, xr, out); break;
          default: TileKernelQ4K<1>(tile, nb, xr, out); break;
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
  (void)w, (void)row_bytes, (void)rows, (void)xq, (void)n, (void)nb, (void)y, (void)pool, (void)bias;
  return false;  // the f32 panels of matmul-inl.h
#endif
}

#undef KVSIEVE_GEMM_Q4K_AVX2

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
