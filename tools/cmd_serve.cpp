// kvsieve serve: an OpenAI-compatible HTTP server where every request picks
// how its KV cache is cut (tools/serve/ holds the server; this file its
// options and start-up).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <pthread.h>
#include <thread>

#include "cli_common.h"
#include "commands.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"

namespace kvsieve::cli {
namespace {

struct ServeCli {
  ModelOptions mo;
  serve::ServeOptions so;
  std::string kv = "full", kv_preset, granularity, kv_memory, alias;
  int64_t kv_budget = 0;
  double kv_ratio = 0;
  std::vector<std::string> judgeq;
  CLI::Option* default_tokens = nullptr;  // --default-max-tokens, to know if it was given
};

// "512M", "2G", "1.5GiB", "1048576": bytes (K, M, G, T in powers of 1024).
size_t parse_size(const std::string& s) {
  size_t i = 0;
  double v = 0;
  try {
    v = std::stod(s, &i);
  } catch (const std::exception&) {
    check(false, "--kv-memory: '{}' is not a size (e.g. 512M, 2G)", s);
  }
  std::string unit = s.substr(i);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && (unit.substr(1) == "IB" || unit.substr(1) == "B")) unit = unit.substr(0, 1);
  double mul = 1;
  if (unit == "K") mul = 1024.0;
  else if (unit == "M") mul = 1024.0 * 1024;
  else if (unit == "G") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T") mul = 1024.0 * 1024 * 1024 * 1024;
  else check(unit.empty() || unit == "B", "--kv-memory: unknown unit in '{}' (K, M, G, T)", s);
  check(v > 0 && v * mul < 1e18, "--kv-memory: '{}' is not a positive size", s);
  return size_t(v * mul);
}

int run(ServeCli& c) {
  serve::ServeOptions& so = c.so;
  so.eviction.spec = c.kv;
  so.eviction.preset = c.kv_preset;
  so.eviction.budget.tokens = c.kv_budget;
  so.eviction.budget.ratio = c.kv_ratio;
  so.eviction.granularity = granularity_for(c.granularity, c.kv_preset);
  check(c.kv.find("soft=") == std::string::npos || c.judgeq.empty(),
        "name Judge Q soft tokens with --judgeq NAME=FILE, not inside --kv");
  check_method(so.eviction.spec, so.eviction.preset);  // fails before the model loads
  if (method_cuts(so.eviction.spec, so.eviction.preset)) {
    check(c.kv_budget > 0 || c.kv_ratio > 0, "--kv {} needs --kv-budget or --kv-ratio", c.kv);
    check_eviction(so.eviction);
  }
  for (const std::string& nf : c.judgeq) {
    const size_t eq = nf.find('=');
    check(eq != std::string::npos && eq > 0 && eq + 1 < nf.size(), "--judgeq takes NAME=FILE, got '{}'", nf);
    const std::string name = nf.substr(0, eq), file = nf.substr(eq + 1);
    check(std::filesystem::is_regular_file(file), "--judgeq {}: no file '{}'", name, file);
    check(!so.judgeq_files.count(name), "--judgeq: the name '{}' is given twice", name);
    so.judgeq_files[name] = file;
  }
  if (!c.kv_memory.empty()) so.kv_memory = parse_size(c.kv_memory);
  // The default follows a lower --max-tokens unless it was given itself.
  if (c.default_tokens->count() == 0)
    so.limits.default_new_tokens = std::min(so.limits.default_new_tokens, so.limits.max_new_tokens);
  check(so.limits.default_new_tokens <= so.limits.max_new_tokens,
        "--default-max-tokens ({}) exceeds --max-tokens ({})", so.limits.default_new_tokens,
        so.limits.max_new_tokens);

  auto engine = c.mo.load();
  check(engine->has_tokenizer(), "the model '{}' has no tokenizer: give one with --tokenizer", c.mo.model);
  so.model_id = c.alias.empty() ? std::filesystem::path(c.mo.model).stem().string() : c.alias;
  if (so.limits.n_ctx == 0) so.limits.n_ctx = engine->info().n_ctx_train;
  // Each Judge Q file is loaded once now, so a bad one stops the start, not a request.
  for (const auto& [name, file] : so.judgeq_files) {
    SessionOptions t;
    t.eviction.spec = "judgeq:soft=" + file;
    t.eviction.budget.tokens = 64;
    try {
      engine->new_session(t);
    } catch (const Error& e) {
      check(false, "--judgeq {}: {}", name, e.what());
    }
  }

  // SIGINT/SIGTERM go to one thread that stops the server; SIGPIPE (a
  // client gone mid-write) is only an error on that write.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  serve::Metrics metrics;
  serve::Scheduler scheduler(engine, so, metrics);
  serve::HttpServer http(engine, so, metrics, scheduler);
  const int port = http.bind();
  std::fprintf(stderr, "kvsieve serve: model '%s' on %s; kv %s%s; kv memory %s; %d sessions at once\n",
               so.model_id.c_str(), engine->device_description().c_str(), so.eviction.spec.c_str(),
               method_cuts(so.eviction.spec, so.eviction.preset) ? (" (" + so.eviction.budget.describe() + ")").c_str() : "",
               so.kv_memory ? human_bytes(double(so.kv_memory)).c_str() : "unlimited", so.parallel);
  // One line on stdout that a script can wait for (it carries the port
  // when --port 0 picked one).
  std::printf("kvsieve serve: listening on http://%s:%d\n", so.host.c_str(), port);
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "kvsieve serve: stopping (signal %d)\n", sig);
    scheduler.shutdown();
    http.stop();
  });
  http.run();
  // run() returns after stop(); if it returned for another reason, wake the
  // waiter so that it can be joined.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  scheduler.shutdown();
  return 0;
}

KVSIEVE_COMMAND(15, [](CLI::App& app) -> std::function<int()> {
  auto c = std::make_shared<ServeCli>();
  auto* sub = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server; each request may choose how its KV cache is cut");
  c->mo.add_to(sub);
  serve::ServeOptions& so = c->so;
  serve::Limits& lim = so.limits;
  sub->add_option("--host", so.host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  sub->add_option("--port", so.port, "Port; 0 picks a free one (printed on stdout)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  sub->add_option("--alias", c->alias, "Model name clients use (default: the model file's name without extension)");
  sub->add_option("--api-key", so.api_key, "Require 'Authorization: Bearer KEY' (except on /health)");
  sub->add_option("--chat-template", so.chat_template,
                  "Chat format for /v1/chat/completions: llama2, llama3, mistral, chatml (default: "
                  "detected from the tokenizer)")
      ->check(CLI::IsMember({"llama2", "llama3", "mistral", "chatml", "qwen2"}));
  sub->add_option("--kv", c->kv, "Default eviction method for requests that name none, METHOD[:k=v,...]")
      ->capture_default_str();
  auto* budget = sub->add_option("--kv-budget", c->kv_budget, "Default tokens per head kept by a cut")
                     ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  sub->add_option("--kv-ratio", c->kv_ratio, "Default fraction of the prompt a cut removes, in (0, 1)")
      ->excludes(budget)
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--kv-preset", c->kv_preset, "Defaults of a reference library: kvpress, kvcache-factory")
      ->check(CLI::IsMember({"kvpress", "kvcache-factory"}));
  sub->add_option("--kv-granularity", c->granularity, "kv-head or query-head (default as `kvsieve run`)")
      ->check(CLI::IsMember({"kv-head", "query-head"}));
  sub->add_option("--kv-type", so.kv_type, "Element type of the KV caches: f32, f16, bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("--kv-memory", c->kv_memory,
                  "K/V bytes all sessions together may hold, e.g. 512M, 2G (default: unlimited); a "
                  "request that does not fit waits");
  sub->add_option("--judgeq", c->judgeq,
                  "Judge Q soft tokens a request may use as {\"method\": \"judgeq\", \"soft_tokens\": NAME}: "
                  "NAME=FILE (repeatable)");
  sub->add_option("--parallel", so.parallel, "Sessions alive at once (prefilling or decoding)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("--prefill-workers", so.prefill_workers, "Prompts prefilled (and cut) at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_option("--max-queue", lim.max_queue, "Requests that may wait; more get 503")
      ->capture_default_str()
      ->check(CLI::Range(size_t(0), size_t(1) << 20));
  sub->add_option("--max-body-bytes", lim.max_body_bytes, "Largest request body (413 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(size_t(1024), size_t(1) << 32));
  sub->add_option("--max-prompt-tokens", lim.max_prompt_tokens, "Most prompt tokens a request may send (0: no limit but the context)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  sub->add_option("--max-tokens", lim.max_new_tokens, "Most new tokens a request may ask for")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  c->default_tokens = sub->add_option("--default-max-tokens", lim.default_new_tokens,
                                      "New tokens when a request does not say (at most --max-tokens)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  sub->add_option("--ctx-size", lim.n_ctx, "Prompt + new tokens a request may reach (default: the model's training context)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  sub->add_option("--timeout", lim.timeout_seconds, "Seconds a request may take, waiting included")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1e7));
  sub->add_option("--http-threads", so.http_threads, "HTTP worker threads (default: max-queue + parallel + 8)")
      ->check(CLI::Range(1, 65536));
  return [c] { return run(*c); };
});

}  // namespace
}  // namespace kvsieve::cli
