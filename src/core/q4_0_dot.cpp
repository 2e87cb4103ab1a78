#include "core/q4_0_dot.h"

#include <algorithm>
#include <cmath>

namespace kvsieve {

void quantize_row_q8_0x(const float* x, BlockQ8_0x* y, int64_t n) {
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0;
    for (int v = 0; v < kQK; ++v) amax = std::max(amax, std::fabs(xb[v]));
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    y[i].d = amax / 127.0f;
    int32_t s = 0;
    for (int v = 0; v < kQK; ++v) {
      const int q = std::clamp(int(std::nearbyint(xb[v] * id)), -127, 127);
      y[i].qs[v] = int8_t(q);
      s += q;
    }
    y[i].sum = s;
  }
}

float dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0x* x, int64_t nb) {
  float sum = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      isum += int32_t(w[b].nib[j] & 0xF) * x[b].qs[j];
      isum += int32_t(w[b].nib[j] >> 4) * x[b].qs[j + kQK / 2];
    }
    isum -= 8 * x[b].sum;
    const float s = f16_to_f32(w[b].d) * x[b].d;
    sum += float(isum) * s;
  }
  return sum;
}

}  // namespace kvsieve
