// kvsieve bench: its JSON carries every figure asked for, with medians inside
// their min..max; bad arguments fail with a message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace kvsieve::testing;

namespace {
void expect_stat(const nlohmann::json& s, const std::string& what) {
  ASSERT_TRUE(s.contains("median") && s.contains("min") && s.contains("max")) << what << ": " << s.dump();
  EXPECT_GT(s["min"].get<double>(), 0) << what;
  EXPECT_LE(s["min"].get<double>(), s["median"].get<double>()) << what;
  EXPECT_LE(s["median"].get<double>(), s["max"].get<double>()) << what;
}
}  // namespace

TEST(CliBench, JsonHasPrefillDecodeCutsAndMemory) {
  TempDir d;
  auto r = run_kvsieve("random-model -o " + d.file("m.gguf") +
                       " --dim 64 --layers 2 --heads 2 --kv-heads 1 --ff 128 --vocab-size 100 --type q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_kvsieve("bench -m " + d.file("m.gguf") +
                  " -t 2 -p 16,128 -n 4 -d 0,8 -r 3 --methods snapkv,h2o --budget 64 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["prefill"].size(), 2u);
  EXPECT_EQ(j["prefill"][1]["tokens"], 128);
  for (const auto& p : j["prefill"]) expect_stat(p["tokens_per_second"], "prefill");
  ASSERT_EQ(j["decode"].size(), 2u);
  EXPECT_EQ(j["decode"][1]["depth"], 8);
  for (const auto& p : j["decode"]) expect_stat(p["tokens_per_second"], "decode");
  ASSERT_EQ(j["cuts"].size(), 2u);
  EXPECT_EQ(j["cuts"][0]["method"], "snapkv");
  for (const auto& c : j["cuts"]) {
    expect_stat(c["ms"], "cut");
    EXPECT_LT(c["kv_bytes_after"].get<double>(), c["kv_bytes_before"].get<double>());
    // The cut's time over the 128-token prefill's (median tokens/s).
    const double prefill_s = 128 / j["prefill"][1]["tokens_per_second"]["median"].get<double>();
    EXPECT_NEAR(c["share_of_prefill"].get<double>(), c["ms"]["median"].get<double>() / 1e3 / prefill_s, 1e-9);
  }
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0);
  // A session's cache of 128 + warm-up rows at least: 2 layers x 1 KV head x 32 dims x K and V, f32.
  EXPECT_GE(j["peak_device_bytes"].get<double>(), 128.0 * 2 * 32 * 2 * 4);

  r = run_kvsieve("bench -m " + d.file("m.gguf") + " -p 16 -n 2 -r 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("prefill pp16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("decode tg2 @ depth 0"), std::string::npos) << r.out;
}

TEST(CliBench, BadArgumentsFailClearly) {
  TempDir d;
  auto r = run_kvsieve("random-model -o " + d.file("m.gguf") +
                       " --dim 64 --layers 1 --heads 2 --kv-heads 1 --ff 128 --vocab-size 100");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_kvsieve("bench -m " + d.file("m.gguf") + " -p 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("prompt lengths must be at least 1"), std::string::npos) << r.err;
  r = run_kvsieve("bench -m " + d.file("m.gguf") + " -p 8 --methods nosuch");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
}
