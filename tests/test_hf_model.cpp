// Hugging Face folders: tiny random models written here as safetensors, loaded
// back through open_model (single file, shards, BF16, tied Qwen2), and every
// kind of broken folder.
#include <filesystem>

#include "core/error.h"
#include "io/model_source.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

using testing::ConfigForm;
using testing::TempDir;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_weights(const ModelSource& m, const testing::TinyModel& t, DType stored) {
  EXPECT_EQ(m.tensors.size(), t.w.size());
  for (const auto& [name, v] : t.w) {
    SCOPED_TRACE(name);
    const TensorView* tv = m.find(name);
    ASSERT_NE(tv, nullptr);
    EXPECT_EQ(tv->type, stored);
    EXPECT_EQ(tv->shape, t.shape.at(name));
    // What the folder holds: the f32 values rounded to the stored type.
    std::vector<float> want(v.size());
    const auto bytes = testing::to_bytes(v, stored);
    dequantize_row(stored, bytes.data(), want.data(), int64_t(v.size()));
    EXPECT_EQ(testing::as_f32(*tv), want);
  }
}

TEST(HfModel, LlamaFolderF32) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("llama"));
  testing::write_hf_folder(d.path(), t);
  const ModelSource m = open_model(d.path());
  EXPECT_EQ(m.format, "hf");
  EXPECT_EQ(m.config.arch, "llama");
  EXPECT_EQ(m.config.n_layer, 2);
  EXPECT_EQ(m.config.n_head_kv, 2);
  EXPECT_EQ(m.config.rope_style, RopeStyle::kNeox);
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_FALSE(m.vocab.has_value());
  expect_weights(m, t, DType::F32);
  // The config file or a weight file names the same folder.
  EXPECT_EQ(open_model(d.file("config.json")).tensors.size(), m.tensors.size());
  EXPECT_EQ(open_model(d.file("model.safetensors")).tensors.size(), m.tensors.size());
}

TEST(HfModel, Bf16AndF16Folders) {
  for (DType dt : {DType::BF16, DType::F16}) {
    TempDir d;
    const auto t = testing::make_tiny(testing::tiny_config("llama"), 11);
    testing::write_hf_folder(d.path(), t, dt, ConfigForm::kLegacy);
    expect_weights(open_model(d.path()), t, dt);
  }
}

TEST(HfModel, ShardedIndex) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("llama"), 3);
  testing::write_hf_folder(d.path(), t, DType::F32, ConfigForm::kRopeParameters, 3);
  ASSERT_TRUE(fs::exists(d.file("model.safetensors.index.json")));
  ASSERT_FALSE(fs::exists(d.file("model.safetensors")));
  expect_weights(open_model(d.path()), t, DType::F32);
}

TEST(HfModel, Qwen2TiedWithBiases) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("qwen2"), 5);
  testing::write_hf_folder(d.path(), t);
  const ModelSource m = open_model(d.path());
  EXPECT_EQ(m.config.arch, "qwen2");
  EXPECT_TRUE(m.config.qkv_bias);
  EXPECT_TRUE(m.config.tied_embeddings);
  EXPECT_EQ(m.find("output.weight"), nullptr);
  EXPECT_EQ(m.get("blk.1.attn_k.bias").shape, (std::vector<int64_t>{32}));
  expect_weights(m, t, DType::F32);
}

TEST(HfModel, TiedModelStoringLmHeadAndInvFreq) {
  // Some checkpoints keep lm_head.weight (a copy) and rotary inv_freq buffers.
  TempDir d;
  auto cfg = testing::tiny_config("llama");
  cfg.tied_embeddings = true;
  const auto t = testing::make_tiny(cfg);
  testing::write_text(d.file("config.json"), testing::hf_config_json(cfg, ConfigForm::kLegacy).dump());
  SafetensorsWriter w;
  for (const auto& [name, v] : t.w) w.add(testing::hf_name(name), DType::F32, t.shape.at(name), v.data());
  w.add("lm_head.weight", DType::F32, t.shape.at("token_embd.weight"), t.w.at("token_embd.weight").data());
  std::vector<float> inv(8, 1.0f);
  w.add("model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {8}, inv.data());
  w.write(d.file("model.safetensors"));
  const ModelSource m = open_model(d.path());
  EXPECT_EQ(m.find("output.weight"), nullptr);
  expect_weights(m, t, DType::F32);
}

TEST(HfModel, TokenizerJsonInTheFolder) {
  const std::string tok = testing::fixtures() + "/tokenizers/llama-spm/tokenizer.json";
  if (!fs::exists(tok)) GTEST_SKIP() << "no tokenizer fixture at " << tok;
  auto cfg = testing::tiny_config("llama");
  cfg.n_vocab = 32000;  // the Llama 2 vocabulary
  cfg.n_embd = 32;
  cfg.n_head = 2;
  cfg.n_head_kv = 1;
  cfg.n_layer = 1;
  cfg.n_ff = 32;
  cfg.tied_embeddings = true;
  TempDir d;
  testing::write_hf_folder(d.path(), testing::make_tiny(cfg));
  fs::copy_file(tok, d.file("tokenizer.json"));
  const ModelSource m = open_model(d.path());
  ASSERT_TRUE(m.vocab.has_value());
  EXPECT_EQ(m.vocab->tokens.size(), 32000u);

  // A broken tokenizer.json stops the load with the file's name.
  testing::write_text(d.file("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
  const std::string msg = error_of([&] { open_model(d.path()); });
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
  testing::write_text(d.file("tokenizer.json"), "[]");
  EXPECT_THROW(open_model(d.path()), Error);
}

TEST(HfModel, TokenizerLargerThanTheModelIsRejected) {
  const std::string tok = testing::fixtures() + "/tokenizers/llama-spm/tokenizer.json";
  if (!fs::exists(tok)) GTEST_SKIP() << "no tokenizer fixture at " << tok;
  TempDir d;
  testing::write_hf_folder(d.path(), testing::make_tiny(testing::tiny_config("llama")));  // 96 rows
  fs::copy_file(tok, d.file("tokenizer.json"));
  const std::string msg = error_of([&] { open_model(d.path()); });
  EXPECT_NE(msg.find("32000 tokens"), std::string::npos) << msg;
}

// Broken folders: each edit of a good folder and the message it must give.
TEST(HfModel, BrokenFoldersGiveClearErrors) {
  const auto t = testing::make_tiny(testing::tiny_config("llama"));
  auto write_weights = [&](const std::string& path, const std::function<void(SafetensorsWriter&)>& extra,
                           const std::string& skip = "", const std::string& reshape = "") {
    SafetensorsWriter w;
    for (const auto& [name, v] : t.w) {
      if (name == skip) continue;
      auto shape = t.shape.at(name);
      if (name == reshape) std::swap(shape[0], shape[1]);
      w.add(testing::hf_name(name), DType::F32, shape, v.data());
    }
    if (extra) extra(w);
    w.write(path);
  };
  struct Case {
    const char* what;
    std::function<void(const std::string& dir)> make;
    const char* expect;
  };
  const std::string cfg = testing::hf_config_json(t.cfg, ConfigForm::kRopeParameters).dump();
  std::vector<float> junk(64 * 64, 0.5f);
  const std::vector<Case> cases = {
      {"no config.json", [&](const std::string& dir) { write_weights(dir + "/model.safetensors", nullptr); },
       "no config.json"},
      {"no weights", [&](const std::string& dir) { testing::write_text(dir + "/config.json", cfg); },
       "no model.safetensors"},
      {"config not json",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", "{\"hidden_size\": 64,");
         write_weights(dir + "/model.safetensors", nullptr);
       },
       "not valid JSON"},
      {"missing tensor",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         write_weights(dir + "/model.safetensors", nullptr, "blk.1.ffn_up.weight");
       },
       "missing tensor 'blk.1.ffn_up.weight' (expected shape [96, 64])"},
      {"wrong shape",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         write_weights(dir + "/model.safetensors", nullptr, "", "blk.0.ffn_down.weight");
       },
       "tensor 'blk.0.ffn_down.weight' has shape [96, 64], expected [64, 96]"},
      {"o_proj bias",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         write_weights(dir + "/model.safetensors",
                       [&](SafetensorsWriter& w) { w.add("model.layers.0.self_attn.o_proj.bias", DType::F32, {64}, junk.data()); });
       },
       "'model.layers.0.self_attn.o_proj.bias' is not part of"},
      {"layer out of range",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         write_weights(dir + "/model.safetensors",
                       [&](SafetensorsWriter& w) { w.add("model.layers.7.input_layernorm.weight", DType::F32, {64}, junk.data()); });
       },
       "layer 7 but the model has 2 layers"},
      {"index not json",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         testing::write_text(dir + "/model.safetensors.index.json", "weight_map");
       },
       "not valid JSON"},
      {"index without weight_map",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         testing::write_text(dir + "/model.safetensors.index.json", "{\"metadata\": {}}");
       },
       "weight_map"},
      {"index names a missing shard",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         testing::write_text(dir + "/model.safetensors.index.json",
                             R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}})");
       },
       "does not exist"},
      {"index escapes the folder",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         testing::write_text(dir + "/model.safetensors.index.json",
                             R"({"weight_map": {"model.norm.weight": "../model.safetensors"}})");
       },
       "not a plain file name"},
      {"index lists a tensor the shard lacks",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         write_weights(dir + "/a.safetensors", nullptr);
         testing::write_text(dir + "/model.safetensors.index.json",
                             R"({"weight_map": {"model.layers.0.mlp.nothing.weight": "a.safetensors"}})");
       },
       "not in"},
      {"corrupt safetensors",
       [&](const std::string& dir) {
         testing::write_text(dir + "/config.json", cfg);
         testing::write_text(dir + "/model.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":", 13));
       },
       "model.safetensors"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir d;
    c.make(d.path());
    const std::string msg = error_of([&] { open_model(d.path()); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace kvsieve
