// Probe sources that run the model: LAQ's lookahead decoding and Judge Q's
// soft tokens. Each turns the state after the prompt into per-layer probe
// queries for the kv layer's probe-attention scorer; neither leaves anything
// in the context it reads (its store holds the same rows after).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/context.h"
#include "kv/evictor.h"

namespace kvsieve {

class ProbeSource {
 public:
  virtual ~ProbeSource() = default;
  // What the prompt's forward pass must record for the source (LAQ's stage 1).
  virtual RecordSpec record_spec() const { return {}; }
  // Whether collect() needs the first answer token.
  virtual bool needs_first_token() const { return false; }
  // Whether the probes differ with the budget (LAQ's stage-1 cut does).
  virtual bool depends_on_budget() const { return false; }
  // Per-layer probes [n_layer] after the prompt; ctx.n_past() is the prompt
  // length; budget: the one the cache will be cut to. peak_kv_bytes: the
  // most K/V bytes held at once while it ran.
  virtual std::vector<ProbeBlock> collect(Context& ctx, int32_t first_token, const Budget& budget,
                                          size_t* peak_kv_bytes) = 0;
  // Tokens the source decoded (LAQ), for tests and reports.
  virtual const std::vector<int32_t>& tokens() const { return none_; }

 private:
  std::vector<int32_t> none_;
};

// The source a policy asks for, or null when it needs none.
std::unique_ptr<ProbeSource> make_probe_source(const Policy& p, const EvictionConfig& cfg,
                                               const Model& m);

}  // namespace kvsieve
