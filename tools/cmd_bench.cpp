// kvsieve bench: how fast a model runs here, through the public API alone.
//   prefill tokens/s at each prompt length (-p 512,2048)
//   decode tokens/s at each cache depth (-n 128 tokens after -d 0,2048 cached)
//   the time of a cut per eviction method (--methods snapkv,h2o; --budget), also
//   as a share of the prefill of the prompt it cuts, and the K/V bytes it frees
//   peak resident memory, and the most device memory one session held
// Each figure is run -r times (after one untimed warm-up run of the smallest
// case); the table gives the median and the spread (min..max), --json the
// same as one JSON object. Token ids are random (seeded), so any model,
// with or without a tokenizer, can be measured; what is timed is the forward
// passes, not sampling.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct BenchOptions {
  ModelOptions mo;
  std::string prompts = "512";
  std::string depths = "0";
  int64_t n_decode = 128;
  int reps = 3;
  int64_t batch = 256;
  std::string methods;
  int64_t budget = 128;
  std::string kv_type = "f32";
  bool json = false;
  uint64_t seed = 1;
};

struct Stat {
  double median = 0, lo = 0, hi = 0;  // of the per-run values
};
Stat stat_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stat s;
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.lo = v.front();
  s.hi = v.back();
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const BenchOptions& o) {
  check(o.reps >= 1, "--reps must be at least 1");
  check(o.n_decode >= 1, "-n must be at least 1");
  const auto prompts = numbers<int64_t>(o.prompts, "-p");
  const auto depths = numbers<int64_t>(o.depths, "-d");
  for (auto p : prompts) check(p >= 1, "-p: prompt lengths must be at least 1 (got {})", p);
  for (auto d : depths) check(d >= 0, "-d: depths must be at least 0 (got {})", d);
  const auto methods = split(o.methods, ", ");
  for (const auto& m : methods) check_method(m);
  auto engine = o.mo.load(o.json);
  const ModelInfo& info = engine->info();
  std::mt19937_64 rng(o.seed);
  auto random_ids = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& t : ids) t = int32_t(rng() % uint64_t(info.n_vocab));
    return ids;
  };
  SessionOptions so;
  so.threads = o.mo.threads;
  so.kv_type = o.kv_type;
  so.batch = o.batch;

  nlohmann::json out;
  out["model"] = info.path;
  out["params"] = info.n_params;
  out["weight_bytes"] = info.weight_bytes;
  out["device"] = engine->device_description();
  out["reps"] = o.reps;
  auto stat_json = [](const Stat& s) { return nlohmann::json{{"median", s.median}, {"min", s.lo}, {"max", s.hi}}; };

  // Warm-up: page the weights in and size the scratch buffers once.
  {
    auto s = engine->new_session(so);
    s->prefill(random_ids(std::min<int64_t>(prompts.front(), 64)));
  }

  std::vector<std::string> rows;
  auto row = [&](const std::string& what, const Stat& s, const char* unit) {
    rows.push_back(fmt::format("{:<28} {:>10.2f} {:<8} ({:.2f} .. {:.2f})", what, s.median, unit, s.lo, s.hi));
  };

  size_t peak_device = 0;  // the most any one session held
  double longest_prefill_s = 0;
  for (int64_t p : prompts) {
    std::vector<double> tps;
    for (int r = 0; r < o.reps; ++r) {
      auto s = engine->new_session(so);
      const auto ids = random_ids(p);
      const auto t0 = std::chrono::steady_clock::now();
      s->prefill(ids);
      tps.push_back(double(p) / seconds_since(t0));
      peak_device = std::max(peak_device, s->peak_device_bytes());
    }
    const Stat st = stat_of(tps);
    longest_prefill_s = double(p) / st.median;  // the last prompt: the one the cuts below use
    row(fmt::format("prefill pp{}", p), st, "tok/s");
    out["prefill"].push_back({{"tokens", p}, {"tokens_per_second", stat_json(st)}});
  }
  for (int64_t d : depths) {
    std::vector<double> tps;
    for (int r = 0; r < o.reps; ++r) {
      auto s = engine->new_session(so);
      if (d > 0) s->prefill(random_ids(d));
      const auto ids = random_ids(o.n_decode);
      const auto t0 = std::chrono::steady_clock::now();
      for (int32_t id : ids) s->decode(id);
      tps.push_back(double(o.n_decode) / seconds_since(t0));
      peak_device = std::max(peak_device, s->peak_device_bytes());
    }
    const Stat st = stat_of(tps);
    row(fmt::format("decode tg{} @ depth {}", o.n_decode, d), st, "tok/s");
    out["decode"].push_back({{"tokens", o.n_decode}, {"depth", d}, {"tokens_per_second", stat_json(st)}});
  }
  for (const auto& m : methods) {
    SessionOptions sc = so;
    sc.eviction.spec = m;
    sc.eviction.budget.tokens = o.budget;
    check_eviction(sc.eviction);
    std::vector<double> secs;
    size_t before = 0, after = 0;
    for (int r = 0; r < o.reps; ++r) {
      auto s = engine->new_session(sc);
      s->prefill(random_ids(prompts.back()));
      const CutReport c = s->compress();
      secs.push_back(1e3 * (c.seconds + c.probe_seconds));
      before = c.kv_bytes_before;
      after = c.kv_bytes_after;
      peak_device = std::max(peak_device, s->peak_device_bytes());
    }
    const Stat st = stat_of(secs);
    const double share = 100.0 * st.median / 1e3 / longest_prefill_s;
    rows.push_back(fmt::format("{:<28} {:>10.2f} {:<8} ({:.2f} .. {:.2f}); {:.1f}% of prefill, KV {} -> {}",
                               fmt::format("cut {} pp{} -> {}", m, prompts.back(), o.budget), st.median,
                               "ms", st.lo, st.hi, share, human_bytes(double(before)),
                               human_bytes(double(after))));
    out["cuts"].push_back({{"method", m}, {"prompt", prompts.back()}, {"budget", o.budget},
                           {"ms", stat_json(st)}, {"share_of_prefill", share / 100},
                           {"kv_bytes_before", before}, {"kv_bytes_after", after}});
  }
  const size_t peak = peak_rss_bytes();
  out["peak_rss_bytes"] = peak;
  out["peak_device_bytes"] = peak_device;

  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%s: %.1fM parameters, %s of weights; %s; %d runs each (median, min .. max)\n",
              info.path.c_str(), double(info.n_params) / 1e6, human_bytes(double(info.weight_bytes)).c_str(),
              engine->device_description().c_str(), o.reps);
  for (const auto& r : rows) std::printf("%s\n", r.c_str());
  std::printf("%-28s %10s\n", "peak resident memory", human_bytes(double(peak)).c_str());
  std::printf("%-28s %10s (one session: K/V, scratch, activations; weights apart)\n",
              "peak device memory", human_bytes(double(peak_device)).c_str());
  return 0;
}

KVSIEVE_COMMAND(60, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "Measure prefill and decode speed, cut time and peak memory");
  o->mo.add_to(sub);
  sub->add_option("-p,--prompts", o->prompts, "Prompt lengths to prefill, comma-separated")->capture_default_str();
  sub->add_option("-n,--n-decode", o->n_decode, "Tokens to decode per run")->capture_default_str();
  sub->add_option("-d,--depths", o->depths, "Cache depths to decode at, comma-separated")->capture_default_str();
  sub->add_option("-r,--reps", o->reps, "Runs per figure (median and min..max reported)")->capture_default_str();
  sub->add_option("-b,--batch", o->batch, "Prefill chunk size in tokens")->capture_default_str();
  sub->add_option("--methods", o->methods, "Eviction methods whose cut is timed (on the longest prompt), comma-separated");
  sub->add_option("--budget", o->budget, "Tokens per head kept by the timed cuts")->capture_default_str();
  sub->add_option("--kv-type", o->kv_type, "KV cache element type: f32, f16, bf16")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed of the random token ids")->capture_default_str();
  sub->add_flag("--json", o->json, "Print the figures as JSON");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
