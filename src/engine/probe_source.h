// Probe sources that run the model: LAQ's lookahead decoding and Judge Q's
// soft tokens. Each turns the state after the prompt into per-layer probe
// queries for the kv layer's ProbeAttention scorer; neither leaves anything
// in the session's cache.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/session.h"
#include "kv/evictor.h"

namespace kvsieve {

class ProbeSource {
 public:
  virtual ~ProbeSource() = default;
  // Sees the prompt's forward pass (e.g. the stage-1 method's window).
  virtual void observe(const QueryEvent& e) {}
  // Whether collect() needs the first answer token.
  virtual bool needs_first_token() const { return false; }
  // Per-layer probes [n_layer] after the prompt; s.n_past() is the prompt
  // length; budget: the one the cache will be cut to. peak_kv_bytes: the
  // most K/V bytes held at once while it ran.
  virtual std::vector<ProbeBlock> collect(Session& s, int32_t first_token, const Budget& budget,
                                          size_t* peak_kv_bytes) = 0;
  // Tokens the source decoded (LAQ), for tests and reports.
  virtual const std::vector<int32_t>& tokens() const { return none_; }

 private:
  std::vector<int32_t> none_;
};

// The source a policy asks for, or null when it needs none.
std::unique_ptr<ProbeSource> make_probe_source(const Policy& p, const EvictionConfig& cfg,
                                               const Model& m, ThreadPool& pool);

}  // namespace kvsieve
