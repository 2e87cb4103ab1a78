// kvsieve tokenize: print the token ids of a text.
#include <cstdio>
#include <filesystem>

#include "cli_common.h"
#include "commands.h"
#include "core/error.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::cli {
namespace {

struct TokenizeOptions {
  std::string model, prompt, file;
  bool no_bos = false, no_special = false, pieces = false;
};

int run(const TokenizeOptions& o) {
  // A tokenizer file (tokenizer.json / tokenizer.model / vocab GGUF) or a whole model.
  std::unique_ptr<Tokenizer> owned;
  std::unique_ptr<Model> model;
  const Tokenizer* tok = nullptr;
  const std::string name = std::filesystem::path(o.model).filename().string();
  const bool tokenizer_file = !std::filesystem::is_directory(o.model) &&
                              (name.find("tokenizer") != std::string::npos ||
                               name.find("vocab") != std::string::npos);
  if (tokenizer_file) {
    owned = Tokenizer::create(load_vocab_file(o.model));
    tok = owned.get();
  } else {
    model = Model::load(o.model);
    tok = model->tokenizer();
    check(tok != nullptr, "'{}' has no tokenizer", o.model);
  }
  const std::string text = prompt_text(o.prompt, o.file);
  const auto ids = tok->encode(text, tok->spec().add_bos && !o.no_bos, false, !o.no_special);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (o.pieces) {
      std::printf("%d\t'%s'\n", ids[i], tok->token_to_piece(ids[i], -2).c_str());
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
