// kvsieve tokenize: print the token ids of a text.
#include <cstdio>
#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct TokenizeOptions {
  std::string model, prompt, file;
  bool no_bos = false, no_special = false, pieces = false;
};

int run(const TokenizeOptions& o) {
  // A tokenizer file (tokenizer.json / tokenizer.model / vocab GGUF) or a whole model.
  EngineOptions eo;
  eo.model = o.model;
  eo.vocab_only = true;
  const auto engine = Engine::load(eo);
  const std::string text = prompt_text(o.prompt, o.file);
  const auto ids = engine->tokenize(text, !o.no_bos, !o.no_special);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (o.pieces) {
      std::printf("%d\t'%s'\n", ids[i], engine->token_text(ids[i], -2).c_str());
    } else {
      std::printf(i ? " %d" : "%d", ids[i]);
    }
  }
  if (!o.pieces) std::printf("\n");
  return 0;
}

KVSIEVE_COMMAND(20, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<TokenizeOptions>();
  auto* sub = app.add_subcommand("tokenize", "Print the token ids of a text");
  sub->add_option("-m,--model", o->model,
                  "Model (GGUF, Hugging Face folder) or tokenizer file (tokenizer.json, "
                  "tokenizer.model, vocab GGUF)")
      ->required();
  sub->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  sub->add_option("-f,--file", o->file, "Read the text from a file")->check(CLI::ExistingFile);
  sub->add_flag("--no-bos", o->no_bos, "Do not add BOS");
  sub->add_flag("--no-special", o->no_special, "Treat special-token text as plain text");
  sub->add_flag("--pieces", o->pieces, "Print one token per line with its text");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
