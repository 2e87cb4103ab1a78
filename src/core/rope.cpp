#include "core/rope.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace kvsieve {

RopeFreqs RopeFreqs::make(int64_t head_dim, float theta, const RopeScaling& s,
                          const float* freq_factors) {
  check(head_dim > 0 && head_dim % 2 == 0 && head_dim <= 65536,
        "RoPE: head dim {} must be positive and even", head_dim);
  check(std::isfinite(theta) && theta > 0, "RoPE: bad theta {}", theta);
  RopeFreqs f;
  f.head_dim = head_dim;
  const int64_t half = head_dim / 2;
  f.inv_freq.resize(size_t(half));
  const float d = float(head_dim);
  for (int64_t i = 0; i < half; ++i) {
    // transformers: 1.0 / (base ** (arange(0, d, 2).float() / d)), all f32.
    // The exponent is an f32 quotient; pow is taken in double and rounded
    // once (torch's f32 pow is within an ulp of this).
    const float e = float(2 * i) / d;
    const float p = float(std::pow(double(theta), double(e)));
    f.inv_freq[size_t(i)] = 1.0f / p;
  }

  switch (s.type) {
    case RopeScalingType::kNone:
      break;
    case RopeScalingType::kLinear:
      check(std::isfinite(s.factor) && s.factor > 0, "RoPE: bad linear scaling factor {}", s.factor);
      for (auto& v : f.inv_freq) v = v / s.factor;
      break;
    case RopeScalingType::kLlama3: {
      check(std::isfinite(s.factor) && s.factor > 0, "RoPE: bad llama3 scaling factor {}", s.factor);
      check(std::isfinite(s.low_freq_factor) && std::isfinite(s.high_freq_factor) &&
                s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor,
            "RoPE: llama3 scaling needs 0 < low_freq_factor < high_freq_factor (got {} and {})",
            s.low_freq_factor, s.high_freq_factor);
      check(s.original_max_position > 0, "RoPE: llama3 original max position {} must be positive",
            s.original_max_position);
      // transformers' _compute_llama3_parameters, in f32 and in its order of
      // operations (python scalars meet f32 tensors, so they become f32).
      const double orig = double(s.original_max_position);
      const float low_freq_wavelen = float(orig / double(s.low_freq_factor));
      const float high_freq_wavelen = float(orig / double(s.high_freq_factor));
      const float two_pi = float(2.0 * std::numbers::pi);
      const float span = float(double(s.high_freq_factor) - double(s.low_freq_factor));
      for (auto& inv : f.inv_freq) {
        const float wavelen = two_pi / inv;
        if (wavelen < high_freq_wavelen) continue;  // high frequency: unchanged
        if (wavelen > low_freq_wavelen) {           // low frequency: scaled
          inv = inv / s.factor;
          continue;
        }
        const float smooth = (float(orig) / wavelen - s.low_freq_factor) / span;
        inv = (1.0f - smooth) * inv / s.factor + smooth * inv;
      }
      break;
    }
  }

  if (freq_factors) {
    for (int64_t i = 0; i < half; ++i) {
      const float ff = freq_factors[i];
      check(std::isfinite(ff) && ff > 0, "RoPE: frequency factor {} of rope_freqs is {} (must be > 0)",
            i, ff);
      f.inv_freq[size_t(i)] /= ff;
    }
  }
  return f;
}

void rope_cos_sin(const RopeFreqs& freqs, int64_t pos, float* cos_out, float* sin_out) {
  const float p = float(pos);
  const size_t half = freqs.inv_freq.size();
  for (size_t i = 0; i < half; ++i) {
    const float angle = p * freqs.inv_freq[i];  // f32 product, as transformers
    cos_out[i] = float(std::cos(double(angle)));
    sin_out[i] = float(std::sin(double(angle)));
  }
}

}  // namespace kvsieve
