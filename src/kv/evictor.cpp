#include "kv/evictor.h"

#include <chrono>

#include "core/error.h"

namespace kvsieve {

Granularity granularity_from_name(const std::string& s) {
  if (s == "kv-head") return Granularity::kKvHead;
  if (s == "query-head") return Granularity::kQueryHead;
  fail("unknown KV granularity '{}' (kv-head, query-head)", s);
}

const char* granularity_name(Granularity g) {
  return g == Granularity::kKvHead ? "kv-head" : "query-head";
}

Evictor::Evictor(const EvictionConfig& cfg, const AttnGeometry& geo, ThreadPool* pool)
    : cfg_(cfg), geo_(geo), policy_(make_policy(cfg.spec, cfg.preset)), pool_(pool) {
  check(geo.n_layer > 0 && geo.n_head > 0 && geo.n_head_kv > 0 && geo.n_head % geo.n_head_kv == 0,
        "evictor: bad attention geometry");
  check(cfg.decode_every >= 0, "--kv-decode-every must not be negative");
  if (!active()) return;
  check_budget(cfg.budget);
  check(cfg.decode_every == 0 || !policy_.scorer->needs_probes(),
        "{}: --kv-decode-every is not available (its probes exist only after the prompt)",
        policy_.method);
  // Decode-time re-selection needs a window of recent queries too.
  int64_t w = policy_.scorer->probe_window();
  if (w > 0 || cfg.decode_every > 0) w = std::max<int64_t>(w, 1);
  if (w > 0) window_ = std::make_unique<WindowProbes>(geo.n_layer, geo.n_head, geo.head_dim, w);
  if (policy_.scorer->needs_cumulative())
    cumulative_ = std::make_unique<CumulativeAttention>(geo.n_layer, geo.n_head, geo.head_dim);
}

void Evictor::check_budget(const Budget& b) const {
  validate(b);
  const int64_t prot = policy_.protect.window + policy_.protect.sinks;
  check(b.by_ratio() || prot <= b.tokens,
        "{}: the protected tokens (window {} + sinks {}) exceed the budget of {} tokens",
        policy_.method, policy_.protect.window, policy_.protect.sinks, b.tokens);
}

void Evictor::replicate_if_needed(KvCache& cache) const {
  if (cfg_.granularity == Granularity::kQueryHead && cache.geometry().repeat == 1 &&
      geo_.n_head != geo_.n_head_kv)
    cache.replicate(geo_.n_head / geo_.n_head_kv);
}

void Evictor::observe(const QueryEvent& e) {
  if (window_) window_->observe(e.layer, e.q, e.n, e.pos0);
  if (cumulative_) cumulative_->observe(e.layer, e.q, e.n, e.pos0, e.cache, pool_);
}

KeepSets Evictor::plan(const KvCache& cache, std::vector<int64_t>* budgets,
                       const std::vector<int64_t>* head_budgets,
                       const std::vector<ProbeBlock>* probes, const Budget* budget) const {
  const Budget& bud = budget ? *budget : cfg_.budget;
  const int64_t L = geo_.n_layer, S = cache.n_stored(), H = geo_.n_head;
  check(cache.geometry().n_layer == L, "evictor: cache has {} layers, the model {}",
        cache.geometry().n_layer, L);
  KeepSets ks;
  ks.n_layer = L;
  ks.n_heads = S;
  ks.keep.resize(size_t(L * S));
  if (budgets) budgets->assign(size_t(L * S), 0);
  if (!active()) {
    ks = cache.positions();
    if (budgets)
      for (int64_t i = 0; i < L * S; ++i) (*budgets)[size_t(i)] = int64_t(ks.keep[size_t(i)].size());
    return ks;
  }
  const Protect prot = policy_.protect;
  // Every head holds the same rows right after the prompt; their count sets
  // the per-layer budgets (pyramid) unless per-head budgets are given.
  const int64_t n0 = cache.rows(0, 0);
  const std::vector<int64_t> layer_budget =
      layer_keep(bud, policy_.alloc, n0, L, prot.window, policy_.beta);
  // Layers are independent: each task scores and selects whole layers.
  auto plan_layer = [&](int64_t l) {
    std::vector<std::vector<float>> raw, grouped;
    ScoreInputs in{cache, l, geo_, window_ ? &window_->layer(l) : nullptr, cumulative_.get(),
                   probes ? &(*probes)[size_t(l)] : nullptr, 0};
    policy_.scorer->score(in, raw);
    // Pool each head's candidate prefix (everything but the protected
    // window), reducing each query group before or after pooling.
    auto pool_heads = [&](std::vector<std::vector<float>>& v) {
      for (auto& s : v) {
        const int64_t n = int64_t(s.size()), m = std::max<int64_t>(0, n - prot.window);
        std::vector<float> o(s);
        pool1d(s.data(), m, policy_.kernel, policy_.pool, o.data());
        s.swap(o);
      }
    };
    const bool reduce = policy_.scorer->per_query_head() && H != S;
    if (reduce && policy_.gqa_first) {
      reduce_groups(raw, H / S, policy_.gqa, grouped);
      pool_heads(grouped);
    } else {
      pool_heads(raw);
      if (reduce) reduce_groups(raw, H / S, policy_.gqa, grouped);
      else grouped.swap(raw);
    }
    check(int64_t(grouped.size()) == S, "evictor: scorer gave {} heads, the cache has {}",
          grouped.size(), S);
    std::vector<int64_t> per_head(static_cast<size_t>(S));
    if (head_budgets) {
      for (int64_t s = 0; s < S; ++s) per_head[size_t(s)] = (*head_budgets)[size_t(l * S + s)];
    } else if (policy_.alloc == Allocation::kAdaKV) {
      per_head = adakv_split(grouped, layer_budget[size_t(l)], prot, policy_.floor,
                             policy_.ada_variant);
    } else {
      std::fill(per_head.begin(), per_head.end(), layer_budget[size_t(l)]);
    }
    for (int64_t s = 0; s < S; ++s) {
      const HeadView kv = cache.head(l, s);
      check(int64_t(grouped[size_t(s)].size()) == kv.n, "evictor: scores out of step with the cache");
      const std::vector<int64_t> rows =
          select_rows(grouped[size_t(s)].data(), kv.n, per_head[size_t(s)], prot);
      auto& keep = ks.at(l, s);
      keep.reserve(rows.size());
      for (int64_t r : rows) keep.push_back(kv.pos[r]);
      if (budgets) (*budgets)[size_t(l * S + s)] = std::min(per_head[size_t(s)], kv.n);
    }
  };
  std::vector<std::string> errors(static_cast<size_t>(L));
  auto run_layers = [&](int64_t begin, int64_t end, int) {
    for (int64_t l = begin; l < end; ++l) {
      try {
        plan_layer(l);
      } catch (const Error& e) {
        errors[size_t(l)] = e.what();
      }
    }
  };
  if (pool_) pool_->parallel_for(L, run_layers);
  else run_layers(0, L, 0);
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
  return ks;
}

EvictionReport Evictor::cut(KvCache& cache, const Budget& budget,
                            const std::vector<ProbeBlock>* probes) const {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (active()) check_budget(budget);
  EvictionReport r;
  r.n_rows_before = cache.max_rows();
  r.kv_bytes_before = cache.kv_bytes();
  replicate_if_needed(cache);
  r.kept = plan(cache, &r.budget, nullptr, probes, &budget);
  cache.retain(r.kept);
  r.kv_bytes_after = cache.kv_bytes();
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

EvictionReport Evictor::compress(KvCache& cache, const std::vector<ProbeBlock>* probes) {
  const size_t bytes_before = cache.kv_bytes();  // before any copy per query head
  replicate_if_needed(cache);
  const KeepSets before = cache.positions();
  EvictionReport r = cut(cache, cfg_.budget, probes);
  r.kv_bytes_before = bytes_before;
  if (cumulative_) cumulative_->retain(before, r.kept);
  head_budget_ = r.budget;
  since_cut_ = 0;
  return r;
}

bool Evictor::after_decode(KvCache& cache) {
  if (!active() || cfg_.decode_every <= 0 || head_budget_.empty()) return false;
  if (++since_cut_ < cfg_.decode_every) return false;
  since_cut_ = 0;
  const KeepSets before = cache.positions();
  const KeepSets keep = plan(cache, nullptr, &head_budget_);
  cache.retain(keep);
  if (cumulative_) cumulative_->retain(before, keep);
  return true;
}

}  // namespace kvsieve
