#include "core/adakv_split.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/error.h"

namespace kvsieve {

namespace {

struct Cand {
  float score;
  int64_t head, row;
};
// Higher score first, NaN last (as top_k ranks them), then the lower head,
// then the earlier row.
bool cand_better(const Cand& a, const Cand& b) {
  const bool na = std::isnan(a.score), nb = std::isnan(b.score);
  if (na != nb) return nb;
  if (!na && a.score != b.score) return a.score > b.score;
  if (a.head != b.head) return a.head < b.head;
  return a.row < b.row;
}

// Candidate rows of a head of n rows: those not protected, [sinks, n - window).
std::pair<int64_t, int64_t> candidates(int64_t n, Protect p) {
  const int64_t s = std::min(p.sinks, n);
  return {s, std::max(s, n - p.window)};
}

}  // namespace

std::vector<int64_t> adakv_split(const float* scores, int64_t ld, const int64_t* rows, int64_t H,
                                 int64_t keep, Protect p, double floor, const std::string& variant) {
  std::vector<int64_t> out(static_cast<size_t>(H));
  if (variant == "kvpress") {
    const int64_t safe = int64_t(double(keep) * floor);
    std::vector<Cand> rest;
    int64_t forced_total = 0;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t n = rows[h];
      if (keep >= n) {
        out[size_t(h)] = n;
        forced_total += keep;  // the head's share is spent on itself
        continue;
      }
      const auto [lo, hi] = candidates(n, p);
      const int64_t prot = n - (hi - lo);
      check(prot <= keep, "a budget of {} tokens cannot hold the {} protected ones", keep, prot);
      // The head's best `safe` rows, protected ones counting first.
      const int64_t extra = std::clamp<int64_t>(safe - prot, 0, hi - lo);
      std::vector<int64_t> best = top_k(scores + h * ld + lo, hi - lo, hi - lo);
      out[size_t(h)] = prot + extra;
      forced_total += prot + extra;
      for (size_t i = size_t(extra); i < best.size(); ++i)
        rest.push_back({scores[h * ld + lo + best[i]], h, lo + best[i]});
    }
    const int64_t free_slots = std::max<int64_t>(0, keep * H - forced_total);
    const int64_t k = std::min<int64_t>(free_slots, int64_t(rest.size()));
    std::partial_sort(rest.begin(), rest.begin() + k, rest.end(), cand_better);
    for (int64_t i = 0; i < k; ++i) ++out[size_t(rest[size_t(i)].head)];
    return out;
  }
  check(variant == "kvcache-factory", "unknown Ada-KV variant '{}'", variant);
  const int64_t B = keep - p.window - p.sinks, F = int64_t(double(B) * floor);
  std::vector<Cand> all;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t n = rows[h];
    const auto [lo, hi] = candidates(n, p);
    if (keep >= n || B >= hi - lo) {  // nothing to cut in this head (KVCache-Factory skips)
      out[size_t(h)] = std::min(keep, n);
      continue;
    }
    std::vector<float> sorted(scores + h * ld + lo, scores + h * ld + hi);
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const double top = std::accumulate(sorted.begin(), sorted.begin() + B, 0.0);
    const double sum = std::accumulate(sorted.begin(), sorted.end(), 0.0);
    const float factor = sum > 0 ? float(top / sum) : 1.0f;
    for (int64_t i = 0; i < int64_t(sorted.size()); ++i)
      all.push_back({sorted[size_t(i)] * factor, h, i});
    out[size_t(h)] = -1;  // decided below
  }
  std::vector<int64_t> count(size_t(H), 0);
  int64_t n_cut_heads = 0;
  for (int64_t h = 0; h < H; ++h) n_cut_heads += out[size_t(h)] < 0;
  const int64_t k = std::min<int64_t>(B * n_cut_heads, int64_t(all.size()));
  std::partial_sort(all.begin(), all.begin() + k, all.end(), cand_better);
  for (int64_t i = 0; i < k; ++i) ++count[size_t(all[size_t(i)].head)];
  for (int64_t h = 0; h < H; ++h) {
    if (out[size_t(h)] >= 0) continue;
    const int64_t n = rows[h];
    const auto [lo, hi] = candidates(n, p);
    const int64_t cap = int64_t(std::nearbyint(double(count[size_t(h)]) * (1.0 - floor) + double(F)));
    out[size_t(h)] = std::min(cap, hi - lo) + (n - (hi - lo));
  }
  return out;
}

}  // namespace kvsieve
