// H2O: the attention every query so far gave each row (prompt queries during
// prefill, then each decoded token's), summed inside the forward attention
// into the recorder's column sums, so the n x n matrix never exists.
#include "backend/host_access.h"
#include "core/error.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class CumulativeAttentionScorer final : public Scorer {
 public:
  explicit CumulativeAttentionScorer(bool normalize) : normalize_(normalize) {}
  bool per_query_head() const override { return true; }
  bool needs_cumulative() const override { return true; }
  void score(const ScoreInputs& in, float* out) const override {
    check(in.rec != nullptr && in.rec->spec().column_sums, "cumulative attention was not recorded");
    Backend& be = in.store.backend();
    const int64_t H = in.geo.n_head, group = H / in.store.n_stored(), ld = in.rec->ld(in.layer);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t n = in.store.rows(in.layer, h / group);
      check(n <= ld, "cumulative attention: rows out of step with the cache");
      be.copy(out + h * in.ld, in.rec->colsum(in.layer) + h * ld, size_t(n) * sizeof(float));
      if (!normalize_) continue;
      HostRead<float> cnt(be, in.rec->colcount(in.layer) + h * ld, n);
      HostWrite<float> o(be, out + h * in.ld, n);
      HostRead<float> sum(be, in.rec->colsum(in.layer) + h * ld, n);
      for (int64_t j = 0; j < n; ++j) o[j] = cnt[j] > 0 ? sum[j] / cnt[j] : 0.0f;
      o.commit();
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
