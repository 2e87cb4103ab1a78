#include "kv/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace kvsieve {

KvCache::KvCache(const KvGeometry& g) : geo_(g) {
  check(g.n_layer > 0 && g.n_head_kv > 0 && g.head_dim > 0, "KV cache: bad geometry");
  heads_.resize(size_t(g.n_layer * g.n_head_kv));
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
  for (int64_t g = 0; g < geo_.n_head_kv; ++g) {
    HeadCache& h = at(layer, g);
    check(n == 0 || h.pos.empty() || pos[0] > h.pos.back(),
          "KV cache: position {} is not after the last cached position {}", n ? pos[0] : 0,
          h.pos.empty() ? -1 : h.pos.back());
    for (int64_t t = 0; t < n; ++t) {
      h.k.insert(h.k.end(), k + t * stride + g * hd, k + t * stride + (g + 1) * hd);
      h.v.insert(h.v.end(), v + t * stride + g * hd, v + t * stride + (g + 1) * hd);
      h.pos.push_back(pos[t]);
    }
  }
}

HeadView KvCache::head(int64_t layer, int64_t kv_head) const {
  const HeadCache& h = at(layer, kv_head);
  return {h.k.data(), h.v.data(), h.pos.data(), int64_t(h.pos.size())};
}

int64_t KvCache::rows(int64_t layer, int64_t kv_head) const {
  return int64_t(at(layer, kv_head).pos.size());
}

int64_t KvCache::max_rows() const {
  int64_t m = 0;
  for (const auto& h : heads_) m = std::max<int64_t>(m, int64_t(h.pos.size()));
  return m;
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const auto& h : heads_)
    b += (h.k.size() + h.v.size()) * sizeof(float) + h.pos.size() * sizeof(int32_t);
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
