// Key norm: keys with a small L2 norm tend to draw much attention, so the
// score is -||k||2 of the cached (post-RoPE) key.
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class KnormScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  void score(const ScoreInputs& in, float* out) const override {
    Backend& be = in.store.backend();
    be.key_norms(in.store.layer(in.layer), out, in.ld);
    be.scale(out, -1.0f, in.store.n_stored() * in.ld);
  }
};

}  // namespace

std::unique_ptr<Scorer> make_knorm_scorer() { return std::make_unique<KnormScorer>(); }

}  // namespace kvsieve
