#include "model/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvsieve {

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  check(std::isfinite(p.temperature) && p.temperature >= 0, "temperature must be >= 0, got {}",
        p.temperature);
  check(p.top_k >= 0, "top-k must be >= 0, got {}", p.top_k);
  check(p.top_p > 0 && p.top_p <= 1, "top-p must be in (0, 1], got {}", p.top_p);
}

int32_t Sampler::argmax(const float* logits, int64_t n_vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return int32_t(best);
}

int32_t Sampler::sample(const float* logits, int64_t n_vocab) {
  if (p_.temperature == 0.0f) return argmax(logits, n_vocab);
  cand_.resize(size_t(n_vocab));
  for (int64_t i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {logits[i] / p_.temperature, int32_t(i)};
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t n = cand_.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + p_.top_k, cand_.end(), by_logit);
    n = size_t(p_.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Softmax over the kept candidates (sorted, so [0] holds the maximum).
  const float mx = cand_[0].first;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    cand_[i].first = std::exp(cand_[i].first - mx);
    sum += cand_[i].first;
  }
  // Nucleus: the smallest prefix whose probability reaches top_p.
  if (p_.top_p < 1.0f) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      acc += cand_[i].first / sum;
      if (acc >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
    sum = 0;
    for (size_t i = 0; i < n; ++i) sum += cand_[i].first;
  }
  std::uniform_real_distribution<double> u(0.0, sum);
  const double r = u(rng_);
  double acc = 0;
  for (size_t i = 0; i < n; ++i) {
    acc += cand_[i].first;
    if (r < acc) return cand_[i].second;
  }
  return cand_[n - 1].second;
}

}  // namespace kvsieve
