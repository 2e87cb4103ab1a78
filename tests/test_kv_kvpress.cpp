// `kvsieve run --kv-preset kvpress --kv METHOD --kv-ratio R --dump-kept` against the keep sets
// NVIDIA kvpress itself produces (tests/fixtures/kvpress, made by
// scripts/kvpress_reference/make_keep_sets.py: kvpress's own presses, run by transformers in
// float32 over the same tiny HF models and token ids, kept positions read back from the
// compressed cache). Every layer and KV head must keep exactly the same positions.
//
// The one tolerated difference is a swap between positions whose kvpress scores tie exactly at
// the cut (within 1e-6 relative), which kvpress's torch.topk breaks in an unspecified order:
// knorm at layer 0 scores a token repeated in the prompt identically at both positions (the same
// pre-RoPE key, and RoPE preserves the norm). The scores come with the fixture, so the tie is
// checked, not assumed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/npy.h"
#include "kv/kept_dump.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kModels = {"llama3-f32", "mistral-f32", "qwen2-f32"};
const std::vector<std::string> kMethods = {"snapkv", "pyramidkv", "streamingllm", "knorm",
                                           "tova",   "h2o",       "adakv"};
const std::vector<std::string> kRatios = {"0.25", "0.5", "0.75"};

fs::path kvpress_dir() { return fs::path(fixtures()) / "kvpress"; }

struct Case {
  std::string model, file;  // model folder name, fixture file name
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& m : kModels) {
    const fs::path dir = kvpress_dir() / m;
    if (!fs::exists(dir)) continue;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".json") files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.push_back({m, f});
  }
  return out;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.model + "_" + fs::path(info.param.file).stem().string();
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(f);
}

class KvpressKeepSets : public ::testing::TestWithParam<Case> {};

TEST_P(KvpressKeepSets, SameAsKvpress) {
  const Case& c = GetParam();
  const fs::path dir = kvpress_dir() / c.model;
  const nlohmann::json ref_doc = read_json(dir / c.file);
  const std::string method = ref_doc.at("method");
  const double ratio = ref_doc.at("budget").at("ratio");
  const int64_t n = ref_doc.at("prompt_tokens");
  const KeepSets ref = kept_from_json(ref_doc.dump());

  TempDir tmp;
  const std::string kept_path = tmp.file("kept.json");
  const std::string args =
      fmt::format("run -m {} --ids {} -n 1 -t 2 --kv-preset kvpress --kv {} --kv-ratio {} --dump-kept {}",
                  (fs::path(fixtures()) / "hf" / c.model).string(), (dir / "ids.npy").string(), method,
                  ratio, kept_path);
  const CommandResult r = run_kvsieve(args);
  ASSERT_EQ(r.exit_code, 0) << "kvsieve " << args << "\n" << r.err;
  const nlohmann::json got_doc = read_json(kept_path);
  EXPECT_EQ(got_doc.at("prompt_tokens").get<int64_t>(), n);
  EXPECT_EQ(got_doc.at("preset").get<std::string>(), "kvpress");
  EXPECT_EQ(got_doc.at("granularity").get<std::string>(), "kv-head");
  const KeepSets got = kept_from_json(got_doc.dump());
  ASSERT_EQ(got.n_layer, ref.n_layer);
  ASSERT_EQ(got.n_heads, ref.n_heads);

  // kvpress's scores, [n_layer][n_heads][n], when the fixture has them.
  std::vector<float> scores;
  const auto& sf = ref_doc.at("reference").at("scores");
  if (!sf.is_null()) {
    std::vector<int64_t> shape;
    scores = read_npy_f32((dir / sf.get<std::string>()).string(), &shape);
    ASSERT_EQ(shape, (std::vector<int64_t>{ref.n_layer, ref.n_heads, n}));
  }

  int64_t ties = 0;
  for (int64_t l = 0; l < ref.n_layer; ++l)
    for (int64_t s = 0; s < ref.n_heads; ++s) {
      const auto ra = ref.at(l, s), rb = got.at(l, s);
      const std::vector<int32_t> a(ra.begin(), ra.end()), b(rb.begin(), rb.end());
      if (a == b) continue;
      std::vector<int32_t> only_ref, only_got;
      std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_ref));
      std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_got));
      // A swap is accepted only if every position involved has kvpress's score of the cut
      // (the lowest score it kept in this head), to 1e-6 relative.
      bool tie = !scores.empty() && a.size() == b.size();
      std::string detail;
      if (!scores.empty()) {
        const float* sc = scores.data() + (l * ref.n_heads + s) * n;
        float cut = INFINITY;
        for (int32_t p : a) cut = std::min(cut, sc[p]);
        for (const auto* v : {&only_ref, &only_got})
          for (int32_t p : *v) {
            tie = tie && std::fabs(double(sc[p]) - double(cut)) <= 1e-6 * std::fabs(double(cut));
            detail += fmt::format(" {}:{:.9g}", p, sc[p]);
          }
        detail = fmt::format(" (kvpress scores{}; cut {:.9g})", detail, cut);
      }
      if (tie) {
        ties += int64_t(only_ref.size());
        std::cout << "[ tie      ] " << c.model << " " << c.file << " layer " << l << " head " << s
                  << ": kvpress keeps " << ::testing::PrintToString(only_ref) << ", kvsieve "
                  << ::testing::PrintToString(only_got) << detail << "\n";
      } else {
        ADD_FAILURE() << c.model << " " << c.file << " layer " << l << " head " << s
                      << ": kvpress keeps " << ::testing::PrintToString(only_ref) << ", kvsieve keeps "
                      << ::testing::PrintToString(only_got) << " instead (kept " << a.size() << " vs "
                      << b.size() << ")" << detail;
      }
    }
  // Ties at the cut are rare (a repeated token, layer 0, knorm); a pile of them would hide a bug.
  EXPECT_LE(ties, 1) << c.model << " " << c.file;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvpressKeepSets, ::testing::ValuesIn(cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KvpressKeepSets);

// Every model x method x ratio is there, so the comparison above cannot pass by testing nothing,
// and each fixture is consistent with itself (budgets, sorted positions, prompt length).
TEST(KvpressFixtures, Complete) {
  ASSERT_TRUE(fs::exists(kvpress_dir() / "manifest.json")) << kvpress_dir();
  const nlohmann::json manifest = read_json(kvpress_dir() / "manifest.json");
  EXPECT_TRUE(manifest.at("failures").empty());
  for (const auto& m : kModels) {
    const std::vector<int32_t> ids = read_npy_ids((kvpress_dir() / m / "ids.npy").string());
    EXPECT_GT(ids.size(), 64u) << m;  // SnapKV's window
    for (const auto& method : kMethods)
      for (const auto& r : kRatios) {
        const fs::path p = kvpress_dir() / m / (method + "_r" + r + ".json");
        ASSERT_TRUE(fs::exists(p)) << p;
        const nlohmann::json doc = read_json(p);
        EXPECT_EQ(doc.at("method").get<std::string>(), method);
        EXPECT_EQ(doc.at("prompt_tokens").get<size_t>(), ids.size()) << p;
        EXPECT_EQ(doc.at("reference").at("library").get<std::string>(), "NVIDIA/kvpress");
        int64_t total = 0;
        for (const auto& L : doc.at("layers"))
          for (const auto& H : L.at("heads")) {
            const auto kept = H.at("kept").get<std::vector<int32_t>>();
            EXPECT_EQ(int64_t(kept.size()), H.at("budget").get<int64_t>()) << p;
            EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end())) << p;
            EXPECT_TRUE(std::adjacent_find(kept.begin(), kept.end()) == kept.end()) << p;
            EXPECT_TRUE(kept.empty() || (kept.front() >= 0 && size_t(kept.back()) < ids.size())) << p;
            total += int64_t(kept.size());
          }
        EXPECT_GT(total, 0) << p;
      }
  }
}

}  // namespace
