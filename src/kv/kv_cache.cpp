#include "kv/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace kvsieve {

int64_t KeepSets::total() const {
  int64_t t = 0;
  for (const auto& k : keep) t += int64_t(k.size());
  return t;
}

KvCache::KvCache(const KvGeometry& g) : geo_(g) {
  check(g.n_layer > 0 && g.n_head_kv > 0 && g.head_dim > 0 && g.repeat > 0,
        "KV cache: bad geometry");
  heads_.resize(size_t(g.n_layer * g.n_stored()));
}

void KvCache::reserve(int64_t rows) {
  for (auto& h : heads_) {
    h.k.reserve(size_t(rows * geo_.head_dim));
    h.v.reserve(size_t(rows * geo_.head_dim));
    h.pos.reserve(size_t(rows));
  }
}

void KvCache::append(int64_t layer, const float* k, const float* v, const int32_t* pos, int64_t n) {
  check(layer >= 0 && layer < geo_.n_layer, "KV cache: layer {} out of range", layer);
  const int64_t hd = geo_.head_dim, stride = geo_.n_head_kv * hd;
  for (int64_t s = 0; s < geo_.n_stored(); ++s) {
    HeadCache& h = at(layer, s);
    check(n == 0 || h.pos.empty() || pos[0] > h.pos.back(),
          "KV cache: position {} is not after the last cached position {}", n ? pos[0] : 0,
          h.pos.empty() ? -1 : h.pos.back());
    const int64_t g = s / geo_.repeat;  // the KV head this copy holds
    for (int64_t t = 0; t < n; ++t) {
      h.k.insert(h.k.end(), k + t * stride + g * hd, k + t * stride + (g + 1) * hd);
      h.v.insert(h.v.end(), v + t * stride + g * hd, v + t * stride + (g + 1) * hd);
      h.pos.push_back(pos[t]);
    }
  }
}

HeadView KvCache::head(int64_t layer, int64_t s) const {
  const HeadCache& h = at(layer, s);
  return {h.k.data(), h.v.data(), h.pos.data(), int64_t(h.pos.size())};
}

int64_t KvCache::rows(int64_t layer, int64_t s) const { return int64_t(at(layer, s).pos.size()); }

int64_t KvCache::max_rows() const {
  int64_t m = 0;
  for (const auto& h : heads_) m = std::max<int64_t>(m, int64_t(h.pos.size()));
  return m;
}

void KvCache::retain(const KeepSets& keep) {
  const int64_t S = geo_.n_stored(), hd = geo_.head_dim;
  check(keep.n_layer == geo_.n_layer && keep.n_heads == S &&
            keep.keep.size() == size_t(geo_.n_layer * S),
        "KV cache: keep sets for {} layers x {} heads, the cache has {} x {}", keep.n_layer,
        keep.n_heads, geo_.n_layer, S);
  // Plan: map every kept position to its row, checking everything first.
  std::vector<std::vector<int64_t>> rows(heads_.size());
  for (int64_t l = 0; l < geo_.n_layer; ++l)
    for (int64_t s = 0; s < S; ++s) {
      const auto& want = keep.at(l, s);
      const auto& pos = at(l, s).pos;
      auto& r = rows[size_t(l * S + s)];
      r.reserve(want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        check(i == 0 || want[i] > want[i - 1],
              "KV cache: keep set of layer {} head {} is not strictly increasing", l, s);
        const auto it = std::lower_bound(pos.begin(), pos.end(), want[i]);
        check(it != pos.end() && *it == want[i],
              "KV cache: layer {} head {} holds no token at position {}", l, s, want[i]);
        r.push_back(it - pos.begin());
      }
    }
  // Apply: compact in place (rows only move towards the front), then give
  // the freed memory back.
  for (size_t i = 0; i < heads_.size(); ++i) {
    HeadCache& h = heads_[i];
    const auto& r = rows[i];
    if (int64_t(r.size()) == int64_t(h.pos.size())) continue;  // all kept
    for (size_t j = 0; j < r.size(); ++j) {
      const int64_t src = r[j];
      if (src != int64_t(j)) {
        std::copy_n(h.k.begin() + src * hd, hd, h.k.begin() + int64_t(j) * hd);
        std::copy_n(h.v.begin() + src * hd, hd, h.v.begin() + int64_t(j) * hd);
        h.pos[j] = h.pos[size_t(src)];
      }
    }
    h.k.resize(r.size() * size_t(hd));
    h.v.resize(r.size() * size_t(hd));
    h.pos.resize(r.size());
    h.k.shrink_to_fit();
    h.v.shrink_to_fit();
    h.pos.shrink_to_fit();
  }
}

void KvCache::erase_from(int32_t pos) {
  for (auto& h : heads_) {
    const size_t n = size_t(std::lower_bound(h.pos.begin(), h.pos.end(), pos) - h.pos.begin());
    h.pos.resize(n);
    h.k.resize(n * size_t(geo_.head_dim));
    h.v.resize(n * size_t(geo_.head_dim));
  }
}

KeepSets KvCache::positions() const {
  KeepSets ks;
  ks.n_layer = geo_.n_layer;
  ks.n_heads = geo_.n_stored();
  ks.keep.reserve(heads_.size());
  for (const auto& h : heads_) ks.keep.push_back(h.pos);
  return ks;
}

void KvCache::replicate(int64_t repeat) {
  check(repeat >= 1, "KV cache: repeat must be positive");
  check(geo_.repeat == 1, "KV cache: already replicated");
  if (repeat == 1) return;
  std::vector<HeadCache> out(size_t(geo_.n_layer * geo_.n_head_kv * repeat));
  for (int64_t l = 0; l < geo_.n_layer; ++l)
    for (int64_t g = 0; g < geo_.n_head_kv; ++g)
      for (int64_t r = 0; r < repeat; ++r)
        out[size_t((l * geo_.n_head_kv + g) * repeat + r)] = heads_[size_t(l * geo_.n_head_kv + g)];
  heads_ = std::move(out);
  geo_.repeat = repeat;
}

size_t KvCache::kv_bytes() const {
  size_t b = 0;
  for (const auto& h : heads_) b += (h.k.size() + h.v.size()) * sizeof(float);
  return b;
}

size_t KvCache::index_bytes() const {
  size_t b = 0;
  for (const auto& h : heads_) b += h.pos.size() * sizeof(int32_t);
  return b;
}

size_t KvCache::capacity_bytes() const {
  size_t b = 0;
  for (const auto& h : heads_)
    b += (h.k.capacity() + h.v.capacity()) * sizeof(float) + h.pos.capacity() * sizeof(int32_t);
  return b;
}

void KvCache::clear() {
  for (auto& h : heads_) {
    h.k.clear();
    h.v.clear();
    h.pos.clear();
  }
}

}  // namespace kvsieve
