// `kvsieve convert` and `kvsieve random-model`: any model kvsieve reads, or
// random weights of any shape, written as a llama.cpp-compatible GGUF
// (through a temporary file, so a failure leaves no file).
#include <cmath>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "io/model_source.h"
#include "io/quant_scheme.h"
#include "kvsieve/model_files.h"
#include "model/weight_list.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {

void convert_model(const ConvertOptions& o, const std::function<void(const std::string&)>& log) {
  namespace fs = std::filesystem;
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  check(o.model.empty() != o.llama2c.empty(),
        "convert: give either MODEL or --llama2c MODEL.bin (exactly one)");
  check(!o.out.empty(), "convert: no output file given");
  std::optional<QuantScheme> scheme;
  if (!o.type.empty()) {
    scheme = quant_scheme_from_name(o.type);
    check(scheme.has_value() && scheme->base != DType::Q8_K, "convert: unknown --type '{}' ({})", o.type,
          quant_scheme_names());
  }
  const std::string in = o.llama2c.empty() ? o.model : o.llama2c;
  std::error_code ec;
  check(!(fs::exists(o.out, ec) && fs::exists(in, ec) && fs::equivalent(o.out, in, ec)),
        "convert: the output '{}' is the input model", o.out);
  check(!fs::is_directory(o.out, ec), "convert: the output '{}' is a folder", o.out);

  ModelSource m = o.llama2c.empty() ? open_model_with_tokenizer(o.model, o.tokenizer)
                                    : open_llama2c(o.llama2c, o.tokenizer);
  if (!o.name.empty()) m.config.name = o.name;
  if (!m.vocab) say(fmt::format("warning: '{}' has no tokenizer; the GGUF will have none", in));
  say(fmt::format("converting {} ({}, {}, {} tensors) -> {}{}", in, m.format, m.config.arch,
                  m.tensors.size(), o.out, scheme ? fmt::format(" as {}", scheme->name) : ""));
  write_model_gguf(m, o.out, scheme ? &*scheme : nullptr, [&](const std::string& msg) { say("  " + msg); });
  say(fmt::format("wrote {} ({} bytes)", o.out, uintmax_t(fs::file_size(o.out, ec))));
}

int64_t write_random_model(const RandomModelOptions& o) {
  check(!o.out.empty(), "random-model: no output file given");
  ModelConfig c;
  c.arch = o.arch;
  c.n_embd = o.dim;
  c.n_layer = o.layers;
  c.n_head = o.heads;
  c.n_head_kv = o.kv_heads > 0 ? o.kv_heads : o.heads;
  c.n_ff = o.ff;
  c.n_vocab = o.vocab_size;
  c.n_ctx_train = o.ctx;
  if (c.n_head > 0) c.head_dim = c.n_embd / c.n_head;
  c.rope_style = c.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kInterleaved;
  c.qkv_bias = c.arch == "qwen2";
  ModelSource m;
  m.path = "random";
  m.format = "random";
  if (!o.vocab.empty()) {
    m.vocab = load_vocab_file(o.vocab);
    if (c.n_vocab == 0) c.n_vocab = int64_t(m.vocab->tokens.size());
    check(int64_t(m.vocab->tokens.size()) <= c.n_vocab,
          "the vocabulary has {} tokens, more than --vocab-size {}", m.vocab->tokens.size(), c.n_vocab);
  }
  c.validate();
  auto type = quant_scheme_from_name(o.type);
  check(type.has_value() && type->base != DType::Q8_K, "unknown --type '{}' ({})", o.type, quant_scheme_names());
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
  write_model_gguf(m, o.out, type->base == DType::F32 && !type->mix ? nullptr : &*type, nullptr);
  return total;
}

}  // namespace kvsieve
