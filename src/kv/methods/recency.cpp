// StreamingLLM: attention sinks (protected by the policy) plus the most
// recent tokens; the score is simply the position.
#include "backend/host_access.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class RecencyScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  void score(const ScoreInputs& in, float* out) const override {
    const int64_t S = in.store.n_stored();
    HostWrite<float> o(in.store.backend(), out, S * in.ld);
    for (int64_t s = 0; s < S; ++s) {
      const auto pos = in.store.positions(in.layer, s);
      for (size_t j = 0; j < pos.size(); ++j) o[s * in.ld + int64_t(j)] = float(pos[j]);
    }
    o.commit();
  }
};

}  // namespace

std::unique_ptr<Scorer> make_recency_scorer() { return std::make_unique<RecencyScorer>(); }

}  // namespace kvsieve
