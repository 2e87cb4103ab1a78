// Cuts a session's KV cache after the prompt: the Evictor (kv layer) plus,
// for LAQ and Judge Q, the probe source that runs the model to make their
// probes. Install observe() on the session before the prompt runs.
#pragma once
#include <memory>

#include "engine/probe_source.h"
#include "engine/session.h"
#include "kv/evictor.h"

namespace kvsieve {

class Compressor {
 public:
  Compressor(const EvictionConfig& cfg, const Model& m, ThreadPool& pool);

  bool active() const { return ev_.active(); }
  const Evictor& evictor() const { return ev_; }
  // LAQ decodes from the first answer token: the caller picks it from the
  // prompt's logits before compress() and passes it in.
  bool needs_first_token() const { return source_ && source_->needs_first_token(); }

  void observe(const QueryEvent& e);
  // Collects probes if the method has a source, then cuts s.cache(). With
  // `budget`, cuts to it instead and leaves the compressor as it was, so the
  // same observed prefill can be cut again at another budget (no decode-time
  // re-selection then).
  EvictionReport compress(Session& s, int32_t first_token = -1, const Budget* budget = nullptr);
  bool after_decode(KvCache& cache) { return ev_.after_decode(cache); }
  // Tokens the probe source decoded (LAQ's lookahead), empty otherwise.
  const std::vector<int32_t>& probe_tokens() const;

 private:
  Evictor ev_;
  std::unique_ptr<ProbeSource> source_;
};

}  // namespace kvsieve
