// stories260K (llama2.c) against llama2.c's own published greedy outputs.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "engine/context.h"
#include "engine/generate.h"
#include "io/model_source.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;

namespace {

std::string stories_dir() { return shared_data() + "/stories260K"; }

// Converts stories260K with the CLI (as a user would) once per test binary.
const std::string& stories_gguf() {
  static TempDir dir;
  static std::string path;
  if (path.empty()) {
    path = dir.file("stories260K.gguf");
    auto r = run_kvsieve("convert --llama2c " + stories_dir() + "/stories260K.bin --tokenizer " +
                         stories_dir() + "/tok512.bin -o " + path);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return path;
}

// Greedy generation from BOS as llama2.c's run.c does for `-t 0 -n steps`:
// forward `steps` positions, print every sampled token's piece.
std::string greedy_from_bos(const Model& m, int steps) {
  CpuBackend be(2);
  Context s(m, be);
  const Tokenizer* tok = m.tokenizer();
  std::string text;
  int32_t prev = tok->bos();
  DecodeParams p;
  p.max_tokens = steps;
  p.stop_at_eog = false;
  decode_tokens(s, s.prefill({tok->bos()}), p, [&](int32_t id) {
    if (id == tok->bos()) return false;  // run.c stops at BOS
    text += tok->token_to_piece(id, prev);
    prev = id;
    return true;
  });
  return text;
}

}  // namespace

TEST(Stories260K, GreedyMatchesLlama2cRunC200Steps) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  auto m = Model::load(stories_gguf());
  const std::string golden = read_file(stories_dir() + "/golden_run_c_t0_n200.txt");
  EXPECT_EQ(greedy_from_bos(*m, 200), golden);
}

TEST(Stories260K, GreedyMatchesLlama2cDocs256Steps) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  auto m = Model::load(stories_gguf());
  std::string golden = read_file(stories_dir() + "/golden_greedy_t0_from_llama2c_doc.txt");
  std::string out = greedy_from_bos(*m, 256);
  EXPECT_EQ(out + "\n", golden);  // run.c ends its output with printf("\n")
}

TEST(Stories260K, CliRunPrintsTheSameText) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  auto r = run_kvsieve("run -m " + stories_gguf() + " -p '' -n 200 --ignore-eos -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, read_file(stories_dir() + "/golden_run_c_t0_n200.txt") + "\n");
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
  EXPECT_NE(r.err.find("KV cache"), std::string::npos);
  EXPECT_NE(r.err.find("peak memory"), std::string::npos);
}
