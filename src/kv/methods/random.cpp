// Random eviction: scores from a hash of (seed, layer, stored head,
// position), so a row keeps its score whatever else the head holds and a run
// can be repeated exactly.
#include "backend/host_access.h"
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
  void score(const ScoreInputs& in, float* out) const override {
    const int64_t S = in.store.n_stored();
    HostWrite<float> o(in.store.backend(), out, S * in.ld);
    for (int64_t s = 0; s < S; ++s) {
      const auto pos = in.store.positions(in.layer, s);
      const uint64_t base = mix(mix(seed_ ^ uint64_t(in.layer) << 32) ^ uint64_t(s));
      for (size_t j = 0; j < pos.size(); ++j)
        o[s * in.ld + int64_t(j)] = float(mix(base ^ uint64_t(uint32_t(pos[j]))) >> 40) * 0x1p-24f;
    }
    o.commit();
  }

 private:
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Scorer> make_random_scorer(uint64_t seed) {
  return std::make_unique<RandomScorer>(seed);
}

}  // namespace kvsieve
