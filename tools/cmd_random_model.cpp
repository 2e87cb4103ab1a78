// kvsieve random-model: a model of any shape with random weights, for
// benchmarks and tests (no trained model of that size is needed to time it).
#include <cmath>
#include <cstdio>
#include <random>

#include "cli_common.h"
#include "commands.h"
#include "core/error.h"
#include "io/model_source.h"
#include "model/weight_list.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::cli {
namespace {

struct RandomOptions {
  ModelConfig c;
  std::string vocab, out, type = "f32";
  uint64_t seed = 1;
};

int run(RandomOptions o) {
  ModelConfig& c = o.c;
  if (c.head_dim == 0 && c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
  if (c.n_head_kv == 0) c.n_head_kv = c.n_head;
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kInterleaved;
  c.qkv_bias = c.arch == "qwen2";
  ModelSource m;
  m.path = "random";
  m.format = "random";
  if (!o.vocab.empty()) {
    m.vocab = load_vocab_file(o.vocab);
    if (c.n_vocab == 0) c.n_vocab = int64_t(m.vocab->tokens.size());
    check(int64_t(m.vocab->tokens.size()) <= c.n_vocab,
          "the vocabulary has {} tokens, more than --vocab-size {}", m.vocab->tokens.size(),
          c.n_vocab);
  }
  c.validate();
  auto type = dtype_from_name(o.type);
  check(type.has_value(), "unknown --type '{}' (f32, f16, bf16, q8_0, q4_0)", o.type);
  std::mt19937_64 rng(o.seed);
  int64_t total = 0;
  for_each_weight(c, [&](const WeightSpec& s) {
    if (!s.required) return;
    int64_t n = 1;
    for (auto d : s.shape) n *= d;
    auto buf = std::make_shared<std::vector<float>>(size_t(n));
    // Matrices ~ N(0, 1/fan_in) so activations keep their scale; norms = 1;
    // biases small.
    std::normal_distribution<float> nd(0.0f, s.kind == WeightKind::kMatrix
                                                  ? 1.0f / std::sqrt(float(s.shape.back()))
                                                  : 0.02f);
    for (auto& v : *buf) v = s.name.find("norm") != std::string::npos ? 1.0f : nd(rng);
    TensorView t;
    t.name = s.name;
    t.type = DType::F32;
    t.shape = s.shape;
    t.data = buf->data();
    t.nbytes = size_t(n) * 4;
    m.tensors[s.name] = t;
    m.keep_alive.push_back(buf);
    total += n;
  });
  m.config = c;
  std::fprintf(stderr, "kvsieve: random %s model, %.1fM parameters, writing %s as %s\n",
               c.arch.c_str(), double(total) / 1e6, o.out.c_str(), o.type.c_str());
  write_model_gguf(m, o.out, *type == DType::F32 ? std::nullopt : std::optional<DType>(*type));
  return 0;
}

KVSIEVE_COMMAND(90, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<RandomOptions>();
  o->c.n_embd = 768;
  o->c.n_layer = 12;
  o->c.n_head = 12;
  o->c.n_head_kv = 4;
  o->c.n_ff = 2048;
  o->c.n_vocab = 0;
  o->c.n_ctx_train = 8192;
  auto* sub = app.add_subcommand(
      "random-model", "Write a GGUF model with random weights (for benchmarks and tests)");
  sub->add_option("-o,--out", o->out, "Output GGUF file")->required();
  sub->add_option("--arch", o->c.arch, "llama or qwen2")->capture_default_str();
  sub->add_option("--dim", o->c.n_embd, "Hidden size")->capture_default_str();
  sub->add_option("--layers", o->c.n_layer, "Layers")->capture_default_str();
  sub->add_option("--heads", o->c.n_head, "Attention heads")->capture_default_str();
  sub->add_option("--kv-heads", o->c.n_head_kv, "Key/value heads")->capture_default_str();
  sub->add_option("--ff", o->c.n_ff, "Feed-forward size")->capture_default_str();
  sub->add_option("--vocab-size", o->c.n_vocab, "Vocabulary size (default: the --vocab file's)");
  sub->add_option("--vocab", o->vocab, "Tokenizer file to embed (tokenizer.model, tokenizer.json, GGUF)")
      ->check(CLI::ExistingFile);
  sub->add_option("--type", o->type, "Weight type: f32, f16, bf16, q8_0, q4_0")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
