// kvsieve judgeq-init: soft tokens for Judge Q initialised from the
// embeddings of real tokens (a text or token ids). The trainer starts from
// such a file; until then it is a usable probe set of its own.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct JudgeqInitOptions {
  ModelOptions mo;
  std::string text, ids_file, out;
  int64_t m = 0;
};

int run(const JudgeqInitOptions& o) {
  check(o.text.empty() != o.ids_file.empty(), "give the soft tokens' text (-p) or ids (--ids)");
  auto engine = o.mo.load();
  std::vector<int32_t> ids;
  std::string origin;
  if (!o.ids_file.empty()) {
    ids = read_npy_ids(o.ids_file);
    origin = "init:ids";
  } else {
    check(engine->has_tokenizer(), "the model has no tokenizer: give --ids or --tokenizer");
    check_utf8(o.text, "the text");
    ids = engine->tokenize(o.text, false);
    origin = "init:" + o.text;
  }
  check(!ids.empty(), "the text gives no tokens");
  const int64_t m = judgeq_init(*engine, ids, o.m, origin, o.out);
  const SoftTokenInfo info = read_soft_token_info(o.out);
  std::fprintf(stderr, "kvsieve: wrote %lld soft tokens of %lld dimensions to %s (model %s)\n",
               (long long)m, (long long)info.n_embd, o.out.c_str(), info.fingerprint.c_str());
  return 0;
}

KVSIEVE_COMMAND(45, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<JudgeqInitOptions>();
  auto* sub = app.add_subcommand(
      "judgeq-init", "Write Judge Q soft tokens initialised from the embeddings of real tokens");
  o->mo.add_to(sub);
  sub->add_option("-p,--prompt", o->text, "Text whose token embeddings start the soft tokens");
  sub->add_option("--ids", o->ids_file, "Token ids instead (int32 .npy)")->check(CLI::ExistingFile);
  sub->add_option("--count", o->m, "Number of soft tokens (the text's tokens repeated or cut)")
      ->check(CLI::Range(int64_t(1), int64_t(4096)));
  sub->add_option("-o,--out", o->out, "Output soft-token GGUF")->required();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
