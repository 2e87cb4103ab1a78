// Random eviction: scores from a hash of (seed, layer, stored head,
// position), so a row keeps its score whatever else the head holds and a run
// can be repeated exactly.
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class RandomScorer final : public Scorer {
 public:
  explicit RandomScorer(uint64_t seed) : seed_(seed) {}
  bool per_query_head() const override { return false; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    const int64_t S = in.cache.n_stored();
    out.resize(size_t(S));
    for (int64_t s = 0; s < S; ++s) {
      const HeadView kv = in.cache.head(in.layer, s);
      auto& o = out[size_t(s)];
      o.resize(size_t(kv.n));
      const uint64_t base = mix(mix(seed_ ^ uint64_t(in.layer) << 32) ^ uint64_t(s));
      for (int64_t j = 0; j < kv.n; ++j)
        o[size_t(j)] = float(mix(base ^ uint64_t(uint32_t(kv.pos[j]))) >> 40) * 0x1p-24f;
    }
  }

 private:
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Scorer> make_random_scorer(uint64_t seed) {
  return std::make_unique<RandomScorer>(seed);
}

}  // namespace kvsieve
