// A scorer turns one layer of a KV store (and the probes it asked for) into
// one score per cached row: higher means keep. Methods differ only in their
// scorer and its defaults; pooling, query-group reduction, budgets and
// selection are shared (see evictor.h). Scores live in device memory and are
// made with the backend's ops, so a cut never moves the cache off its device.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "kv/kv_store.h"
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
  const KvStore& store;
  int64_t layer;
  const AttnGeometry& geo;
  const ProbeBlock* window;  // the last queries of this layer (oldest first), or null
  const Recorder* rec;       // H2O's column sums, or null
  const ProbeBlock* probes;  // queries from a probe source (LAQ, Judge Q), or null
  int64_t ld;                // row stride of the output
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  // true: out gets one row per query head, [n_head, ld], each over the rows
  // of the stored head it reads, reduced over each group later; false: one
  // row per stored head, [n_stored, ld]. Entries past a head's rows are unused.
  virtual bool per_query_head() const = 0;
  virtual void score(const ScoreInputs& in, float* out) const = 0;
  // Queries of the last w tokens this scorer reads (0: none).
  virtual int64_t probe_window() const { return 0; }
  virtual bool needs_cumulative() const { return false; }
  virtual bool needs_probes() const { return false; }
};

}  // namespace kvsieve

namespace kvsieve {

// Attention of probes [first, first + n) of block b over the layer's cached
// rows, reduced over those probes into out [n_head, in.ld] (the backend's
// probe attention; the block's own keys, when it has them, are seen causally).
void probe_scores(const ScoreInputs& in, const ProbeBlock& b, int64_t first, int64_t n, Reduce how,
                  float* out);

}  // namespace kvsieve
