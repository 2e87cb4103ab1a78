// StreamingLLM: attention sinks (protected by the policy) plus the most
// recent tokens; the score is simply the position.
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class RecencyScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    const int64_t S = in.cache.n_stored();
    out.resize(size_t(S));
    for (int64_t s = 0; s < S; ++s) {
      const HeadView kv = in.cache.head(in.layer, s);
      out[size_t(s)].assign(kv.pos, kv.pos + kv.n);
    }
  }
};

}  // namespace

std::unique_ptr<Scorer> make_recency_scorer() { return std::make_unique<RecencyScorer>(); }

}  // namespace kvsieve
