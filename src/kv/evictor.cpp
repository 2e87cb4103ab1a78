#include "kv/evictor.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "backend/host_access.h"
#include "core/error.h"

namespace kvsieve {

Granularity granularity_from_name(const std::string& s) {
  if (s == "kv-head") return Granularity::kKvHead;
  if (s == "query-head") return Granularity::kQueryHead;
  fail("unknown KV granularity '{}' (kv-head, query-head)", s);
}

Granularity granularity_for(const std::string& name, const std::string& preset) {
  if (!name.empty()) return granularity_from_name(name);
  return preset == "kvcache-factory" ? Granularity::kQueryHead : Granularity::kKvHead;
}

const char* granularity_name(Granularity g) {
  return g == Granularity::kKvHead ? "kv-head" : "query-head";
}

Evictor::Evictor(const EvictionConfig& cfg, const AttnGeometry& geo)
    : cfg_(cfg), geo_(geo), policy_(make_policy(cfg.spec, cfg.preset)) {
  check(geo.n_layer > 0 && geo.n_head > 0 && geo.n_head_kv > 0 && geo.n_head % geo.n_head_kv == 0,
        "evictor: bad attention geometry");
  check(cfg.decode_every >= 0, "--kv-decode-every must not be negative");
  if (!active()) return;
  check_budget(cfg.budget);
  check(cfg.decode_every == 0 || !policy_.scorer->needs_probes(),
        "{}: --kv-decode-every is not available (its probes exist only after the prompt)",
        policy_.method);
}

RecordSpec Evictor::record_spec() const {
  RecordSpec r;
  if (!active()) return r;
  // Decode-time re-selection needs a window of recent queries too.
  r.window = policy_.scorer->probe_window();
  if (r.window > 0 || cfg_.decode_every > 0) r.window = std::max<int64_t>(r.window, 1);
  r.column_sums = policy_.scorer->needs_cumulative();
  return r;
}

void Evictor::check_budget(const Budget& b) const {
  validate(b);
  const int64_t prot = policy_.protect.window + policy_.protect.sinks;
  check(b.by_ratio() || prot <= b.tokens,
        "{}: the protected tokens (window {} + sinks {}) exceed the budget of {} tokens",
        policy_.method, policy_.protect.window, policy_.protect.sinks, b.tokens);
}

void Evictor::replicate_if_needed(KvStore& store) const {
  if (cfg_.granularity == Granularity::kQueryHead && store.geometry().repeat == 1 &&
      geo_.n_head != geo_.n_head_kv)
    store.replicate(geo_.n_head / geo_.n_head_kv);
}

Scores Evictor::score(const KvStore& store, const Recorder* rec,
                      const std::vector<ProbeBlock>* probes) const {
  const int64_t L = geo_.n_layer, S = store.n_stored(), H = geo_.n_head;
  check(store.geometry().n_layer == L, "evictor: cache has {} layers, the model {}",
        store.geometry().n_layer, L);
  check(H % S == 0, "evictor: {} query heads over {} stored heads", H, S);
  Backend& be = store.backend();
  Scores sc;
  sc.n_stored = S;
  sc.layers.resize(size_t(L));
  if (!active()) return sc;
  const Protect prot = policy_.protect;
  const bool per_q = policy_.scorer->per_query_head(), reduce = per_q && H != S;
  const int64_t n_raw = per_q ? H : S, group = H / S;
  for (int64_t l = 0; l < L; ++l) {
    Scores::Layer& out = sc.layers[size_t(l)];
    out.ld = std::max<int64_t>(1, store.max_rows(l));
    out.rows.assign(store.layer_rows(l), store.layer_rows(l) + S);
    std::optional<ProbeBlock> win;
    if (rec && rec->spec().window > 0 && rec->window_size(l) > 0) win = rec->window(l);
    const ScoreInputs in{store, l, geo_, win ? &*win : nullptr, rec,
                         probes ? &(*probes)[size_t(l)] : nullptr, out.ld};
    DeviceArray<float> raw(be, n_raw * out.ld);
    policy_.scorer->score(in, raw.data());
    // Pool each head's candidate prefix (everything but the protected
    // window), reducing each query group before or after pooling.
    std::vector<int64_t> raw_rows(static_cast<size_t>(n_raw)), raw_len(static_cast<size_t>(n_raw)),
        len(static_cast<size_t>(S));
    for (int64_t h = 0; h < n_raw; ++h) {
      raw_rows[size_t(h)] = out.rows[size_t(per_q ? h / group : h)];
      raw_len[size_t(h)] = std::max<int64_t>(0, raw_rows[size_t(h)] - prot.window);
    }
    for (int64_t s = 0; s < S; ++s) len[size_t(s)] = std::max<int64_t>(0, out.rows[size_t(s)] - prot.window);
    out.s = DeviceArray<float>(be, S * out.ld);
    if (reduce && policy_.gqa_first) {
      DeviceArray<float> grouped(be, S * out.ld);
      be.reduce_groups(raw.data(), grouped.data(), S, group, out.ld, out.rows.data(), policy_.gqa);
      be.pool(grouped.data(), out.s.data(), S, out.ld, len.data(), out.rows.data(), policy_.kernel,
              policy_.pool);
    } else if (reduce) {
      DeviceArray<float> pooled(be, n_raw * out.ld);
      be.pool(raw.data(), pooled.data(), n_raw, out.ld, raw_len.data(), raw_rows.data(),
              policy_.kernel, policy_.pool);
      be.reduce_groups(pooled.data(), out.s.data(), S, group, out.ld, out.rows.data(), policy_.gqa);
    } else {
      be.pool(raw.data(), out.s.data(), S, out.ld, len.data(), out.rows.data(), policy_.kernel,
              policy_.pool);
    }
  }
  return sc;
}

CutPlan Evictor::select(const KvStore& store, const Scores& sc, const Budget& budget,
                        const std::vector<int64_t>* head_budgets) const {
  const int64_t L = geo_.n_layer, S = store.n_stored();
  Backend& be = store.backend();
  CutPlan p;
  p.budget.assign(size_t(L * S), 0);
  p.rows = RowSelection::empty(L, S);
  if (!active()) {  // keep everything
    p.rows.off.clear();
    p.rows.off.push_back(0);
    for (int64_t l = 0; l < L; ++l)
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t j = 0; j < store.rows(l, s); ++j) p.rows.items.push_back(j);
        p.rows.off.push_back(int64_t(p.rows.items.size()));
        p.budget[size_t(l * S + s)] = store.rows(l, s);
      }
    return p;
  }
  check(sc.n_stored == S && int64_t(sc.layers.size()) == L, "evictor: scores of another cache");
  const Protect prot = policy_.protect;
  // Every head holds the same rows right after the prompt; their count sets
  // the per-layer budgets (pyramid) unless per-head budgets are given.
  const std::vector<int64_t> layer_budget =
      layer_keep(budget, policy_.alloc, store.rows(0, 0), L, prot.window, policy_.beta);
  // Ada-KV: every layer's split where the scores are, then one read of the
  // counts [L, S].
  std::vector<int64_t> ada;
  if (!head_budgets && policy_.alloc == Allocation::kAdaKV) {
    DeviceArray<int64_t> counts(be, L * S);
    std::vector<Backend::AdaKvLayer> layers;
    for (int64_t l = 0; l < L; ++l) {
      const Scores::Layer& ls = sc.layers[size_t(l)];
      layers.push_back({ls.s.data(), ls.ld, ls.rows.data(), layer_budget[size_t(l)]});
    }
    be.adakv_split(layers, S, prot.sinks, prot.window, policy_.floor, policy_.ada_variant,
                   counts.data());
    const HostRead<int64_t> host(be, counts.data(), L * S);
    ada.assign(host.data(), host.data() + L * S);
  }
  std::vector<int64_t> per_head(static_cast<size_t>(S));
  for (int64_t l = 0; l < L; ++l) {
    const Scores::Layer& ls = sc.layers[size_t(l)];
    for (int64_t s = 0; s < S; ++s)
      check(ls.rows[size_t(s)] == store.rows(l, s), "evictor: scores out of step with the cache");
    if (head_budgets) {
      for (int64_t s = 0; s < S; ++s) per_head[size_t(s)] = (*head_budgets)[size_t(l * S + s)];
    } else if (!ada.empty()) {
      std::copy(ada.begin() + l * S, ada.begin() + (l + 1) * S, per_head.begin());
    } else {
      std::fill(per_head.begin(), per_head.end(), layer_budget[size_t(l)]);
    }
    for (int64_t s = 0; s < S; ++s) {
      const int64_t kept = std::min(per_head[size_t(s)], ls.rows[size_t(s)]);
      p.budget[size_t(l * S + s)] = kept;
      p.rows.off[size_t(l * S + s + 1)] = p.rows.off[size_t(l * S + s)] + kept;
    }
  }
  p.rows.items.resize(size_t(p.rows.off.back()));
  for (int64_t l = 0; l < L; ++l) {
    const Scores::Layer& ls = sc.layers[size_t(l)];
    const std::vector<int64_t> off = p.rows.layer_offsets(l);
    // min(allowed, rows) per head: selecting with it keeps the same rows.
    const std::vector<int64_t> budgets(p.budget.begin() + l * S, p.budget.begin() + (l + 1) * S);
    int64_t* dst = p.rows.items.data() + p.rows.off[size_t(l * S)];
    if (be.host_memory()) {
      be.select_rows(ls.s.data(), S, ls.ld, ls.rows.data(), budgets.data(), prot.sinks, prot.window,
                     dst, off.data());
    } else if (off.back() > 0) {
      DeviceArray<int64_t> idx(be, off.back());
      be.select_rows(ls.s.data(), S, ls.ld, ls.rows.data(), budgets.data(), prot.sinks, prot.window,
                     idx.data(), off.data());
      be.download(dst, idx.data(), idx.bytes());
    }
  }
  return p;
}

EvictionReport Evictor::report(const KvStore& store, const CutPlan& p) const {
  EvictionReport r;
  r.kept = store.positions_of(p.rows);
  r.budget = p.budget;
  r.n_rows_before = store.max_rows();
  r.kv_bytes_before = store.kv_bytes();
  r.kv_bytes_after = size_t(p.rows.total()) * 2 * size_t(store.geometry().head_dim) *
                     dtype_row_bytes(store.type(), 1);
  return r;
}

EvictionReport Evictor::compress(KvStore& store, Recorder* rec,
                                 const std::vector<ProbeBlock>* probes, int64_t headroom) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const size_t bytes_before = store.kv_bytes();  // before any copy per query head
  replicate_if_needed(store);
  const CutPlan p = plan(store, rec, cfg_.budget, probes);
  EvictionReport r = report(store, p);
  store.retain_rows(p.rows, headroom);
  if (rec) rec->retain_rows(p.rows, store);
  r.kv_bytes_before = bytes_before;
  r.kv_bytes_after = store.kv_bytes();
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  head_budget_ = p.budget;
  since_cut_ = 0;
  return r;
}

bool Evictor::after_decode(KvStore& store, Recorder* rec) {
  if (!active() || cfg_.decode_every <= 0 || head_budget_.empty()) return false;
  if (++since_cut_ < cfg_.decode_every) return false;
  since_cut_ = 0;
  const CutPlan p = select(store, score(store, rec), cfg_.budget, &head_budget_);
  store.retain_rows(p.rows, int64_t(cfg_.decode_every));
  if (rec) rec->retain_rows(p.rows, store);
  return true;
}

}  // namespace kvsieve
