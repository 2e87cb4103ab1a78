// Next-token choice from logits: greedy (temperature 0), or sampling with
// temperature, top-k and top-p (nucleus), from a seeded generator so a run is
// reproducible.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace kvsieve {

struct SamplerParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // logits: [n_vocab]. Greedy picks the lowest id among equal maxima.
  int32_t sample(const float* logits, int64_t n_vocab);
  static int32_t argmax(const float* logits, int64_t n_vocab);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;  // (prob or logit, id)
};

}  // namespace kvsieve
