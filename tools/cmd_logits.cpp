// kvsieve logits: full-sequence logits for checking against references.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct LogitsOptions {
  ModelOptions mo;
  std::string ids_file, out;
  int64_t n_batch = 256;
  std::string kv_type = "f32";
};

int run(const LogitsOptions& o) {
  const std::vector<int32_t> ids = read_npy_ids(o.ids_file);
  check(!ids.empty(), "'{}' holds no token ids", o.ids_file);
  auto engine = o.mo.load();
  SessionOptions so;
  so.batch = o.n_batch;
  so.kv_type = o.kv_type;
  auto s = engine->new_session(so);
  std::vector<float> all;
  s->prefill(ids, &all);
  write_npy_f32(o.out, all.data(), {int64_t(ids.size()), engine->info().n_vocab});
  std::fprintf(stderr, "kvsieve: wrote logits [%zu, %lld] to %s\n", ids.size(),
               (long long)engine->info().n_vocab, o.out.c_str());
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
  sub->add_option("--kv-type", o->kv_type, "Element type of the KV cache: f32, f16, bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
