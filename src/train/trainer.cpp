#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <numbers>
#include <memory>
#include <random>

#include "core/atomic_file.h"
#include "core/dtype.h"
#include "core/error.h"
#include "engine/context.h"
#include "engine/soft_tokens.h"
#include "train/prompt_file.h"
#include "train/targets.h"

namespace kvsieve {
namespace {

using clock_type = std::chrono::steady_clock;

struct Example {
  std::vector<int32_t> prompt;  // context + question
  int64_t n_soft_prompt = 0;    // tokens the soft tokens follow (context, or all)
};

std::vector<Example> read_data(const TrainConfig& cfg, const Tokenizer& tok) {
  std::vector<Example> out;
  for (PromptLine& p : read_prompt_lines(cfg.data, tok, "training data")) {
    Example e;
    e.prompt = std::move(p.ids);
    e.n_soft_prompt = cfg.query_agnostic ? p.n_context : int64_t(e.prompt.size());
    if (cfg.max_prompt > 0 && int64_t(e.prompt.size()) > cfg.max_prompt) {
      // Keep the end (where the question is); the front is cut.
      const int64_t cut = int64_t(e.prompt.size()) - cfg.max_prompt;
      check(e.n_soft_prompt > cut + 1, "'{}' line {}: --max-prompt leaves no context", cfg.data, p.line);
      e.prompt.erase(e.prompt.begin() + (tok.bos() >= 0 ? 1 : 0), e.prompt.begin() + cut + (tok.bos() >= 0 ? 1 : 0));
      e.n_soft_prompt -= cut;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<float> initial_embeddings(const Model& m, const TrainConfig& cfg) {
  const ModelConfig& c = m.config();
  if (cfg.init_random) {
    // Rows with the token-embedding table's RMS.
    const TensorView& te = *m.weights().tok_embd;
    std::vector<float> row(static_cast<size_t>(c.n_embd));
    double ss = 0;
    const int64_t probe = std::min<int64_t>(c.n_vocab, 256);
    for (int64_t i = 0; i < probe; ++i) {
      dequantize_row(te.type, te.row_ptr(i), row.data(), c.n_embd);
      for (float x : row) ss += double(x) * x;
    }
    const double rms = std::sqrt(ss / double(probe * c.n_embd));
    std::mt19937_64 rng(cfg.seed);
    std::normal_distribution<double> g(0.0, rms);
    std::vector<float> e(size_t(cfg.soft_tokens * c.n_embd));
    for (auto& x : e) x = float(g(rng));
    return e;
  }
  const Tokenizer* tok = m.tokenizer();
  check(tok != nullptr, "the model has no tokenizer to read --init-text");
  std::vector<int32_t> ids = tok->encode(cfg.init_text.empty() ? std::string(" ") : cfg.init_text, false);
  check(!ids.empty(), "--init-text gives no tokens");
  std::vector<int32_t> rep;
  for (int64_t i = 0; i < cfg.soft_tokens; ++i) rep.push_back(ids[size_t(i) % ids.size()]);
  return soft_tokens_from_ids(m, rep, "").embd;
}

struct AdamState {
  int64_t step = 0;
  std::vector<float> m, v;
};

void save_state(const std::string& path, const AdamState& s) {
  std::string b = "KVSJQS1\n";
  b.append(reinterpret_cast<const char*>(&s.step), 8);
  const int64_t n = int64_t(s.m.size());
  b.append(reinterpret_cast<const char*>(&n), 8);
  b.append(reinterpret_cast<const char*>(s.m.data()), s.m.size() * 4);
  b.append(reinterpret_cast<const char*>(s.v.data()), s.v.size() * 4);
  write_file_atomic(path, b);
}

AdamState load_state(const std::string& path, size_t n_params) {
  std::ifstream in(path, std::ios::binary);
  check(bool(in), "--resume: cannot read '{}'", path);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(b.size() == 24 + n_params * 8 && b.compare(0, 8, "KVSJQS1\n") == 0,
        "--resume: '{}' is not an optimizer state for {} parameters", path, n_params);
  AdamState s;
  int64_t n = 0;
  std::memcpy(&s.step, b.data() + 8, 8);
  std::memcpy(&n, b.data() + 16, 8);
  check(n == int64_t(n_params) && s.step >= 0, "--resume: '{}' does not match", path);
  s.m.resize(n_params);
  s.v.resize(n_params);
  std::memcpy(s.m.data(), b.data() + 24, n_params * 4);
  std::memcpy(s.v.data(), b.data() + 24 + n_params * 4, n_params * 4);
  return s;
}

double lr_at(const TrainConfig& c, int64_t step) {
  if (step < c.warmup) return c.lr * double(step + 1) / double(c.warmup);
  const double t = double(step - c.warmup) / double(std::max<int64_t>(1, c.steps - c.warmup));
  return c.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * std::min(1.0, t))));
}

}  // namespace

TrainResult train_judgeq(const Model& m, Backend& be, const TrainConfig& cfg) {
  const auto t0 = clock_type::now();
  check(m.tokenizer() != nullptr, "training needs a model with a tokenizer");
  check(cfg.soft_tokens > 0 && cfg.soft_tokens <= 4096, "--soft-tokens must be in [1, 4096]");
  check(cfg.steps > 0 && cfg.lr > 0 && cfg.max_response > 0, "bad training settings");
  check(!cfg.out.empty(), "--out is required");
  const std::vector<Example> data = read_data(cfg, *m.tokenizer());
  const std::string fp = model_fingerprint(m);
  const std::string tdir = cfg.target_dir.empty() ? cfg.out + ".targets" : cfg.target_dir;
  std::filesystem::create_directories(tdir);

  // Targets, computed once and kept on disk.
  TrainResult res;
  std::vector<JudgeTarget> targets(data.size());
  {
    const auto tt = clock_type::now();
    for (size_t i = 0; i < data.size(); ++i) {
      const Example& e = data[i];
      const std::string path =
          tdir + "/" + target_cache_key(fp, e.prompt, e.n_soft_prompt, cfg.max_response) + ".bin";
      if (!load_target(path, targets[i])) {
        targets[i] = compute_target(m, be, e.prompt, e.n_soft_prompt, cfg.max_response);
        save_target(path, targets[i]);
      }
      if (cfg.progress)
        std::fprintf(stderr, "\rkvsieve: targets %zu/%zu", i + 1, data.size());
    }
    if (cfg.progress) std::fprintf(stderr, "\n");
    res.target_seconds = std::chrono::duration<double>(clock_type::now() - tt).count();
  }
  std::vector<size_t> usable;
  for (size_t i = 0; i < data.size(); ++i)
    if (!targets[i].response.empty()) usable.push_back(i);
  check(!usable.empty(), "no training prompt got a response (the model ends every answer at once)");

  // Parameters and optimizer.
  std::vector<float> E = initial_embeddings(m, cfg);
  AdamState st;
  st.m.assign(E.size(), 0.0f);
  st.v.assign(E.size(), 0.0f);
  if (cfg.resume) {
    const SoftTokens s = read_soft_tokens(cfg.out);
    check_soft_tokens_fit(s, m);
    check(s.m == cfg.soft_tokens, "--resume: '{}' has {} soft tokens, not {}", cfg.out, s.m,
          cfg.soft_tokens);
    E = s.embd;
    st = load_state(cfg.out + ".state", E.size());
  }
  auto checkpoint = [&](const std::string& origin) {
    SoftTokens s = soft_tokens_from_ids(m, {0}, origin);
    s.m = cfg.soft_tokens;
    s.embd = E;
    write_soft_tokens(cfg.out, s);
    save_state(cfg.out + ".state", st);
  };

  // Prompt caches kept between steps (least recently used dropped).
  std::list<std::pair<size_t, std::unique_ptr<Context>>> lru;
  size_t lru_bytes = 0;
  const size_t cache_cap = size_t(std::max<int64_t>(0, cfg.cache_mib)) << 20;
  auto session_for = [&](size_t i) -> Context& {
    for (auto it = lru.begin(); it != lru.end(); ++it)
      if (it->first == i) {
        lru.splice(lru.begin(), lru, it);
        return *lru.front().second;
      }
    const auto tp = clock_type::now();
    auto s = std::make_unique<Context>(m, be);
    const Example& e = data[i];
    s->prefill(std::vector<int32_t>(e.prompt.begin(), e.prompt.begin() + e.n_soft_prompt), 256);
    res.prefill_seconds += std::chrono::duration<double>(clock_type::now() - tp).count();
    ++res.prefills;
    lru_bytes += s->store().kv_bytes();
    lru.emplace_front(i, std::move(s));
    auto over = [&] {
      return cfg.cache_prompts > 0 ? int64_t(lru.size()) > cfg.cache_prompts : lru_bytes > cache_cap;
    };
    while (lru.size() > 1 && over()) {
      lru_bytes -= lru.back().second->store().kv_bytes();
      lru.pop_back();
    }
    return *lru.front().second;
  };

  // The order of prompts: a fresh shuffle per epoch, from the seed.
  auto prompt_at = [&](int64_t step) {
    const int64_t epoch = step / int64_t(usable.size());
    std::vector<size_t> order = usable;
    std::mt19937_64 rng(cfg.seed * 1000003ull + uint64_t(epoch));
    std::shuffle(order.begin(), order.end(), rng);
    return order[size_t(step % int64_t(usable.size()))];
  };

  res.first_step = st.step;
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  std::vector<float> grad(E.size());
  const auto ts = clock_type::now();
  double avg = 0;
  const int64_t stop = cfg.stop_after > 0 ? std::min(cfg.stop_after, cfg.steps) : cfg.steps;
  while (st.step < stop) {
    const size_t i = prompt_at(st.step);
    Context& s = session_for(i);
    SoftPass<float> pass(m, s.store(), be);
    AttentionMaps pred, dmaps;
    pass.forward(E.data(), cfg.soft_tokens, pred);
    const double loss = judge_loss(cfg.loss, pred, targets[i].maps, cfg.layers, &dmaps);
    pass.backward(dmaps, grad.data());
    double norm = 0;
    for (float g : grad) norm += double(g) * g;
    norm = std::sqrt(norm);
    const double scale = cfg.clip > 0 && norm > cfg.clip ? cfg.clip / norm : 1.0;
    const double lr = lr_at(cfg, st.step);
    ++st.step;
    const double bc1 = 1 - std::pow(b1, double(st.step)), bc2 = 1 - std::pow(b2, double(st.step));
    for (size_t k = 0; k < E.size(); ++k) {
      const double g = double(grad[k]) * scale;
      st.m[k] = float(b1 * st.m[k] + (1 - b1) * g);
      st.v[k] = float(b2 * st.v[k] + (1 - b2) * g * g);
      const double upd = (st.m[k] / bc1) / (std::sqrt(st.v[k] / bc2) + eps);
      E[k] = float(E[k] - lr * (upd + cfg.weight_decay * E[k]));
    }
    res.losses.push_back(loss);
    avg = res.losses.size() == 1 ? loss : 0.95 * avg + 0.05 * loss;
    if (cfg.progress) {
      const double el = std::chrono::duration<double>(clock_type::now() - ts).count();
      const double rate = double(res.losses.size()) / std::max(el, 1e-9);
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.6g (avg %.6g)  %.2f steps/s  ETA %.0f s   ",
                   (long long)st.step, (long long)cfg.steps, loss, avg, rate,
                   double(cfg.steps - st.step) / std::max(rate, 1e-9));
    }
    if (cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0 && st.step < cfg.steps)
      checkpoint(fmt::format("training: step {} of {}", st.step, cfg.steps));
  }
  if (cfg.progress) std::fprintf(stderr, "\n");
  checkpoint(st.step < cfg.steps
                 ? fmt::format("training: step {} of {}", st.step, cfg.steps)
                 : fmt::format("trained: {} steps on {} ({} prompts), soft tokens after the {}, "
                               "{} loss, last average {:.6g}",
                               st.step, std::filesystem::path(cfg.data).filename().string(),
                               usable.size(), cfg.query_agnostic ? "context (query-agnostic)" : "question",
                               cfg.loss == JudgeLoss::kMse ? "mse" : "kl", avg));
  res.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  return res;
}

}  // namespace kvsieve
