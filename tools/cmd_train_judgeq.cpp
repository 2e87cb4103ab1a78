// kvsieve train-judgeq: learn Judge Q soft tokens for a model (src/train/trainer.h).
#include <cstdio>
#include <sstream>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct TrainOptions {
  ModelOptions mo;
  TrainConfig cfg;
  std::string loss = "mse", layers;
};

int run(TrainOptions& o) {
  o.cfg.loss = judge_loss_from_name(o.loss);
  o.cfg.layers = numbers<int64_t>(o.layers, "--layers");
  auto engine = o.mo.load();
  for (int64_t l : o.cfg.layers)
    check(l >= 0 && l < engine->info().n_layer, "--layers: {} is not a layer of this model", l);
  const TrainResult r = train_judgeq(*engine, o.cfg);
  const size_t k = std::min<size_t>(10, r.losses.size());
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) first += r.losses[i] / double(k), last += r.losses[r.losses.size() - 1 - i] / double(k);
  const double train_s = r.seconds - r.target_seconds;
  const double steps = double(std::max<size_t>(1, r.losses.size()));
  std::fprintf(stderr,
               "kvsieve: wrote %s (%lld soft tokens); steps %lld..%lld, loss %.6g -> %.6g (mean of "
               "the first and last %zu)\n"
               "kvsieve: targets %.1f s; training %.1f s: %.3f s per step, of which prompt prefills "
               "%.3f (%lld prefills, %.1f s)\n",
               o.cfg.out.c_str(), (long long)o.cfg.soft_tokens, (long long)r.first_step,
               (long long)o.cfg.steps, first, last, k, r.target_seconds, train_s, train_s / steps,
               r.prefill_seconds / steps, (long long)r.prefills, r.prefill_seconds);
  return 0;
}

KVSIEVE_COMMAND(46, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<TrainOptions>();
  auto* sub = app.add_subcommand(
      "train-judgeq", "Train Judge Q soft tokens so their attention matches the model's answers'");
  o->mo.add_to(sub);
  sub->add_option("--data", o->cfg.data,
                  "Training prompts, JSON lines with \"context\" and \"question\", or \"text\" "
                  "(kvsieve eval --print-samples --seed 1000000 writes such a file)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--out", o->cfg.out, "Soft-token GGUF to write (OUT.state: optimizer state)")
      ->required();
  sub->add_option("--soft-tokens", o->cfg.soft_tokens, "Number of soft tokens")->capture_default_str();
  sub->add_option("--steps", o->cfg.steps, "Training steps (one prompt each)")->capture_default_str();
  sub->add_option("--lr", o->cfg.lr, "Peak learning rate (AdamW)")->capture_default_str();
  sub->add_option("--weight-decay", o->cfg.weight_decay, "AdamW weight decay")->capture_default_str();
  sub->add_option("--warmup", o->cfg.warmup, "Warmup steps, then cosine decay to 10%")->capture_default_str();
  sub->add_option("--clip", o->cfg.clip, "Gradient norm clipping (0: off)")->capture_default_str();
  sub->add_option("--response-tokens", o->cfg.max_response,
                  "Greedy response tokens whose attention is the target")
      ->capture_default_str();
  sub->add_option("--max-prompt", o->cfg.max_prompt, "Keep at most this many prompt tokens (the end)");
  sub->add_option("--loss", o->loss, "mse (the paper's) or kl")->capture_default_str()
      ->check(CLI::IsMember({"mse", "kl"}));
  sub->add_option("--layers", o->layers, "Comma-separated layers in the loss (default: all)");
  sub->add_option("--init-text", o->cfg.init_text, "Initialise from the embeddings of this text");
  sub->add_flag("--init-random", o->cfg.init_random, "Initialise at random (embedding scale)");
  sub->add_option("--seed", o->cfg.seed, "Seed (prompt order, random init)")->capture_default_str();
  sub->add_flag("--query-agnostic", o->cfg.query_agnostic,
                "Soft tokens follow the context only (they are used before the question is read)");
  sub->add_option("--checkpoint-every", o->cfg.checkpoint_every, "Steps between checkpoints")
      ->capture_default_str();
  sub->add_option("--cache-prompts", o->cfg.cache_prompts,
                  "Prompt K/V caches kept in memory between steps (default: as many as fit in "
                  "--cache-mib; a prompt not held is prefilled again)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--cache-mib", o->cfg.cache_mib, "Memory for the prompt K/V caches, MiB")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--targets", o->cfg.target_dir, "Folder for cached targets (default OUT.targets)");
  sub->add_flag("--resume", o->cfg.resume, "Continue from OUT and OUT.state");
  sub->add_option("--stop-after", o->cfg.stop_after,
                  "Stop at this step with a checkpoint (resume later with --resume)");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
