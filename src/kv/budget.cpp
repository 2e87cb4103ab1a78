#include "kv/budget.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace kvsieve {

std::string Budget::describe() const {
  return by_ratio() ? fmt::format("ratio {} removed", ratio) : fmt::format("{} tokens per head", tokens);
}

void validate(const Budget& b) {
  check(b.tokens >= 0, "the KV budget must be at least 1 token, got {}", b.tokens);
  check(b.tokens > 0 || b.ratio != 0,
        "a KV method needs a budget: tokens kept per head (--kv-budget) or a ratio of the "
        "prompt removed (--kv-ratio)");
  if (b.tokens == 0)
    check(b.ratio > 0 && b.ratio < 1, "the KV ratio (fraction removed) must be in (0, 1), got {}",
          b.ratio);
}

int64_t uniform_keep(const Budget& b, int64_t n) {
  if (!b.by_ratio()) return std::min(b.tokens, n);
  return int64_t(double(n) * (1.0 - b.ratio));
}

std::vector<int64_t> layer_keep(const Budget& b, Allocation alloc, int64_t n, int64_t L,
                                int64_t w, double beta) {
  std::vector<int64_t> keep(size_t(L), uniform_keep(b, n));
  if (alloc != Allocation::kPyramid) return keep;
  if (!b.by_ratio()) {
    // KVCache-Factory's PyramidKV, in integers.
    const int64_t C = b.tokens;
    if (n < C || n < 2 * (C - w)) return keep;  // not cut, or SnapKV-like uniform
    int64_t min_num = (C - w) / int64_t(beta), max_num = 2 * (C - w) - min_num;
    if (max_num >= n - w) {
      max_num = n - w;
      min_num = 2 * (C - w) - max_num;
    }
    const int64_t steps = L > 1 ? (max_num - min_num) / (L - 1) : 0;
    for (int64_t l = 0; l < L; ++l) keep[size_t(l)] = std::min(n, max_num - l * steps + w);
    return keep;
  }
  // kvpress's PyramidKVPress, in doubles; the window is inside the budget.
  const double mcp = double(w) + double(n) * (1.0 - b.ratio);
  double min_num = (mcp - double(w)) / beta, max_num = 2 * (mcp - double(w)) - min_num;
  if (max_num >= double(n - w)) {
    max_num = double(n - w);
    min_num = 2 * (mcp - double(w)) - max_num;
  }
  if (!(double(n) >= max_num && max_num >= min_num && min_num >= double(w))) {
    std::fill(keep.begin(), keep.end(), int64_t(std::nearbyint(double(n) * (1.0 - b.ratio))));
    return keep;
  }
  const double steps = L > 1 ? (max_num - min_num) / double(L - 1) : 0.0;
  for (int64_t l = 0; l < L; ++l)
    keep[size_t(l)] = int64_t(std::nearbyint(max_num - double(l) * steps));  // half to even
  return keep;
}

}  // namespace kvsieve
