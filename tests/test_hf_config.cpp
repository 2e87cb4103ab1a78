// config.json parsing: both RoPE forms, defaults, and broken configs.
#include "core/error.h"
#include "io/hf_config.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

using nlohmann::json;

void expect_same(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_vocab, b.n_vocab);
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_head_kv, b.n_head_kv);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.n_ff, b.n_ff);
  EXPECT_EQ(a.n_ctx_train, b.n_ctx_train);
  EXPECT_EQ(a.rms_eps, b.rms_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_style, b.rope_style);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.rope_scaling.original_max_position, b.rope_scaling.original_max_position);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
}

// A Llama 3.1 8B config.json as Meta published it (transformers 4 form).
const char* kLlama31 = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

TEST(HfConfig, Llama31) {
  const ModelConfig c = parse_hf_config(kLlama31, "config.json");
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_vocab, 128256);
  EXPECT_EQ(c.n_embd, 4096);
  EXPECT_EQ(c.n_layer, 32);
  EXPECT_EQ(c.n_head, 32);
  EXPECT_EQ(c.n_head_kv, 8);
  EXPECT_EQ(c.head_dim, 128);  // hidden / heads: no head_dim key
  EXPECT_EQ(c.n_ff, 14336);
  EXPECT_EQ(c.n_ctx_train, 131072);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_scaling.original_max_position, 8192);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.tied_embeddings);
}

TEST(HfConfig, BothRopeFormsGiveTheSameConfig) {
  // The same Llama 3.1 config in transformers 5's rope_parameters form.
  json j = json::parse(kLlama31);
  json rp = j["rope_scaling"];
  rp["rope_theta"] = j["rope_theta"];
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = rp;
  expect_same(parse_hf_config(kLlama31, "a"), parse_hf_config(j.dump(), "b"));

  // Every scaling kind through the test writer's two forms.
  for (auto type : {RopeScalingType::kNone, RopeScalingType::kLinear, RopeScalingType::kLlama3}) {
    ModelConfig c = testing::tiny_config("llama");
    c.rope_theta = 123456.0f;
    c.rope_scaling.type = type;
    if (type != RopeScalingType::kNone) c.rope_scaling.factor = 4.0f;
    if (type == RopeScalingType::kLlama3) {
      c.rope_scaling.low_freq_factor = 2.0f;
      c.rope_scaling.high_freq_factor = 8.0f;
      c.rope_scaling.original_max_position = 64;
    }
    const ModelConfig legacy =
        parse_hf_config(testing::hf_config_json(c, testing::ConfigForm::kLegacy).dump(), "legacy");
    const ModelConfig modern =
        parse_hf_config(testing::hf_config_json(c, testing::ConfigForm::kRopeParameters).dump(), "modern");
    expect_same(legacy, modern);
    expect_same(legacy, c);
  }
}

TEST(HfConfig, OlderScalingKeyAndDefaults) {
  json j = json::parse(kLlama31);
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // pre-4.45 key name
  j.erase("num_key_value_heads");
  j.erase("rms_norm_eps");
  j.erase("rope_theta");
  j.erase("tie_word_embeddings");
  j["head_dim"] = nullptr;
  const ModelConfig c = parse_hf_config(j.dump(), "config.json");
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_EQ(c.rope_scaling.factor, 2.0f);
  EXPECT_EQ(c.n_head_kv, 32);  // defaults to the query heads
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FALSE(c.tied_embeddings);
}

TEST(HfConfig, MistralAndQwen2) {
  json m = json::parse(kLlama31);
  m["architectures"] = {"MistralForCausalLM"};
  m["model_type"] = "mistral";
  m["sliding_window"] = 4096;
  m.erase("rope_scaling");
  const ModelConfig mc = parse_hf_config(m.dump(), "mistral");
  EXPECT_EQ(mc.arch, "llama");
  EXPECT_EQ(mc.sliding_window, 4096);
  EXPECT_EQ(mc.rope_scaling.type, RopeScalingType::kNone);

  ModelConfig q = testing::tiny_config("qwen2");
  json qj = testing::hf_config_json(q, testing::ConfigForm::kLegacy);
  qj["sliding_window"] = 4096;
  qj["use_sliding_window"] = false;
  ModelConfig qc = parse_hf_config(qj.dump(), "qwen2");
  EXPECT_EQ(qc.arch, "qwen2");
  EXPECT_TRUE(qc.qkv_bias);
  EXPECT_TRUE(qc.tied_embeddings);
  EXPECT_EQ(qc.sliding_window, 0);  // window present but not used
  qj["use_sliding_window"] = true;
  EXPECT_EQ(parse_hf_config(qj.dump(), "qwen2").sliding_window, 4096);
}

TEST(HfConfig, BrokenConfigsGiveClearErrors) {
  const json base = testing::hf_config_json(testing::tiny_config("llama"), testing::ConfigForm::kLegacy);
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"missing hidden_size", [](json& j) { j.erase("hidden_size"); }, "missing key 'hidden_size'"},
      {"missing vocab_size", [](json& j) { j.erase("vocab_size"); }, "missing key 'vocab_size'"},
      {"negative layers", [](json& j) { j["num_hidden_layers"] = -2; }, "layers = -2"},
      {"zero hidden", [](json& j) { j["hidden_size"] = 0; }, "hidden size = 0"},
      {"negative vocab", [](json& j) { j["vocab_size"] = -5; }, "vocab size = -5"},
      {"absurd ffn", [](json& j) { j["intermediate_size"] = 1e15; }, "feed-forward size"},
      {"string size", [](json& j) { j["hidden_size"] = "64"; }, "should be an integer"},
      {"fractional size", [](json& j) { j["hidden_size"] = 64.5; }, "should be an integer"},
      {"heads not dividing", [](json& j) { j["num_key_value_heads"] = 3; }, "not a multiple of 3 kv heads"},
      {"hidden not dividing heads",
       [](json& j) {
         j.erase("head_dim");
         j["num_attention_heads"] = 5;
         j["num_key_value_heads"] = 5;
       },
       "not divisible by num_attention_heads 5"},
      {"odd head dim", [](json& j) { j["head_dim"] = 15; }, "must be even"},
      {"unknown architecture", [](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; }, "GPT2LMHeadModel"},
      {"no architecture", [](json& j) { j.erase("architectures"); j.erase("model_type"); }, "what model"},
      {"yarn scaling", [](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; }, "'yarn'"},
      {"llama3 without factor",
       [](json& j) { j["rope_scaling"] = {{"rope_type", "llama3"}, {"low_freq_factor", 1.0}}; }, "'factor'"},
      {"gelu", [](json& j) { j["hidden_act"] = "gelu"; }, "gelu"},
      {"o_proj bias", [](json& j) { j["attention_bias"] = true; }, "attention_bias"},
      {"rope_scaling a list", [](json& j) { j["rope_scaling"] = {1, 2}; }, "rope_scaling"},
      {"negative eps", [](json& j) { j["rms_norm_eps"] = -1.0; }, "epsilon"},
      {"bool as int", [](json& j) { j["num_hidden_layers"] = true; }, "should be an integer"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    json j = base;
    c.edit(j);
    try {
      parse_hf_config(j.dump(), "/x/config.json");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
      EXPECT_NE(msg.find("/x/config.json"), std::string::npos) << msg;
    }
  }
  for (const char* text : {"", "{", "not json", "[1, 2]", "null", "{\"a\": }"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW(parse_hf_config(text, "config.json"), Error);
  }
  EXPECT_THROW(load_hf_config("/nonexistent/config.json"), Error);
}

}  // namespace
}  // namespace kvsieve
