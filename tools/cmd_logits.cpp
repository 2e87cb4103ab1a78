// kvsieve logits: full-sequence logits for checking against references.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"
#include "core/error.h"
#include "core/npy.h"
#include "engine/session.h"

namespace kvsieve::cli {
namespace {

struct LogitsOptions {
  ModelOptions mo;
  std::string ids_file, out;
  int64_t n_batch = 256;
};

int run(const LogitsOptions& o) {
  const std::vector<int32_t> ids = read_npy_ids(o.ids_file);
  check(!ids.empty(), "'{}' holds no token ids", o.ids_file);
  auto model = o.mo.load();
  ThreadPool pool(o.mo.threads);
  Session s(*model, pool);
  std::vector<float> all;
  s.prefill(ids, o.n_batch, &all);
  write_npy_f32(o.out, all.data(), {int64_t(ids.size()), model->config().n_vocab});
  std::fprintf(stderr, "kvsieve: wrote logits [%zu, %lld] to %s\n", ids.size(),
               (long long)model->config().n_vocab, o.out.c_str());
  return 0;
}

KVSIEVE_COMMAND(30, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<LogitsOptions>();
  auto* sub = app.add_subcommand(
      "logits", "Write float32 logits [n_tokens, vocab] for every position of a token sequence");
  o->mo.add_to(sub);
  sub->add_option("--ids", o->ids_file, "Input token ids: an int32 .npy file")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--out", o->out, "Output .npy file")->required();
  sub->add_option("-b,--batch", o->n_batch, "Prefill chunk size in tokens")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
