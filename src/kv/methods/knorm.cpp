// Key norm: keys with a small L2 norm tend to draw much attention, so the
// score is -||k||2 of the cached (post-RoPE) key.
#include <cmath>

#include "backend/cpu/ops.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class KnormScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    const int64_t S = in.cache.n_stored(), hd = in.geo.head_dim;
    out.resize(size_t(S));
    for (int64_t s = 0; s < S; ++s) {
      const HeadView kv = in.cache.head(in.layer, s);
      auto& o = out[size_t(s)];
      o.resize(size_t(kv.n));
      for (int64_t j = 0; j < kv.n; ++j)
        o[size_t(j)] = -std::sqrt(dot_f32(kv.k + j * hd, kv.k + j * hd, hd));
    }
  }
};

}  // namespace

std::unique_ptr<Scorer> make_knorm_scorer() { return std::make_unique<KnormScorer>(); }

}  // namespace kvsieve
