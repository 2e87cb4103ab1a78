// The method registry, the presets of the reference libraries, and spec parsing.
#include "kv/policy.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "kv/budget.h"
#include "kv/methods/methods.h"
#include "kvsieve/policy.h"

namespace kvsieve {
namespace {

// Defaults every scored method reads (window, sinks, pooling, GQA), per method.
struct Shared {
  int64_t window = 0, sinks = 0, kernel = 1;
  const char* pool = "none";
};

const std::map<std::string, Shared>& shared_defaults() {
  static const std::map<std::string, Shared> d = {
      {"snapkv", {32, 0, 7, "max"}}, {"h2o", {32, 0, 1, "none"}},
      {"tova", {1, 0, 1, "none"}},   {"knorm", {0, 0, 1, "none"}},
      {"random", {0, 0, 1, "none"}}, {"streamingllm", {0, 4, 1, "none"}},
      {"laq", {0, 0, 7, "max"}},     {"laq++", {8, 0, 7, "max"}},
      {"judgeq", {0, 0, 7, "max"}},
  };
  return d;
}

// Library defaults, applied under the spec: preset -> method -> key=value.
const std::map<std::string, std::map<std::string, std::map<std::string, std::string>>>&
preset_table() {
  static const std::map<std::string, std::map<std::string, std::map<std::string, std::string>>> t = {
      {"kvpress",
       {{"snapkv", {{"window", "64"}, {"kernel", "5"}, {"pool", "avg"}, {"gqa", "mean"},
                    {"gqa_first", "0"}}},
        {"h2o", {{"window", "0"}, {"normalize", "1"}, {"gqa", "mean"}}},
        {"tova", {{"window", "1"}}},
        {"knorm", {{"window", "0"}}},
        {"streamingllm", {{"sinks", "4"}}},
        {"adakv", {{"variant", "kvpress"}, {"floor", "0.2"}}},
        {"pyramidkv", {{"beta", "20"}}}}},
      {"kvcache-factory",
       {{"snapkv", {{"window", "32"}, {"kernel", "7"}, {"pool", "max"}}},
        {"h2o", {{"window", "32"}, {"normalize", "0"}}},
        {"streamingllm", {{"sinks", "4"}}},
        {"adakv", {{"variant", "kvcache-factory"}, {"floor", "0.2"}}},
        {"pyramidkv", {{"beta", "20"}}}}},
  };
  return t;
}

void apply_preset(MethodParams& p, const std::string& method, std::string_view preset) {
  if (preset.empty()) return;
  const auto& t = preset_table();
  auto it = t.find(std::string(preset));
  check(it != t.end(), "unknown KV preset '{}' (kvpress, kvcache-factory)", preset);
  auto m = it->second.find(method);
  if (m == it->second.end()) return;
  for (const auto& [k, v] : m->second) p.set_default(k, v);
}

PoolKind pool_from(const std::string& s) {
  return s == "max" ? PoolKind::kMax : s == "avg" ? PoolKind::kAvg : PoolKind::kNone;
}
Reduce reduce_from(const std::string& s) {
  return s == "max" ? Reduce::kMax : s == "sum" ? Reduce::kSum : Reduce::kMean;
}

void read_shared(MethodParams& p, const std::string& method, Policy& out) {
  const Shared d = shared_defaults().at(method);
  out.protect.window = p.get_int("window", d.window, 0, 1 << 24);
  out.protect.sinks = p.get_int("sinks", d.sinks, 0, 1 << 24);
  out.kernel = p.get_int("kernel", d.kernel, 1, 1023);
  check(out.kernel % 2 == 1, "{}: kernel must be odd, got {}", method, out.kernel);
  out.pool = pool_from(p.get_choice("pool", d.pool, {"max", "avg", "none"}));
  out.gqa = reduce_from(p.get_choice("gqa", "mean", {"mean", "max", "sum"}));
  out.gqa_first = p.get_int("gqa_first", 0, 0, 1) != 0;
}

Policy build(MethodParams& p, std::string_view preset, bool top_level);

// pyramidkv / adakv: the base method's policy with another allocation.
Policy wrap_base(MethodParams& p, std::string_view preset) {
  const std::string base =
      p.get_choice("base", "snapkv", {"snapkv", "h2o", "tova", "knorm", "random", "streamingllm",
                                      "laq", "laq++", "judgeq"});
  MethodParams rest = p.forward_rest(base);
  Policy b = build(rest, preset, false);
  rest.finish();
  return b;
}

// "snapkv/window=32/kernel=7" -> "snapkv:window=32,kernel=7" (a spec inside a spec).
std::string nested_spec(std::string s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos) return s;
  s[slash] = ':';
  std::replace(s.begin() + int64_t(slash), s.end(), '/', ',');
  return s;
}

void build_laq(MethodParams& p, Policy& o) {
  o.probe_source = "lookahead";
  o.lookahead = p.get_int("n", 8, 0, 4096);
  o.stage1_spec = nested_spec(p.get_string("stage1", "snapkv/window=32/kernel=7/pool=max"));
  const Policy stage1 = make_policy(o.stage1_spec);
  check(stage1.scorer && stage1.probe_source.empty(),
        "{}: stage1 must be a method that cuts on its own (e.g. snapkv), got '{}'", o.method,
        o.stage1_spec);
  o.scorer = make_probe_attention_scorer(o.protect.window);
}

const std::vector<MethodInfo>& registry() {
  static const std::vector<MethodInfo> methods = {
      {"full", "no eviction: the whole prompt stays (the reference)", {}, nullptr},
      {"streamingllm", "attention sinks plus the most recent tokens", {},
       [](MethodParams&, Policy& o) { o.scorer = make_recency_scorer(); }},
      {"h2o", "heavy hitters: attention summed over all prompt queries (causal)",
       {"normalize=0  divide by the number of queries that saw each token (kvpress)"},
       [](MethodParams& p, Policy& o) {
         o.scorer = make_cumulative_attention_scorer(p.get_int("normalize", 0, 0, 1) != 0);
       }},
      {"snapkv", "attention of the last `window` prompt queries, pooled", {},
       [](MethodParams&, Policy& o) {
         o.scorer = make_window_attention_scorer(std::max<int64_t>(1, o.protect.window));
       }},
      {"pyramidkv", "a scorer (snapkv) with PyramidKV's per-layer budgets",
       {"base=snapkv  the scorer", "beta=20  ratio of the largest to the smallest layer budget"},
       nullptr},
      {"adakv", "a scorer (snapkv) with Ada-KV's head-adaptive split of each layer's budget",
       {"base=snapkv  the scorer", "floor=0.2  share of a head's budget it always keeps",
        "variant=kvpress  kvpress (global top-k after a safeguard) or kvcache-factory "
        "(normalised counts)"},
       nullptr},
      {"tova", "attention of the last prompt query averaged over all heads", {},
       [](MethodParams&, Policy& o) { o.scorer = make_tova_scorer(); }},
      {"laq", "Lookahead Q-Cache: queries of a few greedy steps decoded on a cut copy of the cache",
       {"n=8  lookahead steps (stop early at end of generation)",
        "stage1=snapkv/window=32/kernel=7/pool=max  method that cuts the copy ('/' for ',')"},
       build_laq},
      {"laq++", "LAQ plus the last `window` prompt queries (window=8)",
       {"n=8  lookahead steps", "stage1=snapkv/window=32/kernel=7/pool=max  as for laq"},
       build_laq},
      {"judgeq", "Judge Q: queries of trained soft tokens appended after the prompt",
       {"soft=FILE  soft-token GGUF (kvsieve judgeq-init)",
        "check=1  0: accept soft tokens made for other weights of the same shape (e.g. a quantized copy)"},
       [](MethodParams& p, Policy& o) {
         o.probe_source = "soft-tokens";
         o.soft_path = p.get_string("soft", "");
         check(!o.soft_path.empty(), "judgeq needs soft=FILE (a soft-token GGUF)");
         o.soft_check = p.get_int("check", 1, 0, 1) != 0;
         o.scorer = make_probe_attention_scorer(o.protect.window);
       }},
      {"knorm", "keys with the smallest L2 norm", {},
       [](MethodParams&, Policy& o) { o.scorer = make_knorm_scorer(); }},
      {"random", "uniformly random tokens (a floor for the others)",
       {"seed=0  random seed"},
       [](MethodParams& p, Policy& o) {
         o.scorer = make_random_scorer(uint64_t(p.get_int("seed", 0, 0, INT64_MAX)));
       }},
  };
  return methods;
}

Policy build(MethodParams& p, std::string_view preset, bool top_level) {
  const std::string& name = p.method();
  const MethodInfo* info = nullptr;
  for (const auto& m : registry())
    if (m.name == name) info = &m;
  if (!info) {
    std::string list;
    for (const auto& m : registry()) list += (list.empty() ? "" : ", ") + m.name;
    fail("unknown KV method '{}' (known: {}; kvsieve run --kv help)", name, list);
  }
  check(top_level || (name != "pyramidkv" && name != "adakv" && name != "full"),
        "{} cannot be the base of another method", name);
  apply_preset(p, name, preset);
  Policy out;
  out.method = name;
  if (name == "full") return out;
  if (name == "pyramidkv" || name == "adakv") {
    double beta = 20, floor = 0.2;
    std::string variant = "kvpress";
    if (name == "pyramidkv") beta = p.get_real("beta", 20, 1, 1e6);
    if (name == "adakv") {
      floor = p.get_real("floor", 0.2, 0, 1);
      variant = p.get_choice("variant", "kvpress", {"kvpress", "kvcache-factory"});
    }
    const std::string own = p.canonical();  // read before the base takes the rest
    Policy b = wrap_base(p, preset);
    b.alloc = name == "pyramidkv" ? Allocation::kPyramid : Allocation::kAdaKV;
    b.beta = beta;
    b.floor = floor;
    b.ada_variant = variant;
    b.method = name;
    b.spec = own + (own.find(':') == std::string::npos ? ":" : ",") + "base=" + b.spec;
    return b;
  }
  read_shared(p, name, out);
  out.method = name;
  info->build(p, out);
  out.spec = p.canonical();
  return out;
}

}  // namespace

const std::vector<MethodInfo>& kv_methods() { return registry(); }

std::vector<std::string> kv_presets() { return {"kvpress", "kvcache-factory"}; }

std::string check_method(const std::string& spec, const std::string& preset) {
  return make_policy(spec, preset).spec;
}

bool method_cuts(const std::string& spec, const std::string& preset) {
  return make_policy(spec, preset).scorer != nullptr;
}

void check_eviction(const EvictionConfig& cfg) {
  const Policy p = make_policy(cfg.spec, cfg.preset);
  if (!p.scorer) return;
  validate(cfg.budget);
  const int64_t prot = p.protect.window + p.protect.sinks;
  check(cfg.budget.by_ratio() || prot <= cfg.budget.tokens,
        "{}: the protected tokens (window {} + sinks {}) exceed the budget of {} tokens", p.method,
        p.protect.window, p.protect.sinks, cfg.budget.tokens);
  check(cfg.decode_every >= 0, "--kv-decode-every must not be negative");
  check(cfg.decode_every == 0 || !p.scorer->needs_probes(),
        "{}: --kv-decode-every is not available (its probes exist only after the prompt)", p.method);
}

Policy make_policy(std::string_view spec, std::string_view preset) {
  MethodParams p = MethodParams::parse(spec);
  Policy out = build(p, preset, true);
  p.finish();
  if (out.method == "full") out.spec = "full";
  return out;
}

std::string kv_methods_help() {
  std::string s =
      "KV eviction methods (--kv METHOD[:key=value,...]):\n\n";
  for (const auto& m : registry()) {
    s += fmt::format("  {:<13} {}\n", m.name, m.summary);
    if (m.name != "full" && m.name != "pyramidkv" && m.name != "adakv") {
      const Shared d = shared_defaults().at(m.name);
      s += fmt::format("  {:<13}   window={} sinks={} kernel={} pool={} gqa=mean gqa_first=0\n", "",
                       d.window, d.sinks, d.kernel, d.pool);
    }
    for (const auto& p : m.params) s += fmt::format("  {:<13}   {}\n", "", p);
  }
  s += R"(
Shared parameters:
  window     recent tokens always kept; snapkv also scores with their queries
  sinks      first tokens always kept
  kernel     pooling width along the sequence (odd); pool = max, avg (zero-padded) or none
  gqa        how a query group's scores become its KV head's: mean, max, sum
  gqa_first  1: reduce the group before pooling (KVCache-Factory); 0: after (kvpress)
pyramidkv and adakv take base=METHOD and pass the other parameters to it.

Presets (--kv-preset) set the defaults of a reference library under the spec:
  kvpress          snapkv window=64 kernel=5 pool=avg; h2o normalize=1 window=0;
                   budgets as --kv-ratio; KV-head granularity
  kvcache-factory  snapkv window=32 kernel=7 pool=max; h2o window=32;
                   adakv variant=kvcache-factory; query-head granularity
)";
  return s;
}

}  // namespace kvsieve
