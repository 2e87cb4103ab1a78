// Rotary position embeddings: the per-dimension frequencies (with the
// scalings Llama models use) and the cos/sin of one position. The rotation
// itself is a device op (Backend::rope; on the CPU apply_rope of backend/cpu/ops.h).
//
// Numerics follow Hugging Face transformers, which our logits are checked
// against at 1e-4: inv_freq is computed in f32 (theta^(-2i/d) rounded to f32,
// then the scaling rules in f32 in transformers' order), and the angle is the
// f32 product float(pos) * inv_freq[i], exactly as transformers' f32 matmul of
// inv_freq by the positions. Only cos/sin of that f32 angle are taken in
// double and rounded once (torch's f32 cos/sin are within an ulp of that).
// So at large positions we reproduce transformers' angle rounding instead of
// the exact angle, which is what the logit comparison needs.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rope_types.h"

namespace kvsieve {

struct RopeFreqs {
  int64_t head_dim = 0;
  std::vector<float> inv_freq;  // [head_dim / 2]

  // theta^(-2i/head_dim) for i in [0, head_dim/2), then the scaling:
  //  none;  linear: inv / factor;
  //  llama3 (Meta's rule): wavelen = 2π/inv; wavelen < orig/high_freq_factor: keep;
  //    wavelen > orig/low_freq_factor: inv / factor; otherwise
  //    smooth = (orig/wavelen - low)/(high - low), inv = (1-smooth)·inv/factor + smooth·inv.
  // freq_factors [head_dim/2] (llama.cpp's rope_freqs.weight), when given,
  // divide the result: inv[i] /= freq_factors[i].
  // Throws Error on an odd or non-positive head_dim, a bad theta, scaling
  // parameter or frequency factor (they come from model files).
  static RopeFreqs make(int64_t head_dim, float theta, const RopeScaling& scaling = {},
                        const float* freq_factors = nullptr);
};

// cos_out, sin_out [head_dim/2]: cos/sin of float(pos) * inv_freq[i].
void rope_cos_sin(const RopeFreqs& freqs, int64_t pos, float* cos_out, float* sin_out);

}  // namespace kvsieve
