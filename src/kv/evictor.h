// The eviction pipeline (DESIGN.md, "query probes"):
//   probes -> scores -> pool & GQA-reduce -> budgets -> selection -> cache.retain
// An Evictor watches the forward pass (observe) to collect the probes its
// method needs, then cuts a cache to the budget (compress) after the prompt,
// and optionally again every N decoded tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kv/budget.h"
#include "kv/kv_cache.h"
#include "kv/policy.h"
#include "kv/probes.h"
#include "kv/scorer.h"

namespace kvsieve {

enum class Granularity {
  kKvHead,     // one token set per KV head; scores reduced over its query group
  kQueryHead,  // K/V copied per query head, one set each (LAQ / KVCache-Factory code)
};
Granularity granularity_from_name(const std::string& s);  // "kv-head", "query-head"
const char* granularity_name(Granularity g);

struct EvictionConfig {
  std::string spec = "full";  // method spec, see kv_methods_help()
  std::string preset;         // "", "kvpress", "kvcache-factory"
  Budget budget;
  Granularity granularity = Granularity::kKvHead;
  int64_t decode_every = 0;   // re-select after this many decoded tokens; 0 = never
};

struct EvictionReport {
  KeepSets kept;                // positions each (layer, stored head) holds after
  std::vector<int64_t> budget;  // [n_layer * n_stored] rows each head was allowed
  int64_t n_rows_before = 0;    // rows of the largest head before
  size_t kv_bytes_before = 0, kv_bytes_after = 0;
  double seconds = 0;           // planning and compaction
  // Filled by the engine when a probe source ran (LAQ, Judge Q):
  double probe_seconds = 0;     // lookahead decoding / soft tokens
  size_t peak_kv_bytes = 0;     // K/V bytes held at once, temporary caches included
};

class Evictor {
 public:
  // pool: threads for scoring (layers in parallel) and for the cumulative
  // attention H2O records during prefill; null runs on the calling thread.
  Evictor(const EvictionConfig& cfg, const AttnGeometry& geo, ThreadPool* pool = nullptr);

  const Policy& policy() const { return policy_; }
  const EvictionConfig& config() const { return cfg_; }
  bool active() const { return policy_.scorer != nullptr; }

  // Feed from the forward pass (Session::set_observer).
  void observe(const QueryEvent& e);

  // Keep sets for the cache as it is now; nothing changes. budgets, when
  // given, receives the rows allowed per head. With `head_budgets` the
  // per-head budgets are those instead of the configured ones.
  // probes: per layer, queries of an external probe source (LAQ, Judge Q).
  // budget: instead of the configured one.
  KeepSets plan(const KvCache& cache, std::vector<int64_t>* budgets = nullptr,
                const std::vector<int64_t>* head_budgets = nullptr,
                const std::vector<ProbeBlock>* probes = nullptr,
                const Budget* budget = nullptr) const;

  // Cuts a cache to `budget` with what was observed, changing nothing in the
  // evictor: one prefill can be cut at many budgets (kvsieve eval). No
  // decode-time re-selection follows such a cut.
  EvictionReport cut(KvCache& cache, const Budget& budget,
                     const std::vector<ProbeBlock>* probes = nullptr) const;

  // Cuts the cache after the prompt (copying K/V per query head first for
  // query-head granularity). The per-head budgets are remembered for
  // decode-time re-selection.
  EvictionReport compress(KvCache& cache, const std::vector<ProbeBlock>* probes = nullptr);

  // Call after each decoded token: every decode_every tokens, cuts each head
  // back to its budget with the same scorer (recent window protected).
  bool after_decode(KvCache& cache);

 private:
  void check_budget(const Budget& b) const;
  void replicate_if_needed(KvCache& cache) const;

  EvictionConfig cfg_;
  AttnGeometry geo_;
  Policy policy_;
  ThreadPool* pool_;
  std::unique_ptr<WindowProbes> window_;
  std::unique_ptr<CumulativeAttention> cumulative_;
  std::vector<int64_t> head_budget_;  // after compress, [n_layer * n_stored]
  int64_t since_cut_ = 0;
};

}  // namespace kvsieve
