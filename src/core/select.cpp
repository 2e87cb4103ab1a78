#include "core/select.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace kvsieve {

std::vector<int64_t> top_k(const float* scores, int64_t n, int64_t k) {
  k = std::clamp<int64_t>(k, 0, n);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  auto better = [scores](int64_t a, int64_t b) {
    const float x = scores[a], y = scores[b];
    const bool nx = std::isnan(x), ny = std::isnan(y);
    if (nx != ny) return ny;  // a number beats NaN
    if (!nx && x != y) return x > y;
    return a < b;  // ties: earlier position first
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(size_t(k));
  return idx;
}

int64_t protected_count(int64_t n, Protect p) {
  const int64_t s = std::min(p.sinks, n), w = std::min(p.window, n);
  return std::min(n, s + w);
}

std::vector<int64_t> select_rows(const float* scores, int64_t n, int64_t budget, Protect p) {
  check(budget >= 0, "budget must not be negative");
  std::vector<int64_t> keep;
  if (budget >= n) {
    keep.resize(size_t(n));
    std::iota(keep.begin(), keep.end(), int64_t(0));
    return keep;
  }
  const int64_t sinks = std::min(p.sinks, n), first_window = std::max(sinks, n - p.window);
  check(protected_count(n, p) <= budget,
        "a budget of {} tokens cannot hold the {} protected ones (sinks {} + window {})", budget,
        protected_count(n, p), p.sinks, p.window);
  // Candidates are rows [sinks, first_window); pick the best of them.
  const int64_t n_cand = first_window - sinks;
  const int64_t k = budget - protected_count(n, p);
  std::vector<int64_t> best = top_k(scores + sinks, n_cand, k);
  keep.reserve(size_t(budget));
  for (int64_t i = 0; i < sinks; ++i) keep.push_back(i);
  for (int64_t b : best) keep.push_back(b + sinks);
  for (int64_t i = first_window; i < n; ++i) keep.push_back(i);
  std::sort(keep.begin(), keep.end());
  return keep;
}

}  // namespace kvsieve
