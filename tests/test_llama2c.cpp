// llama2.c checkpoint import: stories260K's shapes and bytes, its stored RoPE
// tables against cos/sin, unshared classifiers, and files of the wrong size.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/llama2c.h"
#include "io/model_source.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

const std::string kModel = "stories260K/stories260K.bin";
const std::string kTok = "stories260K/tok512.bin";

std::string shared(const std::string& rel) { return testing::shared_data() + "/" + rel; }

std::vector<float> floats_at(const std::string& bytes, size_t offset, size_t n) {
  std::vector<float> v(n);
  EXPECT_LE(offset + 4 * n, bytes.size());
  std::memcpy(v.data(), bytes.data() + offset, 4 * n);
  return v;
}

TEST(Llama2c, Stories260KShapesAndConfig) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  // The data set's own description of the model (written when it was collected).
  const auto ref = nlohmann::json::parse(testing::read_file(shared("stories260K/config.json")));
  const ModelSource m = open_model(shared(kModel));  // recognised by extension + exact size
  EXPECT_EQ(m.format, "llama2c");
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_embd, ref["dim"].get<int64_t>());
  EXPECT_EQ(c.n_ff, ref["hidden_dim"].get<int64_t>());
  EXPECT_EQ(c.n_layer, ref["n_layers"].get<int64_t>());
  EXPECT_EQ(c.n_head, ref["n_heads"].get<int64_t>());
  EXPECT_EQ(c.n_head_kv, ref["n_kv_heads"].get<int64_t>());
  EXPECT_EQ(c.head_dim, ref["head_dim"].get<int64_t>());
  EXPECT_EQ(c.n_vocab, ref["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.n_ctx_train, ref["seq_len"].get<int64_t>());
  EXPECT_EQ(c.rope_theta, ref["rope_theta"].get<float>());
  EXPECT_EQ(c.rms_eps, ref["norm_eps"].get<float>());
  EXPECT_EQ(c.rope_style, RopeStyle::kInterleaved);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(m.find("output.weight"), nullptr);
  EXPECT_FALSE(m.vocab.has_value());
  EXPECT_EQ(m.tensors.size(), size_t(2 + 9 * c.n_layer));
  EXPECT_EQ(m.get("blk.4.attn_k.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(m.get("blk.0.ffn_down.weight").shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(m.get("blk.0.ffn_gate.weight").shape, (std::vector<int64_t>{172, 64}));
  int64_t params = 0;
  for (const auto& [n, t] : m.tensors) params += t.numel();
  // ~260K parameters as the name says (the RoPE tables are not parameters).
  EXPECT_NEAR(double(params), double(ref["params"].get<int64_t>()), 1000.0);
}

// Offsets recomputed here from the order llama2.c's run.c maps its weights in.
TEST(Llama2c, TensorsAreViewsOfTheRightBytes) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  const std::string bytes = testing::read_file(shared(kModel));
  const ModelSource m = open_llama2c(shared(kModel));
  const size_t E = 64, H = 172, L = 5, V = 512, KV = 32;
  size_t off = 28;
  auto next = [&off](size_t n) {
    const size_t at = off;
    off += 4 * n;
    return at;
  };
  const size_t emb = next(V * E), rms_att = next(L * E), wq = next(L * E * E), wk = next(L * KV * E),
               wv = next(L * KV * E), wo = next(L * E * E), rms_ffn = next(L * E), w1 = next(L * H * E),
               w2 = next(L * E * H), w3 = next(L * H * E), rms_final = next(E);
  auto same = [&](const std::string& name, size_t at) {
    const TensorView& t = m.get(name);
    EXPECT_EQ(testing::as_f32(t), floats_at(bytes, at, size_t(t.numel()))) << name;
  };
  same("token_embd.weight", emb);
  same("output_norm.weight", rms_final);
  for (size_t l = 0; l < L; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    same(p + "attn_norm.weight", rms_att + 4 * l * E);
    same(p + "attn_q.weight", wq + 4 * l * E * E);
    same(p + "attn_k.weight", wk + 4 * l * KV * E);
    same(p + "attn_v.weight", wv + 4 * l * KV * E);
    same(p + "attn_output.weight", wo + 4 * l * E * E);
    same(p + "ffn_norm.weight", rms_ffn + 4 * l * E);
    same(p + "ffn_gate.weight", w1 + 4 * l * H * E);
    same(p + "ffn_down.weight", w2 + 4 * l * E * H);
    same(p + "ffn_up.weight", w3 + 4 * l * H * E);
  }
  // Views into one mapping: consecutive layers sit one slice apart.
  const auto* q0 = static_cast<const uint8_t*>(m.get("blk.0.attn_q.weight").data);
  const auto* q1 = static_cast<const uint8_t*>(m.get("blk.1.attn_q.weight").data);
  EXPECT_EQ(q1 - q0, ptrdiff_t(4 * E * E));
}

// The checkpoint stores freq_cis = cos/sin(pos * theta^(-2i/hd)); they must
// agree with that formula, which checks our reading of the layout end to end.
TEST(Llama2c, StoredRopeTablesMatchCosSin) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  const std::string bytes = testing::read_file(shared(kModel));
  const Llama2cLayout L =
      llama2c_layout(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), shared(kModel));
  const int64_t hd = L.config.head_dim, seq = L.config.n_ctx_train;
  const auto re = floats_at(bytes, L.freq_cis_real, size_t(seq * hd / 2));
  const auto im = floats_at(bytes, L.freq_cis_imag, size_t(seq * hd / 2));
  double worst = 0;
  for (int64_t pos = 0; pos < seq; ++pos)
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double ang = double(pos) * std::pow(10000.0, -2.0 * double(i) / double(hd));
      worst = std::max(worst, std::fabs(re[size_t(pos * hd / 2 + i)] - std::cos(ang)));
      worst = std::max(worst, std::fabs(im[size_t(pos * hd / 2 + i)] - std::sin(ang)));
    }
  // f32 angles up to 511 rad are off by ~3e-5 rad at most.
  EXPECT_LT(worst, 1e-4);
  EXPECT_EQ(L.freq_cis_imag + 4 * uint64_t(seq * hd / 2), L.total);  // shared classifier: nothing after
}

TEST(Llama2c, WithTokenizer) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  KVSIEVE_REQUIRE_SHARED(kTok);
  const ModelSource m = open_llama2c(shared(kModel), shared(kTok));
  ASSERT_TRUE(m.vocab.has_value());
  EXPECT_EQ(m.vocab->tokens.size(), 512u);
  EXPECT_EQ(m.vocab->bos, 1);
  EXPECT_EQ(m.vocab->eos, 2);
  EXPECT_TRUE(m.vocab->add_bos);
  EXPECT_TRUE(m.vocab->add_space_prefix);
  EXPECT_EQ(m.vocab->model, "llama");
}

// A tiny checkpoint with an unshared classifier (negative vocab_size).
std::string tiny_llama2c(int32_t vocab_signed, int extra_bytes = 0) {
  const int32_t h[7] = {8, 16, 1, 2, 1, vocab_signed, 4};
  const size_t V = size_t(std::abs(vocab_signed)), E = 8, F = 16, KV = 4, hd = 4, S = 4;
  size_t n = V * E + E + E * E + 2 * KV * E + E * E + E + 3 * F * E + E + 2 * S * hd / 2;
  if (vocab_signed < 0) n += V * E;
  std::vector<float> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = float(i);
  std::string s(reinterpret_cast<const char*>(h), 28);
  s += std::string(reinterpret_cast<const char*>(w.data()), 4 * n);
  return s + std::string(size_t(extra_bytes), '\0');
}

TEST(Llama2c, UnsharedClassifier) {
  testing::TempDir d;
  testing::write_file(d.file("u.bin"), tiny_llama2c(-10));
  const ModelSource m = open_model(d.file("u.bin"));
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.n_vocab, 10);
  const TensorView& out = m.get("output.weight");
  EXPECT_EQ(out.shape, (std::vector<int64_t>{10, 8}));
  // The classifier is the last vocab x dim floats of the file.
  const auto v = testing::as_f32(out);
  const float first = v[0];
  EXPECT_EQ(v.back(), first + 79.0f);
  const size_t total_floats = (testing::read_file(d.file("u.bin")).size() - 28) / 4;
  EXPECT_EQ(size_t(v.back()), total_floats - 1);
  // Shared version of the same sizes: no classifier.
  testing::write_file(d.file("s.bin"), tiny_llama2c(10));
  EXPECT_TRUE(open_model(d.file("s.bin")).config.tied_embeddings);
}

TEST(Llama2c, WrongSizesAndHeadersGiveErrors) {
  testing::TempDir d;
  auto msg_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const std::string good = tiny_llama2c(10);
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  auto patched = [&](int field, int32_t v) {
    std::string s = good;
    std::memcpy(s.data() + 4 * field, &v, 4);
    return s;
  };
  const std::vector<Case> cases = {
      {"truncated", good.substr(0, good.size() - 4), "size mismatch"},
      {"extra bytes", tiny_llama2c(10, 4), "size mismatch"},
      {"unshared but no classifier", patched(5, -10), "size mismatch"},
      {"heads not dividing dim", patched(3, 3), "not divisible"},
      {"kv heads not dividing heads", patched(4, 3), "not a multiple"},
      {"negative dim", patched(0, -8), "dim = -8"},
      {"zero layers", patched(2, 0), "n_layers = 0"},
      {"absurd vocab", patched(5, 1 << 30), "vocab_size"},
      {"absurd seq_len", patched(6, 0x7fffffff), "seq_len"},
      {"tiny file", "abc", "too small"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string p = d.file("bad.bin");
    testing::write_file(p, c.bytes);
    const std::string direct = msg_of([&] { open_llama2c(p); });
    EXPECT_NE(direct.find(c.expect), std::string::npos) << direct;
    EXPECT_NE(direct.find(p), std::string::npos) << direct;
    // Through open_model: not recognised, and the reason is given.
    const std::string via = msg_of([&] { open_model(p); });
    EXPECT_NE(via.find("neither a GGUF file nor a llama2.c checkpoint"), std::string::npos) << via;
  }
  // Not .bin and not GGUF: unrecognised.
  testing::write_file(d.file("model.xyz"), good);
  EXPECT_NE(msg_of([&] { open_model(d.file("model.xyz")); }).find("unrecognized model format"), std::string::npos);
  EXPECT_NE(msg_of([&] { open_model(d.file("missing.bin")); }).find("no such file"), std::string::npos);
}

}  // namespace
}  // namespace kvsieve
