// Attention on the CPU: the forward pass's causal attention over the ragged
// store and the probe attention of the eviction methods, both built on one
// routine that computes a query's attention probabilities.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/ops.h"
#include "core/error.h"

namespace kvsieve {
namespace {

size_t elem_bytes(DType t) { return dtype_row_bytes(t, 1); }

// Keys (or values) of stored head s: [capacity, head_dim] of kv.type.
const void* head_rows(const KvLayerView& kv, const void* base, int64_t s) {
  return static_cast<const uint8_t*>(base) + size_t(s * kv.capacity * kv.head_dim) * elem_bytes(kv.type);
}

// Rows of stored head s a query at position p sees: those with pos <= p.
int64_t visible_rows(const KvLayerView& kv, int64_t s, int32_t p) {
  const int32_t* pos = kv.pos + s * kv.capacity;
  return std::upper_bound(pos, pos + kv.rows[s], p) - pos;
}

// The attention probabilities of query q over the first n rows of a head's
// keys (type t, head_dim apart) and then n_own keys of its own (f32,
// own_stride apart): p[0, n + n_own), one softmax in f32 over all of them of
// the scores scaled by 1/sqrt(head_dim). Every attention in kvsieve is this.
void probability_row(const float* q, DType t, const void* keys, int64_t n, const float* own,
                     int64_t own_stride, int64_t n_own, int64_t hd, float* p) {
  dot_rows(t, q, keys, n, hd, hd, p);
  if (n_own > 0) dot_rows_f32(q, own, n_own, own_stride, hd, p + n);
  const int64_t m = n + n_own;
  if (m == 0) return;
  scale_f32(p, 1.0f / std::sqrt(float(hd)), m);
  softmax_inplace(p, m);
}

}  // namespace

void CpuBackend::attention(const AttentionArgs& a) {
  const KvLayerView& kv = a.kv;
  const int64_t hd = kv.head_dim, H = a.n_head, n = a.n;
  check(H % kv.n_stored == 0, "attention: {} query heads over {} stored heads", H, kv.n_stored);
  const int64_t group = H / kv.n_stored;
  ensure_scratch(kv.capacity);
  // One (head, token) pair; returns the rows the query saw (their
  // probabilities are left in p).
  auto one = [&](int64_t h, int64_t t, float* p) {
    const int64_t s = h / group;
    const int64_t seen = visible_rows(kv, s, a.q_pos[t]);
    float* out = a.out + (t * H + h) * hd;
    probability_row(a.q + (t * H + h) * hd, kv.type, head_rows(kv, kv.k, s), seen, nullptr, 0, 0,
                    hd, p);
    std::fill(out, out + hd, 0.0f);
    axpy_rows(kv.type, p, head_rows(kv, kv.v, s), seen, hd, hd, out);
    return seen;
  };
  if (a.colsum) {
    // H2O's record: a head's sums are added by one thread, query by query
    // in batch order, so they do not depend on the thread count.
    pool_.parallel_for(H, [&](int64_t begin, int64_t end, int thread) {
      float* p = scratch(thread);
      for (int64_t h = begin; h < end; ++h) {
        float* sum = a.colsum + h * a.ld;
        float* cnt = a.colcount + h * a.ld;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t seen = one(h, t, p);
          for (int64_t j = 0; j < seen; ++j) {
            sum[j] += p[j];
            cnt[j] += 1.0f;
          }
        }
      }
    });
    return;
  }
  pool_.parallel_for(H * n, [&](int64_t begin, int64_t end, int thread) {
    float* p = scratch(thread);
    for (int64_t job = begin; job < end; ++job) one(job / n, job % n, p);
  });
}

void CpuBackend::probe_attention(const ProbeAttentionArgs& a) {
  const KvLayerView& kv = a.kv;
  const int64_t hd = kv.head_dim, H = a.n_head, np = a.n_probe;
  check(H % kv.n_stored == 0, "probe attention: {} query heads over {} stored heads", H,
        kv.n_stored);
  const int64_t group = H / kv.n_stored, n_kv = kv.n_stored / kv.repeat;
  const bool own = a.own_k != nullptr;
  ensure_scratch(kv.capacity + np);
  pool_.parallel_for(H, [&](int64_t begin, int64_t end, int thread) {
    float* p = scratch(thread);
    for (int64_t h = begin; h < end; ++h) {
      const int64_t s = h / group, rows = kv.rows[s];
      float* o = a.out ? a.out + h * a.ld : nullptr;
      if (o) std::fill(o, o + a.ld, 0.0f);  // probabilities are >= 0, so 0 also starts a max
      for (int64_t t = 0; t < np; ++t) {
        const float* q = a.q + (t * H + h) * hd;
        const int64_t seen = visible_rows(kv, s, a.q_pos[t]);
        const int64_t n_own = own ? t + 1 : 0;
        const float* own_k = own ? a.own_k + (s / kv.repeat) * hd : nullptr;
        probability_row(q, kv.type, head_rows(kv, kv.k, s), seen, own_k, n_kv * hd, n_own, hd, p);
        if (a.probs) {
          float* pr = a.probs + (t * H + h) * a.probs_ld;
          std::fill(pr, pr + a.probs_ld, 0.0f);
          std::copy(p, p + seen, pr);
          std::copy(p + seen, p + seen + n_own, pr + rows);
        }
        // Rows the probe cannot see count 0 (this also drops its own keys).
        std::fill(p + seen, p + std::max(rows, seen + n_own), 0.0f);
        if (!o) continue;
        if (a.reduce == Reduce::kMax)
          for (int64_t j = 0; j < rows; ++j) o[j] = std::max(o[j], p[j]);
        else
          for (int64_t j = 0; j < rows; ++j) o[j] += p[j];
      }
      if (o && a.reduce == Reduce::kMean && np > 0)
        for (int64_t j = 0; j < rows; ++j) o[j] /= float(np);
    }
  });
}

}  // namespace kvsieve
