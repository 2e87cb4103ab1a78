// write_model_gguf: round trips through GGUF, the q/k permutation for HF llama
// sources, llama3 rope_freqs, quantization, and failures that leave no file.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"
#include "io/gguf.h"
#include "io/model_source.h"
#include "io/qk_permute.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

using testing::ConfigForm;
using testing::TempDir;
namespace fs = std::filesystem;

const std::string kModel = "stories260K/stories260K.bin";
const std::string kTok = "stories260K/tok512.bin";
std::string shared(const std::string& rel) { return testing::shared_data() + "/" + rel; }

void expect_same_config(const ModelConfig& a, const ModelConfig& b) {
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
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.rope_scaling.factor, b.rope_scaling.factor);
  EXPECT_EQ(a.rope_scaling.low_freq_factor, b.rope_scaling.low_freq_factor);
  EXPECT_EQ(a.rope_scaling.high_freq_factor, b.rope_scaling.high_freq_factor);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
}

bool same_bytes(const TensorView& a, const TensorView& b) {
  return a.type == b.type && a.shape == b.shape && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

TEST(Convert, Llama2cToGgufRoundTrip) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  KVSIEVE_REQUIRE_SHARED(kTok);
  TempDir d;
  const ModelSource src = open_llama2c(shared(kModel), shared(kTok));
  const std::string out = d.file("s.gguf");
  write_model_gguf(src, out);
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  const ModelSource g = open_model(out);
  EXPECT_EQ(g.format, "gguf");
  expect_same_config(src.config, g.config);
  EXPECT_EQ(g.config.rope_style, RopeStyle::kInterleaved);  // llama2.c is already interleaved: no permutation
  EXPECT_EQ(g.config.name, "stories260K");
  ASSERT_EQ(g.tensors.size(), src.tensors.size());
  for (const auto& [name, t] : src.tensors) EXPECT_TRUE(same_bytes(t, g.get(name))) << name;
  ASSERT_TRUE(g.vocab.has_value());
  EXPECT_EQ(g.vocab->tokens, src.vocab->tokens);
  EXPECT_EQ(g.vocab->scores, src.vocab->scores);
  EXPECT_EQ(g.vocab->bos, 1);
  EXPECT_EQ(g.vocab->eos, 2);
  EXPECT_TRUE(g.vocab->add_bos);

  // The metadata llama.cpp reads.
  GgufFile f(out);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 5);
  EXPECT_EQ(f.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f.get_int("llama.rope.dimension_count"), 8);
  EXPECT_EQ(f.get_int("llama.context_length"), 512);
  EXPECT_EQ(f.get_int("general.file_type"), 0);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "llama");

  // GGUF -> GGUF keeps everything too.
  write_model_gguf(g, d.file("s2.gguf"));
  const ModelSource g2 = open_model(d.file("s2.gguf"));
  for (const auto& [name, t] : g.tensors) EXPECT_TRUE(same_bytes(t, g2.get(name))) << name;
}

// ---- q/k permutation

// llama.cpp's converter: w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(w.shape),
// written out element by element.
std::vector<float> llamacpp_permute(const std::vector<float>& w, int64_t n_head, int64_t hd, int64_t cols) {
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < hd / 2; ++b)
        for (int64_t c = 0; c < cols; ++c)
          out[size_t(((h * (hd / 2) + b) * 2 + a) * cols + c)] = w[size_t(((h * 2 + a) * (hd / 2) + b) * cols + c)];
  return out;
}

TEST(Convert, PermutationRoundTripAndLlamaCppLayout) {
  const int64_t heads = 3, hd = 8, cols = 5;
  std::vector<float> w(size_t(heads * hd * cols));
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(i);
  std::vector<float> inter(w.size()), back(w.size());
  permute_qk_rows(w.data(), inter.data(), heads, hd, cols * 4, QkDirection::kNeoxToInterleaved);
  EXPECT_EQ(inter, llamacpp_permute(w, heads, hd, cols));
  permute_qk_rows(inter.data(), back.data(), heads, hd, cols * 4, QkDirection::kInterleavedToNeox);
  EXPECT_EQ(back, w);
  // Odd row sizes (quantized rows are 34 or 18 bytes) move whole.
  std::vector<uint8_t> b(size_t(heads * hd * 3)), bi(b.size()), bb(b.size());
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i);
  permute_qk_rows(b.data(), bi.data(), heads, hd, 3, QkDirection::kNeoxToInterleaved);
  permute_qk_rows(bi.data(), bb.data(), heads, hd, 3, QkDirection::kInterleavedToNeox);
  EXPECT_EQ(bb, b);
  EXPECT_NE(bi, b);
}

// RoPE of one head vector in either layout (double precision; a reference for this test).
void rope(double* x, int64_t hd, int64_t pos, double theta, bool neox) {
  for (int64_t i = 0; i < hd / 2; ++i) {
    const double ang = double(pos) * std::pow(theta, -2.0 * double(i) / double(hd));
    const int64_t a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
    const double x0 = x[a], x1 = x[b];
    x[a] = x0 * std::cos(ang) - x1 * std::sin(ang);
    x[b] = x0 * std::sin(ang) + x1 * std::cos(ang);
  }
}

// Attention logits q_h(pq) . k_{h/group}(pk) for every query head, from the
// model's q/k weights (f32 views) in the given RoPE layout.
std::vector<double> scores(const ModelSource& m, int layer, const std::vector<float>& x, int64_t pq, int64_t pk) {
  const ModelConfig& c = m.config;
  const auto wq = testing::as_f32(m.get(fmt::format("blk.{}.attn_q.weight", layer)));
  const auto wk = testing::as_f32(m.get(fmt::format("blk.{}.attn_k.weight", layer)));
  const bool neox = c.rope_style == RopeStyle::kNeox;
  auto project = [&](const std::vector<float>& w, int64_t rows) {
    std::vector<double> y(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < c.n_embd; ++j) y[size_t(r)] += double(w[size_t(r * c.n_embd + j)]) * x[size_t(j)];
    return y;
  };
  auto q = project(wq, c.n_head * c.head_dim);
  auto k = project(wk, c.n_head_kv * c.head_dim);
  for (int64_t h = 0; h < c.n_head; ++h) rope(q.data() + h * c.head_dim, c.head_dim, pq, c.rope_theta, neox);
  for (int64_t h = 0; h < c.n_head_kv; ++h) rope(k.data() + h * c.head_dim, c.head_dim, pk, c.rope_theta, neox);
  std::vector<double> s;
  const int64_t group = c.n_head / c.n_head_kv;
  for (int64_t h = 0; h < c.n_head; ++h) {
    double dot = 0;
    for (int64_t i = 0; i < c.head_dim; ++i)
      dot += q[size_t(h * c.head_dim + i)] * k[size_t((h / group) * c.head_dim + i)];
    s.push_back(dot);
  }
  return s;
}

TEST(Convert, HfLlamaQkPermutedToInterleaved) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("llama"), 21);
  testing::write_hf_folder(d.path(), t);
  const ModelSource hf = open_model(d.path());
  write_model_gguf(hf, d.file("m.gguf"));
  const ModelSource g = open_model(d.file("m.gguf"));
  EXPECT_EQ(g.config.rope_style, RopeStyle::kInterleaved);
  expect_same_config(hf.config, g.config);
  const ModelConfig& c = hf.config;
  // q/k rows moved exactly as llama.cpp's converter moves them; all else unchanged.
  for (const auto& [name, tv] : hf.tensors) {
    const bool q = name.find("attn_q.weight") != std::string::npos;
    const bool k = name.find("attn_k.weight") != std::string::npos;
    if (q || k)
      EXPECT_EQ(testing::as_f32(g.get(name)), llamacpp_permute(testing::as_f32(tv), q ? c.n_head : c.n_head_kv,
                                                                c.head_dim, c.n_embd))
          << name;
    else
      EXPECT_TRUE(same_bytes(tv, g.get(name))) << name;
  }
  // What matters: RoPE'd attention logits are the same in both layouts.
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(c.n_embd));
  for (auto& v : x) v = nd(rng);
  for (int layer = 0; layer < 2; ++layer) {
    const auto a = scores(hf, layer, x, 37, 5), b = scores(g, layer, x, 37, 5);
    for (size_t h = 0; h < a.size(); ++h) EXPECT_NEAR(a[h], b[h], 1e-6 * (1 + std::fabs(a[h])));
    // A wrong pairing would change them: the same weights read in the other layout differ.
    ModelSource wrong = open_model(d.file("m.gguf"));
    wrong.config.rope_style = RopeStyle::kNeox;
    const auto w = scores(wrong, layer, x, 37, 5);
    double diff = 0;
    for (size_t h = 0; h < a.size(); ++h) diff += std::fabs(a[h] - w[h]);
    EXPECT_GT(diff, 1e-3);
  }
}

TEST(Convert, HfQwen2KeepsNeoxAndBiases) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("qwen2"), 8);
  testing::write_hf_folder(d.path(), t, DType::BF16);
  const ModelSource hf = open_model(d.path());
  write_model_gguf(hf, d.file("q.gguf"));
  const ModelSource g = open_model(d.file("q.gguf"));
  EXPECT_EQ(g.config.arch, "qwen2");
  EXPECT_EQ(g.config.rope_style, RopeStyle::kNeox);
  EXPECT_TRUE(g.config.qkv_bias);
  EXPECT_TRUE(g.config.tied_embeddings);
  EXPECT_EQ(g.find("output.weight"), nullptr);
  for (const auto& [name, tv] : hf.tensors) {
    const TensorView& o = g.get(name);
    if (tv.shape.size() == 1) {
      EXPECT_EQ(o.type, DType::F32) << name;  // norms and biases are stored F32
      EXPECT_EQ(testing::as_f32(o), testing::as_f32(tv)) << name;
    } else {
      EXPECT_TRUE(same_bytes(tv, o)) << name;  // BF16 kept, no permutation
    }
  }
  GgufFile f(d.file("q.gguf"));
  EXPECT_EQ(f.get_int("general.file_type"), 32);  // mostly BF16
}

// ---- llama3 RoPE scaling

// transformers' _compute_llama3_parameters, written out: the scaled inverse frequencies.
std::vector<double> hf_llama3_inv_freq(const ModelConfig& c) {
  const auto& s = c.rope_scaling;
  std::vector<double> out;
  const double low_wl = s.original_max_position / s.low_freq_factor;
  const double high_wl = s.original_max_position / s.high_freq_factor;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double inv = 1.0 / std::pow(double(c.rope_theta), double(2 * i) / double(c.head_dim));
    const double wl = 2 * M_PI / inv;
    double scaled = wl > low_wl ? inv / s.factor : inv;
    const double smooth = (s.original_max_position / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    if (!(wl < high_wl) && !(wl > low_wl)) scaled = (1 - smooth) * inv / s.factor + smooth * inv;
    out.push_back(scaled);
  }
  return out;
}

ModelConfig llama3_config() {
  ModelConfig c = testing::tiny_config("llama");
  c.rope_theta = 500000.0f;
  c.rope_scaling.type = RopeScalingType::kLlama3;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_max_position = 64;  // all three bands within head_dim 16
  return c;
}

// Re-writes a GGUF file through GgufWriter, dropping keys and editing rope_freqs.
void rewrite(const std::string& in, const std::string& out, bool drop_kvsieve_keys, float rope_freqs_scale) {
  GgufFile f(in);
  GgufWriter w;
  for (const auto& k : f.keys())
    if (!(drop_kvsieve_keys && k.rfind("kvsieve.", 0) == 0)) w.set_value(k, *f.find(k));
  for (const auto& t : f.tensors()) {
    if (t.name == "rope_freqs.weight") {
      auto v = testing::as_f32(t);
      for (auto& x : v) x *= rope_freqs_scale;
      w.add_tensor(t.name, t.type, t.shape, v.data());
    } else {
      w.add_tensor(t.name, t.type, t.shape, t.data);
    }
  }
  w.write(out);
}

TEST(Convert, Llama3ScalingWritesRopeFreqs) {
  TempDir d;
  const auto t = testing::make_tiny(llama3_config(), 4);
  testing::write_hf_folder(d.path(), t, DType::F32, ConfigForm::kLegacy);
  const ModelSource hf = open_model(d.path());
  write_model_gguf(hf, d.file("l3.gguf"));

  GgufFile f(d.file("l3.gguf"));
  const TensorView* rf = f.tensor("rope_freqs.weight");
  ASSERT_NE(rf, nullptr);
  EXPECT_EQ(rf->type, DType::F32);
  EXPECT_EQ(rf->shape, (std::vector<int64_t>{8}));
  const auto divisors = testing::as_f32(*rf);
  const auto scaled = hf_llama3_inv_freq(hf.config);
  int kept = 0, divided = 0, blended = 0;
  for (int64_t i = 0; i < 8; ++i) {
    const double inv = 1.0 / std::pow(500000.0, double(2 * i) / 16.0);
    // llama.cpp divides the plain frequency by the factor: it must give transformers' frequency.
    EXPECT_NEAR(inv / divisors[size_t(i)], scaled[size_t(i)], 1e-6 * scaled[size_t(i)]) << i;
    kept += divisors[size_t(i)] == 1.0f;
    divided += divisors[size_t(i)] == 8.0f;
    blended += divisors[size_t(i)] > 1.0f && divisors[size_t(i)] < 8.0f;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  // llama.cpp aborts on unknown scaling types, so none is written under llama.*
  EXPECT_EQ(f.find("llama.rope.scaling.type"), nullptr);
  EXPECT_EQ(f.find("llama.rope.scaling.factor"), nullptr);
  EXPECT_EQ(f.get_string("kvsieve.rope.scaling.type"), "llama3");

  // kvsieve reads the parameters back and drops the redundant tensor.
  const ModelSource g = open_model(d.file("l3.gguf"));
  expect_same_config(hf.config, g.config);
  EXPECT_EQ(g.config.rope_scaling.original_max_position, 64);
  EXPECT_EQ(g.find("rope_freqs.weight"), nullptr);

  // A llama.cpp-made file (divisors only) keeps the tensor and no scaling.
  rewrite(d.file("l3.gguf"), d.file("llamacpp.gguf"), true, 1.0f);
  const ModelSource lc = open_model(d.file("llamacpp.gguf"));
  EXPECT_EQ(lc.config.rope_scaling.type, RopeScalingType::kNone);
  ASSERT_NE(lc.find("rope_freqs.weight"), nullptr);
  EXPECT_EQ(testing::as_f32(lc.get("rope_freqs.weight")), divisors);
  // ... and writes it again when converted.
  write_model_gguf(lc, d.file("again.gguf"));
  EXPECT_EQ(testing::as_f32(*GgufFile(d.file("again.gguf")).tensor("rope_freqs.weight")), divisors);

  // Metadata and tensor that disagree are refused.
  rewrite(d.file("l3.gguf"), d.file("bad.gguf"), false, 2.0f);
  try {
    open_model(d.file("bad.gguf"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("disagrees"), std::string::npos) << e.what();
  }
}

// ---- quantization

// Per-block max |x| of a row-major f32 matrix, blocks of 32 along rows.
float block_amax(const std::vector<float>& v, size_t i) {
  const size_t b = i / 32 * 32;
  float m = 0;
  for (size_t j = b; j < b + 32; ++j) m = std::max(m, std::fabs(v[j]));
  return m;
}

TEST(Convert, QuantizeQ8AndQ4) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("llama"), 9);
  testing::write_hf_folder(d.path(), t);
  const ModelSource hf = open_model(d.path());
  for (DType q : {DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_name(q));
    const std::string out = d.file("q.gguf");
    std::vector<std::string> log;
    write_model_gguf(hf, out, q, [&](const std::string& s) { log.push_back(s); });
    EXPECT_TRUE(log.empty());  // every row length is a multiple of 32
    const ModelSource g = open_model(out);
    GgufFile f(out);
    EXPECT_EQ(f.get_int("general.file_type"), q == DType::Q8_0 ? 7 : 2);
    EXPECT_EQ(f.get_int("general.quantization_version"), 2);
    // Levels: 127 steps of amax (Q8_0), 8 steps (Q4_0); error at most half a step,
    // one step at Q4_0's clipped end; plus the f16 rounding of the scale (up to 127 * 2^-11 steps).
    const float steps = q == DType::Q8_0 ? 127.0f : 8.0f;
    const float tol = q == DType::Q8_0 ? 0.57f : 1.01f;
    for (const auto& [name, tv] : hf.tensors) {
      const TensorView& o = g.get(name);
      if (tv.shape.size() == 1) {
        EXPECT_EQ(o.type, DType::F32) << name;
        continue;
      }
      EXPECT_EQ(o.type, q) << name;
      auto want = testing::as_f32(tv);
      if (name.find("attn_q.weight") != std::string::npos)
        want = llamacpp_permute(want, 4, 16, 64);
      else if (name.find("attn_k.weight") != std::string::npos)
        want = llamacpp_permute(want, 2, 16, 64);
      const auto got = testing::as_f32(o);
      double sum_err = 0, sum_abs = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        const float step = block_amax(want, i) / steps;
        ASSERT_LE(std::fabs(got[i] - want[i]), tol * step * 1.002f + 1e-7f) << name << " [" << i << "]";
        sum_err += std::fabs(got[i] - want[i]);
        sum_abs += std::fabs(want[i]);
      }
      EXPECT_LT(sum_err / sum_abs, q == DType::Q8_0 ? 0.01 : 0.15) << name;
    }
  }
}

TEST(Convert, RowsNotMultipleOf32StayF16) {
  KVSIEVE_REQUIRE_SHARED(kModel);
  TempDir d;
  const ModelSource src = open_llama2c(shared(kModel));
  std::vector<std::string> log;
  write_model_gguf(src, d.file("q.gguf"), DType::Q8_0, [&](const std::string& s) { log.push_back(s); });
  const ModelSource g = open_model(d.file("q.gguf"));
  EXPECT_EQ(g.get("blk.0.ffn_down.weight").type, DType::F16);  // rows of 172
  EXPECT_EQ(g.get("blk.0.ffn_up.weight").type, DType::Q8_0);   // rows of 64
  EXPECT_EQ(g.get("token_embd.weight").type, DType::Q8_0);
  EXPECT_EQ(g.get("blk.0.attn_norm.weight").type, DType::F32);
  ASSERT_EQ(log.size(), 5u);  // one per layer's ffn_down
  EXPECT_NE(log[0].find("blk.0.ffn_down.weight"), std::string::npos);
  EXPECT_NE(log[0].find("F16"), std::string::npos);
  // The F16 fallback is the f32 values rounded to f16.
  const auto want = testing::as_f32(src.get("blk.2.ffn_down.weight"));
  const auto got = testing::as_f32(g.get("blk.2.ffn_down.weight"));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], f16_to_f32(f32_to_f16(want[i])));

  // Q8_0 back to F32: the dequantized values exactly.
  write_model_gguf(g, d.file("f.gguf"), DType::F32);
  const ModelSource f = open_model(d.file("f.gguf"));
  EXPECT_EQ(f.get("blk.0.ffn_up.weight").type, DType::F32);
  EXPECT_EQ(testing::as_f32(f.get("blk.0.ffn_up.weight")), testing::as_f32(g.get("blk.0.ffn_up.weight")));
}

TEST(Convert, FailuresLeaveNoFile) {
  TempDir d;
  const auto t = testing::make_tiny(testing::tiny_config("llama"));
  testing::write_hf_folder(d.path(), t);
  ModelSource m = open_model(d.path());
  // A folder that does not exist.
  EXPECT_THROW(write_model_gguf(m, d.file("no/such/dir/x.gguf")), Error);
  // A model missing a tensor is refused before anything is written.
  m.tensors.erase("blk.1.ffn_gate.weight");
  EXPECT_THROW(write_model_gguf(m, d.file("x.gguf")), Error);
  EXPECT_FALSE(fs::exists(d.file("x.gguf")));
  EXPECT_FALSE(fs::exists(d.file("x.gguf.tmp")));
  // A tensor that fails while being produced: the temporary file is removed too.
  GgufWriter w;
  w.add_tensor_lazy("a", DType::F32, {4}, [](uint8_t*) { fail("boom"); });
  EXPECT_THROW(w.write(d.file("y.gguf")), Error);
  EXPECT_FALSE(fs::exists(d.file("y.gguf")));
  EXPECT_FALSE(fs::exists(d.file("y.gguf.tmp")));
}

}  // namespace
}  // namespace kvsieve
