// Cuts a context's KV store after the prompt: the Evictor (kv layer) plus,
// for LAQ and Judge Q, the probe source that runs the model to make their
// probes. The context must record record_spec() while the prompt runs
// (Context::record).
#pragma once
#include <memory>

#include "engine/context.h"
#include "engine/probe_source.h"
#include "kv/evictor.h"

namespace kvsieve {

class Compressor {
 public:
  Compressor(const EvictionConfig& cfg, const Model& m);

  bool active() const { return ev_.active(); }
  const Evictor& evictor() const { return ev_; }
  // What the prompt's forward pass must record for this method.
  RecordSpec record_spec() const;
  // LAQ decodes from the first answer token: the caller picks it from the
  // prompt's logits before compress() and passes it in.
  bool needs_first_token() const { return source_ && source_->needs_first_token(); }
  // Whether the probes (and so the scores) differ with the budget.
  bool probes_depend_on_budget() const { return source_ && source_->depends_on_budget(); }

  // The probe source's probes for a cut of ctx at `budget` (empty when the
  // method has no source); ctx is left as it was. peak: most K/V bytes held
  // at once meanwhile; seconds: time taken.
  std::vector<ProbeBlock> collect(Context& ctx, int32_t first_token, const Budget& budget,
                                  size_t* peak = nullptr, double* seconds = nullptr);

  // Cuts ctx's store in place to the configured budget; the per-head budgets
  // are remembered for decode-time re-selection. headroom: rows of room
  // kept per head for what comes next (question, answer).
  EvictionReport compress(Context& ctx, int32_t first_token = -1, int64_t headroom = 0);

  // Every row's scores for a cut of ctx at `budget` (collecting probes when
  // the method has a source); ctx keeps its rows. The scores serve every
  // budget unless probes_depend_on_budget().
  Scores score(Context& ctx, int32_t first_token, const Budget& budget, size_t* peak = nullptr,
               double* probe_seconds = nullptr);

  // A cut of ctx at `budget`, planned but not applied (ctx keeps its rows):
  // the plan and its report. One prefill can be cut at many budgets.
  struct Planned {
    CutPlan plan;
    EvictionReport report;
  };
  Planned plan(Context& ctx, int32_t first_token, const Budget& budget);

  bool after_decode(Context& ctx) { return ev_.after_decode(ctx.store(), ctx.recorder()); }
  // Tokens the probe source decoded (LAQ's lookahead), empty otherwise.
  const std::vector<int32_t>& probe_tokens() const;

 private:
  Evictor ev_;
  std::unique_ptr<ProbeSource> source_;
};

}  // namespace kvsieve
