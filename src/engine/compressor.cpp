#include "engine/compressor.h"

#include <chrono>

#include "core/error.h"

namespace kvsieve {
namespace {

AttnGeometry geometry(const Model& m) {
  const ModelConfig& c = m.config();
  return {c.n_layer, c.n_head, c.n_head_kv, c.head_dim};
}

using clock_type = std::chrono::steady_clock;
double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

}  // namespace

Compressor::Compressor(const EvictionConfig& cfg, const Model& m)
    : ev_(cfg, geometry(m)), source_(make_probe_source(ev_.policy(), cfg, m)) {}

RecordSpec Compressor::record_spec() const {
  RecordSpec r = ev_.record_spec();
  if (source_) r |= source_->record_spec();
  return r;
}

std::vector<ProbeBlock> Compressor::collect(Context& ctx, int32_t first_token, const Budget& budget,
                                            size_t* peak, double* seconds) {
  const auto t0 = clock_type::now();
  if (peak) *peak = ctx.store().kv_bytes();
  std::vector<ProbeBlock> probes;
  if (source_) {
    check(!source_->needs_first_token() || first_token >= 0, "{} needs the first answer token",
          ev_.policy().method);
    // Query-head granularity: every method (LAQ's stage 1 too) works on the
    // copies per query head.
    ev_.replicate_if_needed(ctx.store());
    probes = source_->collect(ctx, first_token, budget, peak);
  }
  if (seconds) *seconds = since(t0);
  return probes;
}

EvictionReport Compressor::compress(Context& ctx, int32_t first_token, int64_t headroom) {
  size_t peak = 0;
  double probe_s = 0;
  const size_t bytes_before = ctx.store().kv_bytes();
  std::vector<ProbeBlock> probes = collect(ctx, first_token, ev_.config().budget, &peak, &probe_s);
  EvictionReport r = ev_.compress(ctx.store(), ctx.recorder(), source_ ? &probes : nullptr, headroom);
  r.kv_bytes_before = bytes_before;
  r.probe_seconds = probe_s;
  r.peak_kv_bytes = std::max(peak, r.kv_bytes_before);
  return r;
}

Scores Compressor::score(Context& ctx, int32_t first_token, const Budget& budget, size_t* peak,
                         double* probe_seconds) {
  if (ev_.active()) ev_.check_budget(budget);
  std::vector<ProbeBlock> probes = collect(ctx, first_token, budget, peak, probe_seconds);
  ev_.replicate_if_needed(ctx.store());
  return ev_.score(ctx.store(), ctx.recorder(), source_ ? &probes : nullptr);
}

Compressor::Planned Compressor::plan(Context& ctx, int32_t first_token, const Budget& budget) {
  size_t peak = 0;
  double probe_s = 0;
  const size_t bytes_before = ctx.store().kv_bytes();
  const auto t0 = clock_type::now();
  const Scores sc = score(ctx, first_token, budget, &peak, &probe_s);
  Planned p;
  p.plan = ev_.select(ctx.store(), sc, budget);
  p.report = ev_.report(ctx.store(), p.plan);
  p.report.kv_bytes_before = bytes_before;
  p.report.seconds = since(t0) - probe_s;
  p.report.probe_seconds = probe_s;
  p.report.peak_kv_bytes = std::max(peak, bytes_before);
  return p;
}

const std::vector<int32_t>& Compressor::probe_tokens() const {
  static const std::vector<int32_t> none;
  return source_ ? source_->tokens() : none;
}

}  // namespace kvsieve
