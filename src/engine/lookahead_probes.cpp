// LAQ's probe source. After the prompt: plan a cut of the full cache to the
// same budget with the stage-1 method (SnapKV by default) and write only the
// kept rows into a temporary store (the full cache is never copied), decode
// up to n tokens greedily on it from the first answer token (positions
// continue after the prompt, stop at end of generation), recording every
// layer's post-RoPE query of every step. The temporary store and the
// lookahead tokens are then dropped; only the queries leave.
#include <algorithm>

#include "core/error.h"
#include "engine/generate.h"
#include "engine/probe_source.h"

namespace kvsieve {
namespace {

AttnGeometry geometry(const Model& m) {
  const ModelConfig& c = m.config();
  return {c.n_layer, c.n_head, c.n_head_kv, c.head_dim};
}

class LookaheadProbes final : public ProbeSource {
 public:
  LookaheadProbes(const Policy& p, const EvictionConfig& cfg, const Model& m) : m_(m), n_(p.lookahead) {
    try {
      stage1_ = std::make_unique<Evictor>(stage1_config(p, cfg), geometry(m));
    } catch (const Error& e) {
      fail("{} stage 1 ({}): {}", p.method, p.stage1_spec, e.what());
    }
  }

  RecordSpec record_spec() const override { return stage1_->record_spec(); }
  bool needs_first_token() const override { return true; }
  bool depends_on_budget() const override { return true; }

  std::vector<ProbeBlock> collect(Context& ctx, int32_t first, const Budget& budget,
                                  size_t* peak) override {
    const ModelConfig& c = m_.config();
    tokens_.clear();
    stage1_->check_budget(budget);
    const CutPlan stage1 = stage1_->plan(ctx.store(), ctx.recorder(), budget);
    Context tmp(m_, ctx.backend(), ctx.store().type());
    tmp.adopt(ctx.store().gather(stage1.rows, n_), ctx.n_past());
    tmp.record(RecordSpec{std::max<int64_t>(n_, 1), false});
    DecodeParams dp;
    dp.max_tokens = n_;
    dp.first = first;
    dp.run_last = true;
    tokens_ = decode_tokens(tmp, ctx.logits(), dp);
    if (peak) *peak = ctx.store().kv_bytes() + tmp.store().kv_bytes();
    std::vector<ProbeBlock> probes(size_t(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) probes[size_t(l)] = tmp.recorder()->window(l);
    return probes;
  }

  const std::vector<int32_t>& tokens() const override { return tokens_; }

 private:
  static EvictionConfig stage1_config(const Policy& p, const EvictionConfig& cfg) {
    EvictionConfig c = cfg;
    c.spec = p.stage1_spec;
    c.preset.clear();
    c.decode_every = 0;
    return c;
  }

  const Model& m_;
  int64_t n_;
  std::unique_ptr<Evictor> stage1_;
  std::vector<int32_t> tokens_;
};

}  // namespace

std::unique_ptr<ProbeSource> make_lookahead_probes(const Policy& p, const EvictionConfig& cfg,
                                                   const Model& m) {
  return std::make_unique<LookaheadProbes>(p, cfg, m);
}

}  // namespace kvsieve
