// The eviction pipeline (DESIGN.md, "query probes"):
//   probes -> scores -> pool & GQA-reduce -> budgets -> selection -> gather
// An Evictor says what the forward pass must record for its method
// (record_spec), scores a store with what was recorded, and cuts it to a
// budget: in place after the prompt (compress, and again every N decoded
// tokens), or as a plan that leaves the store as it is, so one prefill can be
// cut at many budgets and each cut written into a new, small store.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kv/budget.h"
#include "kv/kv_store.h"
#include "kv/policy.h"
#include "kv/probes.h"
#include "kv/scorer.h"
#include "kvsieve/policy.h"

namespace kvsieve {

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

// Every row's score after pooling and query-group reduction, per layer:
// s [n_stored, ld] in device memory, rows[h] valid in head h. Budgets and
// selection read only these, so one scoring serves every budget.
struct Scores {
  struct Layer {
    DeviceArray<float> s;
    int64_t ld = 0;
    std::vector<int64_t> rows;  // [n_stored]
  };
  std::vector<Layer> layers;
  int64_t n_stored = 0;
};

// Rows to keep and what each head was allowed.
struct CutPlan {
  RowSelection rows;
  std::vector<int64_t> budget;  // [n_layer * n_stored]
};

class Evictor {
 public:
  Evictor(const EvictionConfig& cfg, const AttnGeometry& geo);

  const Policy& policy() const { return policy_; }
  const EvictionConfig& config() const { return cfg_; }
  bool active() const { return policy_.scorer != nullptr; }
  // What the forward pass must record for this method.
  RecordSpec record_spec() const;
  // Throws Error when the policy cannot cut to b (protected rows over budget).
  void check_budget(const Budget& b) const;
  // For query-head granularity, copies every KV head per query head (once).
  void replicate_if_needed(KvStore& store) const;

  // Scores every row of `store` with what `rec` recorded (and the probes of
  // a probe source, per layer); nothing changes.
  Scores score(const KvStore& store, const Recorder* rec,
               const std::vector<ProbeBlock>* probes = nullptr) const;
  // The rows each head keeps under `budget`, or under per-head budgets.
  CutPlan select(const KvStore& store, const Scores& sc, const Budget& budget,
                 const std::vector<int64_t>* head_budgets = nullptr) const;
  CutPlan plan(const KvStore& store, const Recorder* rec, const Budget& budget,
               const std::vector<ProbeBlock>* probes = nullptr) const {
    return select(store, score(store, rec, probes), budget);
  }
  // The report of a plan on `store` (positions and bytes after the cut).
  EvictionReport report(const KvStore& store, const CutPlan& p) const;

  // Cuts the store after the prompt (copying K/V per query head first for
  // query-head granularity); the recorder's sums follow. The per-head budgets
  // are remembered for decode-time re-selection. headroom: rows of room kept
  // per head for the tokens still to come.
  EvictionReport compress(KvStore& store, Recorder* rec,
                          const std::vector<ProbeBlock>* probes = nullptr, int64_t headroom = 0);

  // Call after each decoded token: every decode_every tokens, cuts each head
  // back to its budget with the same scorer (recent window protected).
  bool after_decode(KvStore& store, Recorder* rec);

 private:
  EvictionConfig cfg_;
  AttnGeometry geo_;
  Policy policy_;
  std::vector<int64_t> head_budget_;  // after compress, [n_layer * n_stored]
  int64_t since_cut_ = 0;
};

}  // namespace kvsieve
