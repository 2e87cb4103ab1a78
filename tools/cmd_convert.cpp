// kvsieve convert: any model kvsieve reads -> a llama.cpp-compatible GGUF.
//   kvsieve convert --llama2c MODEL.bin --tokenizer TOK.bin -o OUT.gguf
//   kvsieve convert MODEL (GGUF file | HF folder) -o OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_1|q4_k|q5_k|q6_k|q4_k_m|q5_k_m]
// The output is written to OUT.gguf.tmp and renamed, so a failure leaves no file.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve {
namespace {

int run_convert(const ConvertOptions& o) {
  convert_model(o, [](const std::string& msg) { std::fprintf(stderr, "%s\n", msg.c_str()); });
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
  sub->add_option("--type", o->type, "Type of 2-D weight matrices: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, or the mixes q4_k_m, q5_k_m (Q6_K for output and some attn_v/ffn_down, as llama.cpp) (default: keep)");
  sub->add_option("--name", o->name, "general.name to write");
  return [o] { return run_convert(*o); };
});

}  // namespace
}  // namespace kvsieve
