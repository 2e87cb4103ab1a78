#include "kv/scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/ops.h"
#include "core/error.h"

namespace kvsieve {

void query_attention(const float* q, int32_t qpos, const HeadView& kv, int64_t head_dim,
                     float* out) {
  const int64_t n = std::upper_bound(kv.pos, kv.pos + kv.n, qpos) - kv.pos;
  std::fill(out + n, out + kv.n, 0.0f);
  if (n == 0) return;
  dot_rows_f32(q, kv.k, n, head_dim, head_dim, out);
  scale_f32(out, 1.0f / std::sqrt(float(head_dim)), n);
  softmax_inplace(out, n);
}

void probe_attention(const ProbeBlock& probes, const KvCache& cache, int64_t layer,
                     int64_t n_head, int64_t head_dim, Reduce over_probes,
                     std::vector<std::vector<float>>& out) {
  const int64_t S = cache.n_stored(), KV = cache.geometry().n_head_kv;
  check(n_head % S == 0, "probe_attention: {} query heads over {} stored heads", n_head, S);
  const int64_t group = n_head / S, np = probes.n();
  const bool own = !probes.k.empty();
  check(!own || int64_t(probes.k.size()) == np * KV * head_dim,
        "probe_attention: probe keys do not match the probes");
  out.resize(size_t(n_head));
  std::vector<float> p;
  for (int64_t h = 0; h < n_head; ++h) {
    const int64_t s = h / group;
    const HeadView kv = cache.head(layer, s);
    auto& o = out[size_t(h)];
    o.assign(size_t(kv.n), 0.0f);  // probabilities are >= 0, so 0 also starts a max
    p.resize(size_t(kv.n + (own ? np : 0)));
    for (int64_t t = 0; t < np; ++t) {
      const float* q = probes.q.data() + (t * n_head + h) * head_dim;
      if (!own) {
        query_attention(q, probes.pos[size_t(t)], kv, head_dim, p.data());
      } else {
        // One row of scores: cache rows visible to the probe, then the
        // probes' own keys up to itself; softmax over all of them.
        const int32_t qpos = probes.pos[size_t(t)];
        const int64_t n = std::upper_bound(kv.pos, kv.pos + kv.n, qpos) - kv.pos;
        const int64_t g = s / cache.geometry().repeat;
        dot_rows_f32(q, kv.k, n, head_dim, head_dim, p.data());
        dot_rows_f32(q, probes.k.data() + g * head_dim, t + 1, KV * head_dim, head_dim,
                     p.data() + n);
        scale_f32(p.data(), 1.0f / std::sqrt(float(head_dim)), n + t + 1);
        softmax_inplace(p.data(), n + t + 1);
        std::fill(p.begin() + n, p.begin() + kv.n, 0.0f);
      }
      if (over_probes == Reduce::kMax)
        for (int64_t j = 0; j < kv.n; ++j) o[size_t(j)] = std::max(o[size_t(j)], p[size_t(j)]);
      else
        for (int64_t j = 0; j < kv.n; ++j) o[size_t(j)] += p[size_t(j)];
    }
    if (over_probes == Reduce::kMean && np > 0)
      for (auto& x : o) x /= float(np);
  }
}

void pool1d(const float* in, int64_t n, int64_t kernel, PoolKind kind, float* out) {
  check(kernel >= 1 && kernel % 2 == 1, "pooling kernel must be odd, got {}", kernel);
  if (kind == PoolKind::kNone || kernel == 1) {
    std::copy(in, in + n, out);
    return;
  }
  const int64_t r = kernel / 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t lo = std::max<int64_t>(0, i - r), hi = std::min<int64_t>(n - 1, i + r);
    if (kind == PoolKind::kMax) {
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = lo; j <= hi; ++j) m = std::max(m, in[j]);
      out[i] = m;
    } else {
      float s = 0.0f;  // summed in order, as a float, like torch's CPU kernel
      for (int64_t j = lo; j <= hi; ++j) s += in[j];
      out[i] = s / float(kernel);
    }
  }
}

void reduce_groups(const std::vector<std::vector<float>>& in, int64_t group, Reduce how,
                   std::vector<std::vector<float>>& out) {
  check(group >= 1 && int64_t(in.size()) % group == 0, "reduce_groups: {} heads in groups of {}",
        in.size(), group);
  const int64_t n_out = int64_t(in.size()) / group;
  out.resize(size_t(n_out));
  for (int64_t g = 0; g < n_out; ++g) {
    const auto& first = in[size_t(g * group)];
    auto& o = out[size_t(g)];
    o = first;
    for (int64_t i = 1; i < group; ++i) {
      const auto& x = in[size_t(g * group + i)];
      check(x.size() == first.size(), "reduce_groups: heads of one group differ in length");
      for (size_t j = 0; j < x.size(); ++j)
        o[j] = how == Reduce::kMax ? std::max(o[j], x[j]) : o[j] + x[j];
    }
    if (how == Reduce::kMean)
      for (auto& v : o) v /= float(group);
  }
}

}  // namespace kvsieve
