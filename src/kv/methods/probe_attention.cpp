// The scorer of LAQ and Judge Q: attention of the queries a probe source
// produced (lookahead decode steps, soft tokens) plus, optionally, the last w
// prompt queries, each row a softmax in f32, summed over all probes (as the
// LAQ code does). The probe source itself lives in the engine; this only
// reads ScoreInputs::probes.
#include "core/error.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class ProbeAttentionScorer final : public Scorer {
 public:
  explicit ProbeAttentionScorer(int64_t w) : w_(w) {}
  bool per_query_head() const override { return true; }
  int64_t probe_window() const override { return w_; }
  bool needs_probes() const override { return true; }
  void score(const ScoreInputs& in, float* out) const override {
    check(in.probes != nullptr, "this method needs probe queries (lookahead or soft tokens)");
    probe_scores(in, *in.probes, 0, in.probes->n(), Reduce::kSum, out);
    if (w_ == 0) return;
    check(in.window && in.window->n() > 0, "no prompt queries were observed");
    Backend& be = in.store.backend();
    const int64_t n = std::min(w_, in.window->n()), size = in.geo.n_head * in.ld;
    DeviceArray<float> win(be, size);
    probe_scores(in, *in.window, in.window->n() - n, n, Reduce::kSum, win.data());
    be.add(out, win.data(), out, size);
  }

 private:
  int64_t w_;
};

}  // namespace

std::unique_ptr<Scorer> make_probe_attention_scorer(int64_t window) {
  return std::make_unique<ProbeAttentionScorer>(window);
}

}  // namespace kvsieve
