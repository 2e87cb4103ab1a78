#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/gguf.h"
#include "test_util.h"

using namespace kvsieve;
using namespace kvsieve::testing;

TEST(Gguf, ReadsLlamaCppVocabFile) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  GgufFile f(shared_data() + "/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(f.get_string("tokenizer.ggml.model").value(), "llama");
  ASSERT_NE(f.get_strings("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens")->size(), 32000u);
  EXPECT_EQ(f.get_floats("tokenizer.ggml.scores")->size(), 32000u);
}

TEST(Gguf, WriteReadRoundTrip) {
  TempDir d;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 3);
  w.set_f32("llama.rope.freq_base", 500000.0f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_strings("tokenizer.ggml.tokens", {"a", "bb", ""});
  w.set_f32s("tokenizer.ggml.scores", {0.5f, -1.0f, 2.0f});
  std::vector<float> t(3 * 64);
  for (size_t i = 0; i < t.size(); ++i) t[i] = float(i) * 0.25f;
  w.add_tensor("w", DType::F32, {3, 64}, t.data());
  std::vector<uint8_t> q(dtype_row_bytes(DType::Q8_0, 64) * 2);
  quantize_row(DType::Q8_0, t.data(), q.data(), 128);
  w.add_tensor("q", DType::Q8_0, {2, 64}, q.data());
  w.write(d.file("x.gguf"));

  GgufFile f(d.file("x.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_int("llama.block_count").value(), 3);
  EXPECT_FLOAT_EQ(float(f.get_float("llama.rope.freq_base").value()), 500000.0f);
  EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token").value());
  EXPECT_EQ(*f.get_strings("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "bb", ""}));
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorView* tw = f.tensor("w");
  ASSERT_NE(tw, nullptr);
  EXPECT_EQ(tw->shape, (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(std::memcmp(tw->data, t.data(), t.size() * 4), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(tw->data) % 32, 0u);
  const TensorView* tq = f.tensor("q");
  EXPECT_EQ(tq->type, DType::Q8_0);
  EXPECT_EQ(std::memcmp(tq->data, q.data(), q.size()), 0);
  EXPECT_THROW(f.get_int("general.architecture"), Error);  // wrong type is an error
}

TEST(Gguf, RejectsBadFiles) {
  TempDir d;
  GgufWriter w;
  w.set_strings("tokenizer.ggml.tokens", {"a", "b"});
  std::vector<float> t(64, 1.0f);
  w.add_tensor("w", DType::F32, {64}, t.data());
  w.write(d.file("ok.gguf"));
  const std::string ok = read_file(d.file("ok.gguf"));

  auto expect_error = [&](const std::string& bytes, const char* what) {
    write_file(d.file("bad.gguf"), bytes);
    try {
      GgufFile f(d.file("bad.gguf"));
      ADD_FAILURE() << "accepted " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.gguf"), std::string::npos) << e.what();
    }
  };
  // Every truncation point must be rejected, never crash.
  for (size_t n = 0; n < ok.size(); n += (n < 200 ? 1 : 37)) expect_error(ok.substr(0, n), "truncated");
  std::string bad = ok;
  bad[0] = 'X';
  expect_error(bad, "wrong magic");
  bad = ok;
  bad[4] = 9;  // version 9
  expect_error(bad, "bad version");
  bad = ok;
  std::memset(&bad[8], 0xff, 8);  // absurd tensor count
  expect_error(bad, "absurd tensor count");
  bad = ok;
  std::memset(&bad[16], 0x7f, 8);  // absurd kv count
  expect_error(bad, "absurd kv count");
  expect_error("", "empty");
}
