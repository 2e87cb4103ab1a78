// H2O: the attention every query so far gave each row (prompt queries during
// prefill, then each decoded token's), accumulated online by
// CumulativeAttention so the n x n matrix never exists.
#include "core/error.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class CumulativeAttentionScorer final : public Scorer {
 public:
  explicit CumulativeAttentionScorer(bool normalize) : normalize_(normalize) {}
  bool per_query_head() const override { return true; }
  bool needs_cumulative() const override { return true; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    check(in.cumulative != nullptr, "cumulative attention was not recorded");
    out.resize(size_t(in.geo.n_head));
    for (int64_t h = 0; h < in.geo.n_head; ++h) {
      const auto& sum = in.cumulative->sum(in.layer, h);
      const auto& cnt = in.cumulative->count(in.layer, h);
      auto& o = out[size_t(h)];
      o = sum;
      if (normalize_)
        for (size_t j = 0; j < o.size(); ++j) o[j] = cnt[j] > 0 ? o[j] / cnt[j] : 0.0f;
    }
  }

 private:
  bool normalize_;
};

}  // namespace

std::unique_ptr<Scorer> make_cumulative_attention_scorer(bool normalize) {
  return std::make_unique<CumulativeAttentionScorer>(normalize);
}

}  // namespace kvsieve
