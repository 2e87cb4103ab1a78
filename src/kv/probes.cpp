#include "kv/probes.h"

#include <algorithm>

#include "core/error.h"
#include "kv/scoring.h"

namespace kvsieve {

WindowProbes::WindowProbes(int64_t n_layer, int64_t n_head, int64_t head_dim, int64_t window)
    : width_(n_head * head_dim), window_(window), blocks_(size_t(n_layer)) {
  check(window >= 0, "probe window must be >= 0");
}

void WindowProbes::observe(int64_t layer, const float* q, int64_t n, int32_t pos0) {
  if (window_ == 0) return;
  ProbeBlock& b = blocks_[size_t(layer)];
  // Only the batch's last `window` tokens can matter.
  const int64_t skip = std::max<int64_t>(0, n - window_);
  b.q.insert(b.q.end(), q + skip * width_, q + n * width_);
  for (int64_t t = skip; t < n; ++t) b.pos.push_back(pos0 + int32_t(t));
  const int64_t excess = b.n() - window_;
  if (excess > 0) {
    b.q.erase(b.q.begin(), b.q.begin() + excess * width_);
    b.pos.erase(b.pos.begin(), b.pos.begin() + excess);
  }
}

void WindowProbes::clear() {
  for (auto& b : blocks_) {
    b.q.clear();
    b.pos.clear();
  }
}

CumulativeAttention::CumulativeAttention(int64_t n_layer, int64_t n_head, int64_t head_dim)
    : n_layer_(n_layer), n_head_(n_head), head_dim_(head_dim),
      sum_(size_t(n_layer * n_head)), count_(size_t(n_layer * n_head)) {}

void CumulativeAttention::observe(int64_t layer, const float* q, int64_t n, int32_t pos0,
                                  const KvCache& cache, ThreadPool* pool) {
  const int64_t group = n_head_ / cache.n_stored();
  auto heads = [&](int64_t begin, int64_t end, int) {
    std::vector<float> p;
    for (int64_t h = begin; h < end; ++h) {
      const HeadView kv = cache.head(layer, h / group);
      auto& sum = sum_[idx(layer, h)];
      auto& cnt = count_[idx(layer, h)];
      sum.resize(size_t(kv.n), 0.0f);  // new rows start at 0
      cnt.resize(size_t(kv.n), 0.0f);
      p.resize(size_t(kv.n));
      for (int64_t t = 0; t < n; ++t) {
        const int32_t qpos = pos0 + int32_t(t);
        query_attention(q + (t * n_head_ + h) * head_dim_, qpos, kv, head_dim_, p.data());
        const int64_t seen = std::upper_bound(kv.pos, kv.pos + kv.n, qpos) - kv.pos;
        for (int64_t j = 0; j < seen; ++j) {
          sum[size_t(j)] += p[size_t(j)];
          cnt[size_t(j)] += 1.0f;
        }
      }
    }
  };
  if (pool) pool->parallel_for(n_head_, heads);
  else heads(0, n_head_, 0);
}

void CumulativeAttention::retain(const KeepSets& before, const KeepSets& keep) {
  check(before.n_layer == n_layer_ && keep.n_layer == n_layer_ && before.n_heads == keep.n_heads,
        "cumulative attention: keep sets do not match");
  const int64_t group = n_head_ / keep.n_heads;
  for (int64_t l = 0; l < n_layer_; ++l)
    for (int64_t h = 0; h < n_head_; ++h) {
      const auto& was = before.at(l, h / group);
      const auto& now = keep.at(l, h / group);
      auto& sum = sum_[idx(l, h)];
      auto& cnt = count_[idx(l, h)];
      check(sum.size() == was.size(), "cumulative attention: rows out of step with the cache");
      size_t w = 0, j = 0;
      for (size_t i = 0; i < was.size() && j < now.size(); ++i)
        if (was[i] == now[j]) {
          sum[w] = sum[i];
          cnt[w] = cnt[i];
          ++w;
          ++j;
        }
      sum.resize(w);
      cnt.resize(w);
    }
}

void CumulativeAttention::clear() {
  for (auto& s : sum_) s.clear();
  for (auto& c : count_) c.clear();
}

}  // namespace kvsieve
