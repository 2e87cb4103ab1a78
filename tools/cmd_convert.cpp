// kvsieve convert: any model kvsieve reads -> a llama.cpp-compatible GGUF.
//   kvsieve convert --llama2c MODEL.bin --tokenizer TOK.bin -o OUT.gguf
//   kvsieve convert MODEL (GGUF file | HF folder) -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0]
// The output is written to OUT.gguf.tmp and renamed, so a failure leaves no file.
#include <cstdio>
#include <filesystem>

#include "commands.h"
#include "core/error.h"
#include "io/model_source.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

struct ConvertOptions {
  std::string model;
  std::string llama2c;
  std::string tokenizer;
  std::string out;
  std::string type;
  std::string name;
};

int run_convert(const ConvertOptions& o) {
  namespace fs = std::filesystem;
  check(o.model.empty() != o.llama2c.empty(), "convert: give either MODEL or --llama2c MODEL.bin (exactly one)");
  std::optional<DType> out_type;
  if (!o.type.empty()) {
    out_type = dtype_from_name(o.type);
    check(out_type.has_value(), "convert: unknown --type '{}' (f32, f16, bf16, q8_0, q4_0)", o.type);
  }
  const std::string in = o.llama2c.empty() ? o.model : o.llama2c;
  std::error_code ec;
  check(!(fs::exists(o.out, ec) && fs::exists(in, ec) && fs::equivalent(o.out, in, ec)),
        "convert: the output '{}' is the input model", o.out);
  check(!fs::is_directory(o.out, ec), "convert: the output '{}' is a folder", o.out);

  ModelSource m;
  if (!o.llama2c.empty()) {
    m = open_llama2c(o.llama2c, o.tokenizer);
  } else {
    m = open_model(o.model);
    if (!o.tokenizer.empty()) {
      if (m.format == "llama2c")
        m = open_llama2c(o.model, o.tokenizer);
      else
        m.vocab = load_vocab_file(o.tokenizer);
    }
  }
  if (!o.name.empty()) m.config.name = o.name;
  if (!m.vocab) std::fprintf(stderr, "kvsieve: warning: '%s' has no tokenizer; the GGUF will have none\n", in.c_str());
  std::fprintf(stderr, "converting %s (%s, %s, %zu tensors) -> %s%s\n", in.c_str(), m.format.c_str(),
               m.config.arch.c_str(), m.tensors.size(), o.out.c_str(),
               out_type ? fmt::format(" as {}", dtype_name(*out_type)).c_str() : "");
  write_model_gguf(m, o.out, out_type, [](const std::string& msg) {
    std::fprintf(stderr, "  %s\n", msg.c_str());
  });
  std::fprintf(stderr, "wrote %s (%ju bytes)\n", o.out.c_str(), uintmax_t(fs::file_size(o.out, ec)));
  return 0;
}

KVSIEVE_COMMAND(15, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<ConvertOptions>();
  auto* sub = app.add_subcommand("convert", "Convert a model (GGUF, Hugging Face folder, llama2.c) to GGUF");
  sub->add_option("model", o->model, "GGUF file or Hugging Face folder");
  sub->add_option("--llama2c", o->llama2c, "llama2.c checkpoint (.bin) to convert");
  sub->add_option("--tokenizer", o->tokenizer,
                  "Tokenizer: llama2.c tokenizer.bin with --llama2c; otherwise a tokenizer file that "
                  "replaces the model's");
  sub->add_option("-o,--output", o->out, "Output GGUF file")->required();
  sub->add_option("--type", o->type, "Type of 2-D weight matrices: f32, f16, bf16, q8_0, q4_0 (default: keep)");
  sub->add_option("--name", o->name, "general.name to write");
  return [o] { return run_convert(*o); };
});

}  // namespace
}  // namespace kvsieve
