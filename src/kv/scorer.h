// A scorer turns one layer's cache (and the probes it asked for) into one
// score per cached row: higher means keep. Methods differ only in their
// scorer and its defaults; pooling, GQA aggregation, budgets and selection
// are shared (see evictor.h).
#pragma once
#include <cstdint>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/probes.h"

namespace kvsieve {

// Attention shape of the model, as the kv layer sees it.
struct AttnGeometry {
  int64_t n_layer = 0;
  int64_t n_head = 0;     // query heads
  int64_t n_head_kv = 0;  // key/value heads
  int64_t head_dim = 0;
};

struct ScoreInputs {
  const KvCache& cache;
  int64_t layer;
  const AttnGeometry& geo;
  const ProbeBlock* window;               // last-w queries of this layer, or null
  const CumulativeAttention* cumulative;  // or null
  const ProbeBlock* probes;               // queries from a probe source (LAQ, Judge Q), or null
  uint64_t seed;
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  // true: out gets one row per query head, [n_head][rows of the head it
  // reads], reduced over each group later; false: one row per stored head.
  virtual bool per_query_head() const = 0;
  virtual void score(const ScoreInputs& in, std::vector<std::vector<float>>& out) const = 0;
  // Queries of the last w tokens this scorer reads (0: none).
  virtual int64_t probe_window() const { return 0; }
  virtual bool needs_cumulative() const { return false; }
  virtual bool needs_probes() const { return false; }
};

}  // namespace kvsieve
