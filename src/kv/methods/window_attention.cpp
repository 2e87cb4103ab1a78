// SnapKV's observation window: the last w prompt queries' attention over
// every cached row, averaged over the window (each query sees only rows at or
// before its position). Rows inside the window score too; the policy protects them.
#include "core/error.h"
#include "kv/methods/methods.h"

namespace kvsieve {
namespace {

class WindowAttentionScorer final : public Scorer {
 public:
  explicit WindowAttentionScorer(int64_t w) : w_(w) {}
  bool per_query_head() const override { return true; }
  int64_t probe_window() const override { return w_; }
  void score(const ScoreInputs& in, float* out) const override {
    check(in.window && in.window->n() > 0, "window attention: no queries were observed");
    const int64_t n = std::min(w_, in.window->n());
    probe_scores(in, *in.window, in.window->n() - n, n, Reduce::kMean, out);
  }

 private:
  int64_t w_;
};

}  // namespace

std::unique_ptr<Scorer> make_window_attention_scorer(int64_t window) {
  check(window >= 1, "window attention needs a window of at least 1 query");
  return std::make_unique<WindowAttentionScorer>(window);
}

}  // namespace kvsieve
