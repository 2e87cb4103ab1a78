// The scorer of LAQ and Judge Q: attention of the queries a probe source
// produced (lookahead decode steps, soft tokens) plus, optionally, the last w
// prompt queries, each row a softmax in f32, summed over all probes (as the
// LAQ code does). The probe source itself lives in the engine; this only
// reads ScoreInputs::probes.
#include "core/error.h"
#include "kv/methods/methods.h"
#include "kv/scoring.h"

namespace kvsieve {
namespace {

class ProbeAttentionScorer final : public Scorer {
 public:
  explicit ProbeAttentionScorer(int64_t w) : w_(w) {}
  bool per_query_head() const override { return true; }
  int64_t probe_window() const override { return w_; }
  bool needs_probes() const override { return true; }
  void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const override {
    check(in.probes != nullptr, "this method needs probe queries (lookahead or soft tokens)");
    probe_attention(*in.probes, in.cache, in.layer, in.geo.n_head, in.geo.head_dim, Reduce::kSum,
                    out);
    if (w_ == 0) return;
    check(in.window && in.window->n() > 0, "no prompt queries were observed");
    std::vector<std::vector<float>> win;
    probe_attention(*in.window, in.cache, in.layer, in.geo.n_head, in.geo.head_dim, Reduce::kSum,
                    win);
    for (size_t h = 0; h < out.size(); ++h)
      for (size_t j = 0; j < out[h].size(); ++j) out[h][j] += win[h][j];
  }

 private:
  int64_t w_;
};

}  // namespace

std::unique_ptr<Scorer> make_probe_attention_scorer(int64_t window) {
  return std::make_unique<ProbeAttentionScorer>(window);
}

}  // namespace kvsieve
