#include "kv/kv_store.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace kvsieve {

bool kv_type_supported(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

DType kv_type_from_name(const std::string& name) {
  const auto t = dtype_from_name(name);
  check(t && kv_type_supported(*t), "unknown KV cache type '{}' (f32, f16, bf16)", name);
  return *t;
}

KvStore::KvStore(Backend& be, const KvGeometry& g, DType type) : be_(&be), geo_(g), type_(type) {
  check(g.n_layer > 0 && g.n_head_kv > 0 && g.head_dim > 0 && g.repeat > 0, "KV cache: bad geometry");
  check(kv_type_supported(type), "KV cache: element type {} is not supported (f32, f16, bf16)",
        dtype_name(type));
  layers_.resize(size_t(g.n_layer));
  for (auto& L : layers_) {
    L.k.bind(be);
    L.v.bind(be);
    L.pos_dev.bind(be);
    L.rows.assign(size_t(g.n_stored()), 0);
  }
}

KvLayerView KvStore::layer(int64_t l) const {
  const Layer& L = layers_[size_t(l)];
  KvLayerView v;
  v.type = type_;
  v.k = const_cast<uint8_t*>(L.k.data());
  v.v = const_cast<uint8_t*>(L.v.data());
  v.pos = be_->host_memory() ? const_cast<int32_t*>(L.pos.data()) : const_cast<int32_t*>(L.pos_dev.data());
  v.rows = L.rows.data();
  v.n_stored = geo_.n_stored();
  v.capacity = L.cap;
  v.head_dim = geo_.head_dim;
  v.repeat = geo_.repeat;
  return v;
}

std::span<const int32_t> KvStore::positions(int64_t l, int64_t s) const {
  const Layer& L = layers_[size_t(l)];
  return {L.pos.data() + s * L.cap, size_t(L.rows[size_t(s)])};
}

int64_t KvStore::max_rows(int64_t l) const {
  const auto& r = layers_[size_t(l)].rows;
  return r.empty() ? 0 : *std::max_element(r.begin(), r.end());
}

int64_t KvStore::max_rows() const {
  int64_t m = 0;
  for (int64_t l = 0; l < geo_.n_layer; ++l) m = std::max(m, max_rows(l));
  return m;
}

void KvStore::grow(Layer& L, int64_t cap) {
  if (cap <= L.cap) return;
  const int64_t S = geo_.n_stored();
  const size_t rb = row_bytes();
  DeviceArray<uint8_t> k(*be_, int64_t(size_t(S * cap) * rb)), v(*be_, int64_t(size_t(S * cap) * rb));
  std::vector<int32_t> pos(size_t(S * cap), 0);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = L.rows[size_t(s)];
    if (n == 0) continue;
    be_->copy(k.data() + size_t(s * cap) * rb, L.k.data() + size_t(s * L.cap) * rb, size_t(n) * rb);
    be_->copy(v.data() + size_t(s * cap) * rb, L.v.data() + size_t(s * L.cap) * rb, size_t(n) * rb);
    std::copy_n(L.pos.begin() + s * L.cap, n, pos.begin() + s * cap);
  }
  L.k = std::move(k);
  L.v = std::move(v);
  L.pos = std::move(pos);
  if (!be_->host_memory()) {
    L.pos_dev.resize(S * cap);
    be_->upload(L.pos_dev.data(), L.pos.data(), L.pos.size() * sizeof(int32_t));
  }
  L.cap = cap;
}

void KvStore::reserve(int64_t rows) {
  check(rows >= 0 && rows < (int64_t(1) << 31), "KV cache: cannot hold {} rows", rows);
  for (auto& L : layers_) grow(L, rows);
}

void KvStore::append(int64_t layer, const float* k, const float* v, const int32_t* pos, int64_t n) {
  check(layer >= 0 && layer < geo_.n_layer, "KV cache: layer {} out of range", layer);
  if (n <= 0) return;
  Layer& L = layers_[size_t(layer)];
  const int64_t S = geo_.n_stored();
  for (int64_t t = 1; t < n; ++t)
    check(pos[t] > pos[t - 1], "KV cache: new positions {} and {} are not increasing", pos[t - 1],
          pos[t]);
  int64_t most = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t r = L.rows[size_t(s)];
    check(r == 0 || pos[0] > L.pos[size_t(s * L.cap + r - 1)],
          "KV cache: position {} is not after the last cached position {}", pos[0],
          r ? L.pos[size_t(s * L.cap + r - 1)] : -1);
    most = std::max(most, r);
  }
  // Geometric growth keeps appends amortised O(1); a factor of 1.25 rather
  // than 2 because the whole cache is the memory that matters here (a few
  // decoded tokens after a long prompt must not double it).
  if (most + n > L.cap) grow(L, std::max(most + n, L.cap + std::max<int64_t>(L.cap / 4, 64)));
  be_->kv_append(this->layer(layer), k, v, pos, n, geo_.n_head_kv);
  for (int64_t s = 0; s < S; ++s) {  // the host's copy of the positions (the same memory on a CPU)
    int64_t& r = L.rows[size_t(s)];
    if (!be_->host_memory()) std::copy_n(pos, n, L.pos.begin() + s * L.cap + r);
    r += n;
  }
}

KeepSets KvStore::positions() const {
  KeepSets ks = KeepSets::empty(geo_.n_layer, geo_.n_stored());
  ks.off.clear();
  ks.off.push_back(0);
  for (int64_t l = 0; l < geo_.n_layer; ++l)
    for (int64_t s = 0; s < geo_.n_stored(); ++s) {
      const auto p = positions(l, s);
      ks.items.insert(ks.items.end(), p.begin(), p.end());
      ks.off.push_back(int64_t(ks.items.size()));
    }
  return ks;
}

RowSelection KvStore::rows_of(const KeepSets& keep) const {
  const int64_t S = geo_.n_stored();
  check(keep.n_layer == geo_.n_layer && keep.n_heads == S &&
            keep.off.size() == size_t(geo_.n_layer * S + 1),
        "KV cache: keep sets for {} layers x {} heads, the cache has {} x {}", keep.n_layer,
        keep.n_heads, geo_.n_layer, S);
  RowSelection sel;
  sel.n_layer = keep.n_layer;
  sel.n_heads = S;
  sel.off = keep.off;
  sel.items.reserve(keep.items.size());
  for (int64_t l = 0; l < geo_.n_layer; ++l)
    for (int64_t s = 0; s < S; ++s) {
      const auto want = keep.at(l, s);
      const auto pos = positions(l, s);
      for (size_t i = 0; i < want.size(); ++i) {
        check(i == 0 || want[i] > want[i - 1],
              "KV cache: keep set of layer {} head {} is not strictly increasing", l, s);
        const auto it = std::lower_bound(pos.begin(), pos.end(), want[i]);
        check(it != pos.end() && *it == want[i], "KV cache: layer {} head {} holds no token at position {}",
              l, s, want[i]);
        sel.items.push_back(it - pos.begin());
      }
    }
  return sel;
}

KeepSets KvStore::positions_of(const RowSelection& sel) const {
  check_selection(sel, sel.n_heads / n_stored());
  const int64_t r = sel.n_heads / n_stored();
  KeepSets ks;
  ks.n_layer = sel.n_layer;
  ks.n_heads = sel.n_heads;
  ks.off = sel.off;
  ks.items.resize(sel.items.size());
  for (int64_t l = 0; l < sel.n_layer; ++l)
    for (int64_t h = 0; h < sel.n_heads; ++h) {
      const auto rows = sel.at(l, h);
      const auto pos = positions(l, h / r);
      auto out = ks.at(l, h);
      for (size_t j = 0; j < rows.size(); ++j) out[j] = pos[size_t(rows[j])];
    }
  return ks;
}

void KvStore::check_selection(const RowSelection& sel, int64_t r) const {
  const int64_t S = geo_.n_stored();
  check(r >= 1 && sel.n_layer == geo_.n_layer && sel.n_heads == S * r &&
            sel.off.size() == size_t(sel.n_layer * sel.n_heads + 1) && sel.off.front() == 0 &&
            sel.off.back() == int64_t(sel.items.size()),
        "KV cache: a selection of {} layers x {} heads does not fit the cache's {} x {}",
        sel.n_layer, sel.n_heads, geo_.n_layer, S);
  for (int64_t l = 0; l < sel.n_layer; ++l)
    for (int64_t h = 0; h < sel.n_heads; ++h) {
      check(sel.off[size_t(l * sel.n_heads + h + 1)] >= sel.off[size_t(l * sel.n_heads + h)],
            "KV cache: bad selection offsets");
      const auto rows = sel.at(l, h);
      const int64_t n = this->rows(l, h / r);
      for (size_t j = 0; j < rows.size(); ++j)
        check(rows[j] >= 0 && rows[j] < n && (j == 0 || rows[j] > rows[j - 1]),
              "KV cache: layer {} head {}: row {} is not a row of the head ({} rows) in increasing "
              "order", l, h, rows[j], n);
    }
}

void KvStore::gather_layer(const Layer& src, const RowSelection& sel, int64_t l, int64_t r,
                           Layer& dst, int64_t n_dst, int64_t headroom) const {
  const size_t rb = row_bytes();
  int64_t most = 0;
  for (int64_t h = 0; h < n_dst; ++h) most = std::max(most, sel.count(l, h));
  dst.cap = std::max<int64_t>(most + std::max<int64_t>(0, headroom), 1);
  dst.k.resize(int64_t(size_t(n_dst * dst.cap) * rb));
  dst.v.resize(int64_t(size_t(n_dst * dst.cap) * rb));
  dst.pos.assign(size_t(n_dst * dst.cap), 0);
  dst.rows.assign(size_t(n_dst), 0);
  const std::vector<int64_t> off = sel.layer_offsets(l);
  DeviceArray<int64_t> idx_dev;
  const int64_t* idx = sel.layer_items(l);
  if (!be_->host_memory() && off.back() > 0) {
    idx_dev.bind(*be_);
    idx_dev.resize(off.back());
    be_->upload(idx_dev.data(), idx, size_t(off.back()) * sizeof(int64_t));
    idx = idx_dev.data();
  }
  GatherArgs g;
  g.n_heads = n_dst;
  g.src_div = r;
  g.sel_div = 1;
  g.ld_src = src.cap;
  g.ld_dst = dst.cap;
  g.row_bytes = rb;
  g.idx = idx;
  g.off = off.data();
  if (off.back() > 0) {
    g.src = src.k.data();
    g.dst = dst.k.data();
    be_->gather(g);
    g.src = src.v.data();
    g.dst = dst.v.data();
    be_->gather(g);
  }
  for (int64_t h = 0; h < n_dst; ++h) {
    const auto rows = sel.at(l, h);
    const int32_t* sp = src.pos.data() + (h / r) * src.cap;
    int32_t* dp = dst.pos.data() + h * dst.cap;
    for (size_t j = 0; j < rows.size(); ++j) dp[j] = sp[rows[j]];
    dst.rows[size_t(h)] = int64_t(rows.size());
  }
  if (!be_->host_memory()) {
    dst.pos_dev.resize(int64_t(dst.pos.size()));
    be_->upload(dst.pos_dev.data(), dst.pos.data(), dst.pos.size() * sizeof(int32_t));
  }
}

KvStore KvStore::gather(const RowSelection& sel, int64_t headroom) const {
  check(sel.n_heads % n_stored() == 0 && sel.n_heads > 0,
        "KV cache: a selection of {} heads does not fit the cache's {}", sel.n_heads, n_stored());
  const int64_t r = sel.n_heads / n_stored();
  check_selection(sel, r);
  KvGeometry g = geo_;
  g.repeat *= r;
  KvStore out(*be_, g, type_);
  for (int64_t l = 0; l < geo_.n_layer; ++l) {
    Layer& d = out.layers_[size_t(l)];
    gather_layer(layers_[size_t(l)], sel, l, r, d, sel.n_heads, headroom);
  }
  return out;
}

void KvStore::retain_rows(const RowSelection& sel, int64_t headroom) {
  check_selection(sel, 1);
  for (int64_t l = 0; l < geo_.n_layer; ++l) {
    Layer& src = layers_[size_t(l)];
    bool all = true;
    for (int64_t s = 0; s < n_stored() && all; ++s) all = sel.count(l, s) == src.rows[size_t(s)];
    if (all) continue;  // every row kept: nothing moves
    Layer d;
    d.k.bind(*be_);
    d.v.bind(*be_);
    d.pos_dev.bind(*be_);
    gather_layer(src, sel, l, 1, d, n_stored(), headroom);
    src = std::move(d);  // the old arenas are freed here, one layer at a time
  }
}

void KvStore::retain(const KeepSets& keep, int64_t headroom) {
  retain_rows(rows_of(keep), headroom);
}

void KvStore::erase_from(int32_t pos) {
  for (auto& L : layers_)
    for (int64_t s = 0; s < n_stored(); ++s) {
      const int32_t* p = L.pos.data() + s * L.cap;
      L.rows[size_t(s)] = std::lower_bound(p, p + L.rows[size_t(s)], pos) - p;
    }
}

void KvStore::replicate(int64_t repeat) {
  check(repeat >= 1, "KV cache: repeat must be positive");
  check(geo_.repeat == 1, "KV cache: already replicated");
  if (repeat == 1) return;
  const int64_t S = n_stored();
  RowSelection all = RowSelection::empty(geo_.n_layer, S * repeat);
  all.off.clear();
  all.off.push_back(0);
  for (int64_t l = 0; l < geo_.n_layer; ++l)
    for (int64_t h = 0; h < S * repeat; ++h) {
      for (int64_t j = 0; j < rows(l, h / repeat); ++j) all.items.push_back(j);
      all.off.push_back(int64_t(all.items.size()));
    }
  *this = gather(all);
}

void KvStore::clear() {
  for (auto& L : layers_) std::fill(L.rows.begin(), L.rows.end(), 0);
}

size_t KvStore::kv_bytes() const {
  size_t n = 0;
  for (const auto& L : layers_)
    for (int64_t r : L.rows) n += size_t(r);
  return 2 * n * row_bytes();
}

size_t KvStore::index_bytes() const {
  size_t n = 0;
  for (const auto& L : layers_)
    for (int64_t r : L.rows) n += size_t(r);
  return n * sizeof(int32_t);
}

size_t KvStore::capacity_bytes() const {
  size_t b = 0;
  for (const auto& L : layers_)
    b += L.k.bytes() + L.v.bytes() + L.pos.size() * sizeof(int32_t) + L.pos_dev.bytes();
  return b;
}

void KvStore::read_head(int64_t l, int64_t s, std::vector<float>* k, std::vector<float>* v) const {
  const Layer& L = layers_[size_t(l)];
  const int64_t n = L.rows[size_t(s)], hd = geo_.head_dim;
  const size_t rb = row_bytes();
  std::vector<uint8_t> raw(size_t(n) * rb);
  for (int which = 0; which < 2; ++which) {
    std::vector<float>* out = which == 0 ? k : v;
    if (!out) continue;
    const DeviceArray<uint8_t>& a = which == 0 ? L.k : L.v;
    if (n) be_->download(raw.data(), a.data() + size_t(s * L.cap) * rb, raw.size());
    out->resize(size_t(n * hd));
    for (int64_t j = 0; j < n; ++j)
      dequantize_row(type_, raw.data() + size_t(j) * rb, out->data() + j * hd, hd);
  }
}

}  // namespace kvsieve
