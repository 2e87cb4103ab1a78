// kvsieve eval: a sweep of tasks x lengths x methods x budgets, results as
// JSON lines (resumable); see src/eval/runner.h.
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct EvalOptions {
  ModelOptions mo;
  std::string tasks = "niah", lengths = "1024", budgets, ratios, depths, granularity;
  std::vector<std::string> kv;
  EvalConfig cfg;
  bool no_progress = false;
  bool print_samples = false;
  bool chat = false;
};

int run(EvalOptions& o) {
  if (o.tasks == "help") {
    for (const auto& [name, summary] : eval_tasks()) std::printf("  %-18s %s\n", name.c_str(), summary.c_str());
    return 0;
  }
  EvalConfig& c = o.cfg;
  c.tasks = split(o.tasks, ", ");
  c.lengths = numbers<int64_t>(o.lengths, "--lengths");
  c.budgets = numbers<int64_t>(o.budgets, "--budgets");
  c.ratios = numbers<double>(o.ratios, "--ratios");
  c.task_options.depths = numbers<double>(o.depths, "--depths");
  for (double d : c.task_options.depths) check(d >= 0 && d <= 100, "--depths are percentages");
  for (int64_t b : c.budgets) check(b > 0, "--budgets must be positive");
  for (const auto& k : o.kv)
    for (const auto& spec : split(k, " ")) c.methods.push_back(spec);
  c.granularity = granularity_for(o.granularity, c.preset);
  if (o.chat && c.task_options.chat.empty()) c.task_options.chat = "auto";
  check(!c.task_options.chat.empty() || c.task_options.system.empty(),
        "--system needs --chat or --chat-template");
  c.progress = !o.no_progress;
  check(!o.mo.model.empty(), "--model is required");
  c.threads = o.mo.threads;
  auto engine = o.mo.load();
  if (o.print_samples) {  // the prompts as JSON lines, nothing run
    check(engine->has_tokenizer(), "the model has no tokenizer");
    for (const EvalPrompt& s : eval_prompts(*engine, c)) {
      nlohmann::json j = {{"task", s.task},       {"id", s.id},
                          {"seed", s.seed},       {"length", s.length},
                          {"tokens", s.tokens},   {"context", s.context},
                          {"question", s.question}, {"answers", s.answers},
                          {"metric", s.metric}, {"max_new_tokens", s.max_new_tokens}};
      if (s.depth >= 0) j["depth"] = s.depth;
      std::printf("%s\n", j.dump().c_str());
    }
    return 0;
  }
  check(!c.out_path.empty(), "--out is required (the results file)");
  const EvalTotals t = run_eval(*engine, c);
  const double one_full = t.prefill_seconds + t.full_seconds;
  std::fprintf(stderr,
               "kvsieve: %lld prompts run, %lld already done; %lld result rows written to %s%s\n",
               (long long)t.prompts_run, (long long)t.prompts_skipped, (long long)t.rows_written,
               c.out_path.c_str(),
               t.errors ? fmt::format(" ({} with errors)", t.errors).c_str() : "");
  if (t.prompts_run)
    std::fprintf(stderr,
                 "kvsieve: shared prefill %.2f s (recording what the methods need), full-cache "
                 "decode %.2f s; the methods' cuts and decoding %.2f s: the sweep cost %.2fx one "
                 "full-cache run of the same prompts (%.1f s in all)\n"
                 "kvsieve: KV memory: full cache %s, largest cut %s; device memory at most %s at "
                 "once (%s)\n",
                 t.prefill_seconds, t.full_seconds, t.method_seconds,
                 one_full > 0 ? (one_full + t.method_seconds) / one_full : 0.0, t.generate_seconds,
                 human_bytes(double(t.max_full_kv_bytes)).c_str(),
                 human_bytes(double(t.max_cut_kv_bytes)).c_str(),
                 human_bytes(double(t.peak_device_bytes)).c_str(), c.kv_type.c_str());
  return t.errors ? 1 : 0;
}

KVSIEVE_COMMAND(50, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand(
      "eval", "Score eviction methods on long-context tasks (one shared prefill per prompt)");
  o->mo.add_to(sub, /*need_model=*/false);
  sub->add_option("--tasks", o->tasks, "Comma-separated tasks; 'help' lists them")->capture_default_str();
  sub->add_option("--lengths", o->lengths, "Prompt lengths in tokens, comma-separated")
      ->capture_default_str();
  sub->add_option("--samples", o->cfg.samples, "Samples per task and length")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  sub->add_option("--seed", o->cfg.seed, "Run seed (below 1000000; training data uses the others)")
      ->capture_default_str();
  sub->add_option("--kv", o->kv,
                  "Eviction methods (repeat the option, or separate specs by spaces); the full "
                  "cache is always run as the reference");
  sub->add_option("--budgets", o->budgets, "Tokens per head, comma-separated");
  sub->add_option("--ratios", o->ratios, "Fractions of the prompt removed, comma-separated");
  sub->add_option("--kv-preset", o->cfg.preset, "kvpress or kvcache-factory defaults")
      ->check(CLI::IsMember({"kvpress", "kvcache-factory"}));
  sub->add_option("--kv-granularity", o->granularity,
                  "kv-head or query-head; default kv-head, query-head with --kv-preset "
                  "kvcache-factory (as `kvsieve run`)")
      ->check(CLI::IsMember({"kv-head", "query-head"}));
  sub->add_flag("--query-agnostic", o->cfg.query_agnostic,
                "Cut the context before the question is read (default: question inside the cut)");
  sub->add_option("--haystack", o->cfg.task_options.haystack,
                  "Filler for NIAH: a .txt file or a folder of them (default: built-in sentences)");
  sub->add_option("--longbench", o->cfg.task_options.longbench_dir,
                  "Folder of LongBench's official jsonl files (<dataset>.jsonl); LongBench tasks "
                  "use --lengths as the maximum prompt length (middle truncation)");
  sub->add_option("--depths", o->depths, "NIAH depths in percent (default: spread over samples)");
  sub->add_flag("--chat", o->chat,
                "Put each prompt in the model's chat format (one user turn; the task's answer "
                "prefix after the assistant's header; fidelity stays plain text)");
  sub->add_option("--chat-template", o->cfg.task_options.chat,
                  "Chat format by name, implies --chat: llama2, llama3, mistral, chatml (qwen2)")
      ->check(CLI::IsMember({"llama2", "llama3", "mistral", "chatml", "qwen2"}));
  sub->add_option("--system", o->cfg.task_options.system,
                  "System message for --chat (default: the one the model's template adds, if any)");
  sub->add_option("-b,--batch", o->cfg.n_batch, "Prefill chunk size")->capture_default_str();
  sub->add_option("--kv-type", o->cfg.kv_type, "Element type of the KV cache: f32, f16, bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("-o,--out", o->cfg.out_path, "Results file (JSON lines, appended; resumes)");
  sub->add_flag("--no-progress", o->no_progress, "No progress bar");
  sub->add_flag("--print-samples", o->print_samples,
                "Print the prompts (JSON lines) and stop; nothing is run or written");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
