// The tiny Hugging Face reference models in tests/fixtures/hf (made by
// transformers, scripts/hf_reference/make_model_fixtures.py): each loads
// through open_model with the values its config.json states, the BF16 folders
// hold their F32 twins' weights rounded to BF16, and each converts to GGUF and back.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/model_source.h"
#include "model/weight_list.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> fixture_dirs() {
  std::vector<std::string> out;
  const fs::path root = fs::path(testing::fixtures()) / "hf";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::exists(e.path() / "config.json")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A config.json value, whichever RoPE form holds it.
json rope_value(const json& j, const char* key) {
  if (j.contains("rope_parameters") && j["rope_parameters"].contains(key)) return j["rope_parameters"][key];
  if (std::string(key) == "rope_theta") return j.value("rope_theta", json(10000.0));
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object() && j["rope_scaling"].contains(key))
    return j["rope_scaling"][key];
  return json();
}

TEST(IoFixtures, EveryHfFixtureLoadsWithItsConfig) {
  const auto dirs = fixture_dirs();
  if (dirs.empty()) GTEST_SKIP() << "no fixtures under " << testing::fixtures() << "/hf";
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir);
    const json j = json::parse(testing::read_file(dir + "/config.json"));
    const ModelSource m = open_model(dir);
    const ModelConfig& c = m.config;
    EXPECT_EQ(m.format, "hf");
    const std::string cls = j["architectures"][0];
    EXPECT_EQ(c.arch, cls == "Qwen2ForCausalLM" ? "qwen2" : "llama");
    EXPECT_EQ(c.n_vocab, j["vocab_size"].get<int64_t>());
    EXPECT_EQ(c.n_embd, j["hidden_size"].get<int64_t>());
    EXPECT_EQ(c.n_ff, j["intermediate_size"].get<int64_t>());
    EXPECT_EQ(c.n_layer, j["num_hidden_layers"].get<int64_t>());
    EXPECT_EQ(c.n_head, j["num_attention_heads"].get<int64_t>());
    EXPECT_EQ(c.n_head_kv, j["num_key_value_heads"].get<int64_t>());
    EXPECT_EQ(c.n_ctx_train, j["max_position_embeddings"].get<int64_t>());
    if (j.contains("head_dim") && !j["head_dim"].is_null())
      EXPECT_EQ(c.head_dim, j["head_dim"].get<int64_t>());
    else
      EXPECT_EQ(c.head_dim, c.n_embd / c.n_head);
    EXPECT_EQ(c.rms_eps, j["rms_norm_eps"].get<float>());
    EXPECT_EQ(c.tied_embeddings, j["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c.qkv_bias, cls == "Qwen2ForCausalLM");
    EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
    EXPECT_EQ(c.rope_theta, rope_value(j, "rope_theta").get<float>());
    const json type = rope_value(j, "rope_type");
    if (type.is_string() && type == "llama3") {
      EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
      EXPECT_EQ(c.rope_scaling.factor, rope_value(j, "factor").get<float>());
      EXPECT_EQ(c.rope_scaling.low_freq_factor, rope_value(j, "low_freq_factor").get<float>());
      EXPECT_EQ(c.rope_scaling.high_freq_factor, rope_value(j, "high_freq_factor").get<float>());
      EXPECT_EQ(c.rope_scaling.original_max_position,
                int64_t(rope_value(j, "original_max_position_embeddings").get<double>()));
    } else {
      EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
    }
    const bool sw = cls == "MistralForCausalLM" || j.value("use_sliding_window", false);
    EXPECT_EQ(c.sliding_window, sw && j["sliding_window"].is_number() ? j["sliding_window"].get<int64_t>() : 0);
    // Every tensor the config implies, in the folder's dtype (norms too).
    const std::string dt = j.value("dtype", j.value("torch_dtype", std::string("float32")));
    const DType want = dt == "bfloat16" ? DType::BF16 : DType::F32;
    size_t n = 0;
    for_each_weight(c, [&](const WeightSpec& w) {
      if (const TensorView* t = m.find(w.name)) {
        ++n;
        EXPECT_EQ(t->type, want) << w.name;
      }
    });
    EXPECT_EQ(n, m.tensors.size());
  }
}

TEST(IoFixtures, Bf16FoldersAreTheirF32TwinsRounded) {
  int pairs = 0;
  for (const auto& dir : fixture_dirs()) {
    if (dir.size() < 5 || dir.substr(dir.size() - 5) != "-bf16") continue;
    const std::string twin = dir.substr(0, dir.size() - 5) + "-f32";
    if (!fs::exists(twin + "/config.json")) continue;
    SCOPED_TRACE(dir);
    ++pairs;
    const ModelSource b = open_model(dir), f = open_model(twin);
    ASSERT_EQ(b.tensors.size(), f.tensors.size());
    for (const auto& [name, t] : f.tensors) {
      const auto v = testing::as_f32(t);
      const auto got = testing::as_f32(b.get(name));
      ASSERT_EQ(got.size(), v.size()) << name;
      for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(got[i], bf16_to_f32(f32_to_bf16(v[i]))) << name << " " << i;
    }
  }
  if (pairs == 0) GTEST_SKIP() << "no -bf16/-f32 fixture pairs";
}

TEST(IoFixtures, ConvertToGgufAndBack) {
  const auto dirs = fixture_dirs();
  if (dirs.empty()) GTEST_SKIP() << "no fixtures";
  testing::TempDir d;
  for (const auto& dir : dirs) {
    SCOPED_TRACE(dir);
    const ModelSource m = open_model(dir);
    write_model_gguf(m, d.file("m.gguf"));
    const ModelSource g = open_model(d.file("m.gguf"));
    EXPECT_EQ(g.config.arch, m.config.arch);
    EXPECT_EQ(g.config.n_layer, m.config.n_layer);
    EXPECT_EQ(g.config.rope_scaling.type, m.config.rope_scaling.type);
    EXPECT_EQ(g.config.rope_style, m.config.arch == "llama" ? RopeStyle::kInterleaved : RopeStyle::kNeox);
    EXPECT_EQ(g.tensors.size(), m.tensors.size());
  }
}

}  // namespace
}  // namespace kvsieve
