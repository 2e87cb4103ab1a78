// kvsieve inspect MODEL: what a model file holds (format, hyper-parameters,
// RoPE, tensors, tokenizer), read through the same loader the engine uses, so
// anything the engine would refuse is reported here with the same message.
// Judge Q soft-token files are shown too (their size, model and origin).
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve {
namespace {

KVSIEVE_COMMAND(20, [](CLI::App& app) -> std::function<int()> {
  auto opt = std::make_shared<InspectOptions>();
  auto* sub = app.add_subcommand("inspect", "Show a model's format, hyper-parameters, tensors and tokenizer");
  sub->add_option("model", opt->model, "GGUF file, Hugging Face folder, or llama2.c .bin")->required();
  sub->add_flag("--tensors", opt->all_tensors, "List every tensor (default: global tensors and layer 0)");
  sub->add_flag("--llama2c", opt->llama2c, "Read MODEL as a llama2.c checkpoint");
  sub->add_option("--tokenizer", opt->tokenizer,
                  "Tokenizer file (llama2.c tokenizer.bin for --llama2c; else any tokenizer file, "
                  "replacing the model's)");
  return [opt] {
    std::fputs(describe_model_file(*opt).c_str(), stdout);
    return 0;
  };
});

}  // namespace
}  // namespace kvsieve
