// K-quant quantizers (f32 -> Q4_K / Q5_K / Q6_K / Q8_K). Each sub-block's
// scale (and min) is chosen by a short search: a few candidate scales around
// the block's range, each followed by a least-squares refit of scale and
// offset to the levels it gives, keeping the one with the smallest squared
// error. The sub-block scales are then themselves quantized (6-bit for
// Q4_K/Q5_K, int8 for Q6_K) and the values re-quantized with the scales the
// file will really hold, so the stored levels fit the stored scales.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/kquant.h"

namespace kvsieve {
namespace {

inline int round_clamp(float v, int lo, int hi) { return std::clamp(int(std::nearbyint(v)), lo, hi); }

// x[n] ≈ s·q - m with q in 0..nmax, s >= 0, m >= 0 (the block minimum is
// clamped to <= 0, as the format stores m unsigned).
void fit_scale_min(const float* x, int n, int nmax, float* s_out, float* m_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  lo = std::min(lo, 0.0f);
  if (hi <= lo) {
    *s_out = 0;
    *m_out = -lo;
    return;
  }
  // Candidate: the plain range, error of (s, b) with x ≈ s·q + b.
  auto error = [&](float s, float b) {
    double e = 0;
    const float is = s > 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp((x[i] - b) * is, 0, nmax);
      const double r = double(s) * q + b - x[i];
      e += r * r;
    }
    return e;
  };
  float best_s = (hi - lo) / float(nmax), best_b = lo;
  double best_e = error(best_s, best_b);
  for (int step = -5; step <= 5; ++step) {
    const float is = (float(nmax) + 0.1f * float(step)) / (hi - lo);
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp((x[i] - lo) * is, 0, nmax);
      sq += q, sqq += double(q) * q, sx += x[i], sxq += double(x[i]) * q;
    }
    const double det = n * sqq - sq * sq;
    if (det <= 0) continue;
    double s = (n * sxq - sq * sx) / det;
    double b = (sqq * sx - sq * sxq) / det;
    if (b > 0) {  // the offset must be <= 0: refit the scale alone
      b = 0;
      s = sqq > 0 ? sxq / sqq : 0;
    }
    if (s <= 0) continue;
    const double e = error(float(s), float(b));
    if (e < best_e) best_e = e, best_s = float(s), best_b = float(b);
  }
  *s_out = best_s;
  *m_out = -best_b;
}

// x[n] ≈ s·q with q in -32..31 (s may be negative: the largest magnitude
// goes to -32, which uses the asymmetric range fully).
float fit_scale_signed(const float* x, int n) {
  float amax = 0, maxv = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), maxv = x[i];
  if (amax == 0) return 0;
  float best_s = maxv / -32.0f;
  double best_e = 1e300;
  for (int step = -4; step <= 4; ++step) {
    const float is = -(32.0f + 0.25f * float(step)) / maxv;
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = round_clamp(x[i] * is, -32, 31);
      sxq += double(x[i]) * q, sqq += double(q) * q;
    }
    if (sqq <= 0) continue;
    const float s = float(sxq / sqq);
    const float inv = 1.0f / s;
    double e = 0;
    for (int i = 0; i < n; ++i) {
      const double r = double(s) * round_clamp(x[i] * inv, -32, 31) - x[i];
      e += r * r;
    }
    if (e < best_e) best_e = e, best_s = s;
  }
  return best_s;
}

// One Q4_K / Q5_K super-block: q[256] levels, 6-bit scales packed, d, dmin.
void quantize_q45_block(const float* x, int nmax, uint8_t* q, uint8_t* scales, uint16_t* d16, uint16_t* dmin16) {
  float s[8], m[8];
  float smax = 0, mmax = 0;
  for (int j = 0; j < 8; ++j) {
    fit_scale_min(x + 32 * j, 32, nmax, &s[j], &m[j]);
    smax = std::max(smax, s[j]);
    mmax = std::max(mmax, m[j]);
  }
  *d16 = f32_to_f16(smax / 63.0f);
  *dmin16 = f32_to_f16(mmax / 63.0f);
  const float d = f16_to_f32(*d16), dmin = f16_to_f32(*dmin16);
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = uint8_t(d > 0 ? round_clamp(s[j] / d, 0, 63) : 0);
    mn[j] = uint8_t(dmin > 0 ? round_clamp(m[j] / dmin, 0, 63) : 0);
    // Re-quantize against the scale and min the block will hold.
    const float ds = d * float(sc[j]), dm = dmin * float(mn[j]);
    const float ids = ds > 0 ? 1.0f / ds : 0.0f;
    for (int l = 0; l < 32; ++l) q[32 * j + l] = uint8_t(round_clamp((x[32 * j + l] + dm) * ids, 0, nmax));
  }
  pack_scales_k4(sc, mn, scales);
}

void quantize_q6_block(const float* x, BlockQ6_K* b) {
  float s[16];
  float amax = 0;
  for (int g = 0; g < 16; ++g) {
    s[g] = fit_scale_signed(x + 16 * g, 16);
    amax = std::max(amax, std::fabs(s[g]));
  }
  b->d = f32_to_f16(amax / 127.0f);
  const float d = f16_to_f32(b->d);
  uint8_t q[kQK_K];
  for (int g = 0; g < 16; ++g) {
    b->scales[g] = int8_t(d > 0 ? round_clamp(s[g] / d, -127, 127) : 0);
    const float ds = d * float(b->scales[g]);
    const float ids = ds != 0 ? 1.0f / ds : 0.0f;
    for (int l = 0; l < 16; ++l) q[16 * g + l] = uint8_t(round_clamp(x[16 * g + l] * ids, -32, 31) + 32);
  }
  std::fill(std::begin(b->ql), std::end(b->ql), 0);
  std::fill(std::begin(b->qh), std::end(b->qh), 0);
  for (int v = 0; v < kQK_K; ++v) {
    const int h = v / 128, r = v % 128, quarter = r / 32, l = r % 32;
    uint8_t* ql = b->ql + 64 * h;
    const int lo = q[v] & 0xF, top = q[v] >> 4;
    if (quarter == 0) ql[l] |= uint8_t(lo);
    if (quarter == 1) ql[l + 32] |= uint8_t(lo);
    if (quarter == 2) ql[l] |= uint8_t(lo << 4);
    if (quarter == 3) ql[l + 32] |= uint8_t(lo << 4);
    b->qh[32 * h + l] |= uint8_t(top << (2 * quarter));
  }
}

}  // namespace

void quantize_row_kquant(DType t, const float* src, void* dst, int64_t n) {
  const int64_t nb = n / kQK_K;
  switch (t) {
    case DType::Q4_K: {
      auto* b = static_cast<BlockQ4_K*>(dst);
      for (int64_t i = 0; i < nb; ++i) {
        uint8_t q[kQK_K];
        quantize_q45_block(src + i * kQK_K, 15, q, b[i].scales, &b[i].d, &b[i].dmin);
        for (int c = 0; c < 4; ++c)
          for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
      }
      return;
    }
    case DType::Q5_K: {
      auto* b = static_cast<BlockQ5_K*>(dst);
      for (int64_t i = 0; i < nb; ++i) {
        uint8_t q[kQK_K];
        quantize_q45_block(src + i * kQK_K, 31, q, b[i].scales, &b[i].d, &b[i].dmin);
        std::fill(std::begin(b[i].qh), std::end(b[i].qh), 0);
        for (int c = 0; c < 4; ++c) {
          for (int l = 0; l < 32; ++l) {
            const int a = q[64 * c + l], h = q[64 * c + 32 + l];
            b[i].qs[32 * c + l] = uint8_t((a & 0xF) | ((h & 0xF) << 4));
            b[i].qh[l] |= uint8_t(((a >> 4) << (2 * c)) | ((h >> 4) << (2 * c + 1)));
          }
        }
      }
      return;
    }
    case DType::Q6_K: {
      auto* b = static_cast<BlockQ6_K*>(dst);
      for (int64_t i = 0; i < nb; ++i) quantize_q6_block(src + i * kQK_K, &b[i]);
      return;
    }
    case DType::Q8_K: quantize_row_q8_K(src, static_cast<BlockQ8_K*>(dst), n); return;
    default: fail("quantize_row_kquant: {} is not a K-quant", dtype_name(t));
  }
}

}  // namespace kvsieve
