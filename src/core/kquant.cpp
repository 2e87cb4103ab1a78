// K-quants: scalar dequantisation, Q8_K activations and the reference dot
// products (layouts in kquant.h; the quantizers are in kquant_quantize.cpp).
#include "core/kquant.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvsieve {

void pack_scales_k4(const uint8_t* sc, const uint8_t* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
}

namespace {

// q of value v (< 256) of a Q4_K / Q5_K block.
inline int q4_of(const uint8_t* qs, int v) {
  const int c = v / 64, l = v % 64;
  return l < 32 ? (qs[32 * c + l] & 0xF) : (qs[32 * c + l - 32] >> 4);
}
inline int q5_of(const BlockQ5_K& b, int v) {
  const int c = v / 64, l = v % 64;
  const int hi = (b.qh[l % 32] >> (2 * c + (l >= 32))) & 1;
  return q4_of(b.qs, v) | (hi << 4);
}
// q - 32 of value v of a Q6_K block.
inline int q6_of(const BlockQ6_K& b, int v) {
  const int h = v / 128, r = v % 128, quarter = r / 32, l = r % 32;
  const uint8_t* ql = b.ql + 64 * h;
  const uint8_t* qh = b.qh + 32 * h;
  const int lo = quarter == 0 ? (ql[l] & 0xF)
               : quarter == 1 ? (ql[l + 32] & 0xF)
               : quarter == 2 ? (ql[l] >> 4)
                              : (ql[l + 32] >> 4);
  const int top = (qh[l] >> (2 * quarter)) & 3;
  return (lo | (top << 4)) - 32;
}

}  // namespace

void dequantize_row_kquant(DType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / kQK_K;
  switch (t) {
    case DType::Q4_K:
    case DType::Q5_K: {
      const bool five = t == DType::Q5_K;
      for (int64_t i = 0; i < nb; ++i) {
        const uint8_t* blk = static_cast<const uint8_t*>(src) + i * dtype_block_bytes(t);
        const auto* b4 = reinterpret_cast<const BlockQ4_K*>(blk);
        const auto* b5 = reinterpret_cast<const BlockQ5_K*>(blk);
        const float d = f16_to_f32(b4->d), dmin = f16_to_f32(b4->dmin);
        for (int j = 0; j < 8; ++j) {
          int sc, mn;
          unpack_scales_k4(b4->scales, j, &sc, &mn);
          // d·sc and dmin·mn rounded to f32 first, as ggml does.
          const float ds = d * float(sc), dm = dmin * float(mn);
          for (int l = 0; l < 32; ++l) {
            const int v = 32 * j + l;
            const int q = five ? q5_of(*b5, v) : q4_of(b4->qs, v);
            dst[i * kQK_K + v] = ds * float(q) - dm;
          }
        }
      }
      return;
    }
    case DType::Q6_K: {
      const auto* b = static_cast<const BlockQ6_K*>(src);
      for (int64_t i = 0; i < nb; ++i) {
        const float d = f16_to_f32(b[i].d);
        for (int v = 0; v < kQK_K; ++v) dst[i * kQK_K + v] = d * float(b[i].scales[v / 16]) * float(q6_of(b[i], v));
      }
      return;
    }
    case DType::Q8_K: {
      const auto* b = static_cast<const BlockQ8_K*>(src);
      for (int64_t i = 0; i < nb; ++i)
        for (int v = 0; v < kQK_K; ++v) dst[i * kQK_K + v] = b[i].d * float(b[i].qs[v]);
      return;
    }
    default: fail("dequantize_row_kquant: {} is not a K-quant", dtype_name(t));
  }
}

void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    float amax = 0;
    for (int v = 0; v < kQK_K; ++v) amax = std::max(amax, std::fabs(xb[v]));
    const float d = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    y[i].d = d;
    for (int v = 0; v < kQK_K; ++v) {
      const int q = int(std::nearbyint(xb[v] * id));
      y[i].qs[v] = int8_t(std::clamp(q, -127, 127));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += y[i].qs[16 * g + l];
      y[i].bsums[g] = int16_t(s);
    }
  }
}

namespace {

template <bool kFive, typename Block>
float dot_q45_K(const Block* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      int sc, mn;
      unpack_scales_k4(w[i].scales, j, &sc, &mn);
      int32_t s = 0;
      for (int l = 0; l < 32; ++l) {
        const int v = 32 * j + l;
        int q;
        if constexpr (kFive) q = q5_of(w[i], v);
        else q = q4_of(w[i].qs, v);
        s += q * x[i].qs[v];
      }
      isum += sc * s;
      msum += mn * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
    }
    const float d = f16_to_f32(w[i].d) * x[i].d, dmin = f16_to_f32(w[i].dmin) * x[i].d;
    sum += d * float(isum) - dmin * float(msum);
  }
  return sum;
}

}  // namespace

float dot_q4_K_q8_K(const BlockQ4_K* w, const BlockQ8_K* x, int64_t nb) { return dot_q45_K<false>(w, x, nb); }
float dot_q5_K_q8_K(const BlockQ5_K* w, const BlockQ8_K* x, int64_t nb) { return dot_q45_K<true>(w, x, nb); }

float dot_q6_K_q8_K(const BlockQ6_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int32_t isum = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t s = 0;
      for (int l = 0; l < 16; ++l) s += q6_of(w[i], 16 * g + l) * x[i].qs[16 * g + l];
      isum += int32_t(w[i].scales[g]) * s;
    }
    sum += f16_to_f32(w[i].d) * x[i].d * float(isum);
  }
  return sum;
}

float dot_kquant_q8_K(DType t, const void* w, const BlockQ8_K* x, int64_t nb) {
  switch (t) {
    case DType::Q4_K: return dot_q4_K_q8_K(static_cast<const BlockQ4_K*>(w), x, nb);
    case DType::Q5_K: return dot_q5_K_q8_K(static_cast<const BlockQ5_K*>(w), x, nb);
    case DType::Q6_K: return dot_q6_K_q8_K(static_cast<const BlockQ6_K*>(w), x, nb);
    default: fail("dot_kquant_q8_K: {} is not a K-quant weight type", dtype_name(t));
  }
}

}  // namespace kvsieve
