#include "kv/scorer.h"

#include "core/error.h"

namespace kvsieve {

void probe_scores(const ScoreInputs& in, const ProbeBlock& b, int64_t first, int64_t n, Reduce how,
                  float* out) {
  check(first >= 0 && n >= 0 && first + n <= b.n(), "probe rows out of range");
  const int64_t width = in.geo.n_head * in.geo.head_dim;
  ProbeAttentionArgs a;
  a.kv = in.store.layer(in.layer);
  a.q = b.q.data() + first * width;
  a.q_pos = b.pos.data() + first;
  a.n_probe = n;
  a.n_head = in.geo.n_head;
  if (b.k.size() > 0) a.own_k = b.k.data() + first * in.geo.n_head_kv * in.geo.head_dim;
  a.out = out;
  a.ld = in.ld;
  a.reduce = how;
  in.store.backend().probe_attention(a);
}

}  // namespace kvsieve
