// What a cut keeps, per (layer, stored head), as flat arrays with offsets:
// head (l, s) is entry i = l * n_heads + s, and its items are
// items[off[i] .. off[i + 1]).
//   KeepSets:     the original positions kept, strictly increasing per head
//                 (what reports, --dump-kept and tests speak of);
//   RowSelection: the rows kept, as indices into the store's rows of that
//                 head, increasing (what KvStore::retain and gathers read).
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace kvsieve {

template <typename T>
struct FlatSets {
  int64_t n_layer = 0;
  int64_t n_heads = 0;          // stored heads per layer
  std::vector<int64_t> off;     // [n_layer * n_heads + 1]
  std::vector<T> items;

  // An empty set for every head.
  static FlatSets empty(int64_t n_layer, int64_t n_heads) {
    FlatSets f;
    f.n_layer = n_layer;
    f.n_heads = n_heads;
    f.off.assign(size_t(n_layer * n_heads + 1), 0);
    return f;
  }
  // From one list per head, [n_layer * n_heads].
  static FlatSets from_lists(int64_t n_layer, int64_t n_heads,
                             const std::vector<std::vector<T>>& lists) {
    FlatSets f;
    f.n_layer = n_layer;
    f.n_heads = n_heads;
    f.off.reserve(lists.size() + 1);
    f.off.push_back(0);
    for (const auto& l : lists) {
      f.items.insert(f.items.end(), l.begin(), l.end());
      f.off.push_back(int64_t(f.items.size()));
    }
    return f;
  }
  int64_t size() const { return n_layer * n_heads; }
  std::span<const T> at(int64_t l, int64_t s) const {
    const size_t i = size_t(l * n_heads + s);
    return {items.data() + off[i], size_t(off[i + 1] - off[i])};
  }
  std::span<T> at(int64_t l, int64_t s) {
    const size_t i = size_t(l * n_heads + s);
    return {items.data() + off[i], size_t(off[i + 1] - off[i])};
  }
  int64_t count(int64_t l, int64_t s) const {
    const size_t i = size_t(l * n_heads + s);
    return off[i + 1] - off[i];
  }
  int64_t total() const { return off.empty() ? 0 : off.back(); }
  // The heads of layer l as offsets relative to the layer's first item:
  // [n_heads + 1], and that first item's index.
  std::vector<int64_t> layer_offsets(int64_t l) const {
    std::vector<int64_t> o(size_t(n_heads + 1));
    for (int64_t s = 0; s <= n_heads; ++s) o[size_t(s)] = off[size_t(l * n_heads + s)] - off[size_t(l * n_heads)];
    return o;
  }
  const T* layer_items(int64_t l) const { return items.data() + off[size_t(l * n_heads)]; }
  bool operator==(const FlatSets& o) const = default;
};

using KeepSets = FlatSets<int32_t>;
using RowSelection = FlatSets<int64_t>;

}  // namespace kvsieve
