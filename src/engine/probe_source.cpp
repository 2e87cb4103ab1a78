#include "engine/probe_source.h"

#include "core/error.h"

namespace kvsieve {

// Defined beside each source.
std::unique_ptr<ProbeSource> make_lookahead_probes(const Policy& p, const EvictionConfig& cfg,
                                                   const Model& m);
std::unique_ptr<ProbeSource> make_soft_token_probes(const Policy& p, const Model& m);

std::unique_ptr<ProbeSource> make_probe_source(const Policy& p, const EvictionConfig& cfg,
                                               const Model& m) {
  if (p.probe_source == "lookahead") return make_lookahead_probes(p, cfg, m);
  if (p.probe_source == "soft-tokens") return make_soft_token_probes(p, m);
  check(p.probe_source.empty(), "unknown probe source '{}'", p.probe_source);
  return nullptr;
}

}  // namespace kvsieve
