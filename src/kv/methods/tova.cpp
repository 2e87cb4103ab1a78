// TOVA: the last query's attention, averaged over all query heads of the
// layer, so every head keeps the same rows (when they hold the same rows;
// after ragged cuts the average runs over each head's query group).
#include "core/error.h"
#include "kv/methods/methods.h"
#include "kv/scoring.h"

namespace kvsieve {
namespace {

class TovaScorer final : public Scorer {
 public:
  bool per_query_head() const override { return false; }
  int64_t probe_window() const override { return 1; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    check(in.window && in.window->n() > 0, "tova: no query was observed");
    ProbeBlock last;
    const int64_t width = in.geo.n_head * in.geo.head_dim, n = in.window->n();
    last.q.assign(in.window->q.begin() + (n - 1) * width, in.window->q.end());
    last.pos.push_back(in.window->pos.back());
    std::vector<std::vector<float>> per_head;
    probe_attention(last, in.cache, in.layer, in.geo.n_head, in.geo.head_dim, Reduce::kSum,
                    per_head);
    const int64_t S = in.cache.n_stored(), H = in.geo.n_head;
    bool same_rows = true;
    const HeadView h0 = in.cache.head(in.layer, 0);
    for (int64_t s = 1; s < S && same_rows; ++s) {
      const HeadView hs = in.cache.head(in.layer, s);
      same_rows = hs.n == h0.n && std::equal(hs.pos, hs.pos + hs.n, h0.pos);
    }
    std::vector<std::vector<float>> tmp;
    reduce_groups(per_head, same_rows ? H : H / S, Reduce::kMean, tmp);
    out.resize(size_t(S));
    for (int64_t s = 0; s < S; ++s) out[size_t(s)] = tmp[same_rows ? 0 : size_t(s)];
  }
};

}  // namespace

std::unique_ptr<Scorer> make_tova_scorer() { return std::make_unique<TovaScorer>(); }

}  // namespace kvsieve
