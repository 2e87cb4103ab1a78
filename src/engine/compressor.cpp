#include "engine/compressor.h"

#include <chrono>

#include "core/error.h"

namespace kvsieve {
namespace {

AttnGeometry geometry(const Model& m) {
  const ModelConfig& c = m.config();
  return {c.n_layer, c.n_head, c.n_head_kv, c.head_dim};
}

}  // namespace

Compressor::Compressor(const EvictionConfig& cfg, const Model& m, ThreadPool& pool)
    : ev_(cfg, geometry(m), &pool), source_(make_probe_source(ev_.policy(), cfg, m, pool)) {}

void Compressor::observe(const QueryEvent& e) {
  ev_.observe(e);
  if (source_) source_->observe(e);
}

EvictionReport Compressor::compress(Session& s, int32_t first_token, const Budget* budget) {
  using clock = std::chrono::steady_clock;
  std::vector<ProbeBlock> probes;
  size_t peak = s.cache().kv_bytes();
  double probe_seconds = 0;
  if (source_) {
    check(!source_->needs_first_token() || first_token >= 0,
          "{} needs the first answer token", ev_.policy().method);
    const auto t0 = clock::now();
    probes = source_->collect(s, first_token, budget ? *budget : ev_.config().budget, &peak);
    probe_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  }
  EvictionReport r = budget ? ev_.cut(s.cache(), *budget, source_ ? &probes : nullptr)
                            : ev_.compress(s.cache(), source_ ? &probes : nullptr);
  r.probe_seconds = probe_seconds;
  r.peak_kv_bytes = std::max(peak, r.kv_bytes_before);
  return r;
}

const std::vector<int32_t>& Compressor::probe_tokens() const {
  static const std::vector<int32_t> none;
  return source_ ? source_->tokens() : none;
}

}  // namespace kvsieve
