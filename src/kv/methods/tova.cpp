// TOVA: the last query's attention, averaged over all query heads of the
// layer, so every head keeps the same rows (when they hold the same rows;
// after ragged cuts the average runs over each head's query group).
#include <algorithm>

#include "core/error.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class TovaScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  int64_t probe_window() const override { return 1; }
  void score(const ScoreInputs& in, float* out) const override {
    check(in.window && in.window->n() > 0, "tova: no query was observed");
    Backend& be = in.store.backend();
    const int64_t S = in.store.n_stored(), H = in.geo.n_head;
    DeviceArray<float> per_head(be, H * in.ld);
    probe_scores(in, *in.window, in.window->n() - 1, 1, Reduce::kSum, per_head.data());
    bool same_rows = true;
    const auto p0 = in.store.positions(in.layer, 0);
    for (int64_t s = 1; s < S && same_rows; ++s) {
      const auto ps = in.store.positions(in.layer, s);
      same_rows = std::equal(ps.begin(), ps.end(), p0.begin(), p0.end());
    }
    const int64_t group = same_rows ? H : H / S, n_out = H / group;
    std::vector<int64_t> rows(static_cast<size_t>(n_out));
    for (int64_t g = 0; g < n_out; ++g) rows[size_t(g)] = in.store.rows(in.layer, g * group / (H / S));
    DeviceArray<float> mean(be, n_out * in.ld);
    be.reduce_groups(per_head.data(), mean.data(), n_out, group, in.ld, rows.data(), Reduce::kMean);
    for (int64_t s = 0; s < S; ++s)
      be.copy(out + s * in.ld, mean.data() + (same_rows ? 0 : s) * in.ld,
              size_t(in.store.rows(in.layer, s)) * sizeof(float));
  }
};

}  // namespace

std::unique_ptr<Scorer> make_tova_scorer() { return std::make_unique<TovaScorer>(); }

}  // namespace kvsieve
