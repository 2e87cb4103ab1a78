// Broken model files: truncated, corrupted, wrong magic, absurd sizes, bad
// metadata. Each must give an Error naming the file (never a crash), and
// through the CLI a non-zero exit with the message on stderr and no output file.
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/gguf.h"
#include "io/model_source.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

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

// A good tiny GGUF (llama, F32) made by the converter from a tiny HF folder.
std::string good_gguf(const TempDir& d) {
  const auto t = testing::make_tiny(testing::tiny_config("llama"), 13);
  fs::create_directories(d.file("hf"));
  testing::write_hf_folder(d.file("hf"), t);
  write_model_gguf(open_model(d.file("hf")), d.file("good.gguf"));
  return testing::read_file(d.file("good.gguf"));
}

// Copies a GGUF through GgufWriter with edits to metadata and tensors.
void rewrite(const std::string& in, const std::string& out, const std::function<void(GgufWriter&)>& edit,
             const std::string& drop_key = "", const std::string& drop_tensor = "") {
  GgufFile f(in);
  GgufWriter w;
  for (const auto& k : f.keys())
    if (k != drop_key) w.set_value(k, *f.find(k));
  for (const auto& t : f.tensors())
    if (t.name != drop_tensor) w.add_tensor(t.name, t.type, t.shape, t.data);
  edit(w);
  w.write(out);
}

size_t find_bytes(const std::string& hay, const std::string& needle) {
  const size_t p = hay.find(needle);
  EXPECT_NE(p, std::string::npos) << needle;
  return p;
}

template <typename T>
std::string patched(std::string s, size_t at, T v) {
  std::memcpy(s.data() + at, &v, sizeof(T));
  return s;
}

TEST(BadInputIo, CorruptGgufBytes) {
  TempDir d;
  const std::string good = good_gguf(d);
  ASSERT_NO_THROW(open_model(d.file("good.gguf")));
  // Tensor info of token_embd.weight: u64 len, name, u32 n_dims, u64 dims[], u32 type, u64 offset.
  const size_t emb = find_bytes(good, "token_embd.weight") + std::strlen("token_embd.weight");
  const size_t arch_len = find_bytes(good, "general.architecture") - 8;
  struct Case {
    const char* what;
    std::string bytes;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"empty", "", "truncated"},
      {"magic only", "GGUF", "truncated"},
      {"wrong magic", "GGUX" + good.substr(4), "bad magic"},
      {"bad version", patched(good, 4, uint32_t(99)), "version 99"},
      {"absurd tensor count", patched(good, 8, uint64_t(1) << 60), "absurd counts"},
      {"absurd metadata count", patched(good, 16, uint64_t(1) << 60), "absurd counts"},
      {"absurd key length", patched(good, arch_len, uint64_t(1) << 40), "absurd length"},
      {"absurd dimension", patched(good, emb + 4, uint64_t(1) << 40), "absurd dimension"},
      {"zero dimension", patched(good, emb + 4, uint64_t(0)), "absurd dimension"},
      {"too many dims", patched(good, emb, uint32_t(9)), "dimensions"},
      {"unsupported type", patched(good, emb + 4 + 16, uint32_t(10)), "GGML type 10"},  // Q2_K
      {"K-quant on short rows", patched(good, emb + 4 + 16, uint32_t(12)), "not a multiple of the Q4_K block size 256"},
      {"offset past the end", patched(good, emb + 4 + 16 + 4, uint64_t(1) << 40), "runs past the end"},
      {"misaligned offset", patched(good, emb + 4 + 16 + 4, uint64_t(3)), "not aligned"},
  };
  for (size_t cut : {size_t(10), size_t(24), size_t(100), good.size() / 2, good.size() - 1})
    cases.push_back({"truncated", good.substr(0, cut), "truncated"});
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.what) + " (" + std::to_string(c.bytes.size()) + " bytes)");
    const std::string p = d.file("bad.gguf");
    testing::write_file(p, c.bytes);
    const std::string msg = error_of([&] { open_model(p); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

TEST(BadInputIo, BadGgufMetadataAndTensors) {
  TempDir d;
  good_gguf(d);
  const std::string in = d.file("good.gguf"), out = d.file("bad.gguf");
  std::vector<float> junk(64, 1.0f);
  struct Case {
    const char* what;
    std::function<void()> make;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"unsupported architecture",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_string("general.architecture", "gpt2"); }); },
       "architecture 'gpt2' is not supported"},
      {"no architecture", [&] { rewrite(in, out, [](GgufWriter&) {}, "general.architecture"); },
       "general.architecture"},
      {"missing block_count", [&] { rewrite(in, out, [](GgufWriter&) {}, "llama.block_count"); },
       "missing metadata 'llama.block_count'"},
      {"zero embedding length",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_u32("llama.embedding_length", 0); }); }, "hidden size = 0"},
      {"absurd layer count",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_u32("llama.block_count", 1u << 30); }); }, "layers"},
      {"kv heads not dividing",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_u32("llama.attention.head_count_kv", 3); }); },
       "not a multiple of 3"},
      {"string where a number belongs",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_string("llama.context_length", "long"); }); },
       "should be an integer"},
      {"vocab size disagrees with the embedding",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_u32("llama.vocab_size", 100); }); },
       "'token_embd.weight' has shape [96, 64], expected [100, 64]"},
      {"missing tensor", [&] { rewrite(in, out, [](GgufWriter&) {}, "", "blk.1.attn_v.weight"); },
       "missing tensor 'blk.1.attn_v.weight' (expected shape [32, 64])"},
      {"unknown tensor",
       [&] {
         rewrite(in, out, [&](GgufWriter& w) { w.add_tensor("blk.0.attn_output.bias", DType::F32, {64}, junk.data()); });
       },
       "unexpected tensor 'blk.0.attn_output.bias'"},
      {"quantized norm",
       [&] {
         rewrite(in, out, [&](GgufWriter& w) {
           std::vector<uint8_t> q(2 * 34);
           w.add_tensor("blk.0.ffn_norm.weight", DType::Q8_0, {64}, q.data());
         }, "", "blk.0.ffn_norm.weight");
       },
       "norm weights and biases must be"},
      {"partial rope",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_u32("llama.rope.dimension_count", 8); }); },
       "partial RoPE"},
      {"yarn scaling",
       [&] { rewrite(in, out, [](GgufWriter& w) { w.set_string("llama.rope.scaling.type", "yarn"); }); },
       "'yarn' is not supported"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    c.make();
    const std::string msg = error_of([&] { open_model(out); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_NE(msg.find(out), std::string::npos) << msg;
  }
}

// ---- through the command line

std::string q(const std::string& s) { return "'" + s + "'"; }

void expect_clean_failure(const testing::CommandResult& r, const std::string& expect) {
  EXPECT_EQ(r.exit_code, 1) << r.err;  // 1 = reported error; >= 128 would be a crash
  EXPECT_NE(r.err.find("kvsieve: error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
}

TEST(BadInputIo, CliInspectAndConvertFailCleanly) {
  TempDir d;
  const std::string good = good_gguf(d);
  testing::write_file(d.file("trunc.gguf"), good.substr(0, good.size() / 2));
  testing::write_file(d.file("junk.bin"), std::string(1000, 'x'));
  testing::write_file(d.file("empty.gguf"), "");

  expect_clean_failure(testing::run_kvsieve("inspect " + q(d.file("trunc.gguf"))), "truncated");
  expect_clean_failure(testing::run_kvsieve("inspect " + q(d.file("empty.gguf"))), "truncated");
  expect_clean_failure(testing::run_kvsieve("inspect " + q(d.file("junk.bin"))), "llama2.c");
  expect_clean_failure(testing::run_kvsieve("inspect " + q(d.file("nothing-here"))), "no such file");
  fs::create_directories(d.file("emptydir"));
  expect_clean_failure(testing::run_kvsieve("inspect " + q(d.file("emptydir"))), "no config.json");

  const std::string out = d.file("out.gguf");
  auto no_output = [&] {
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out + ".tmp"));
  };
  expect_clean_failure(testing::run_kvsieve("convert " + q(d.file("trunc.gguf")) + " -o " + q(out)), "truncated");
  no_output();
  expect_clean_failure(testing::run_kvsieve("convert --llama2c " + q(d.file("junk.bin")) + " -o " + q(out)),
                       "llama2.c");
  no_output();
  expect_clean_failure(testing::run_kvsieve("convert " + q(d.file("good.gguf")) + " --type q9 -o " + q(out)),
                       "unknown --type 'q9'");
  no_output();
  expect_clean_failure(testing::run_kvsieve("convert -o " + q(out)), "exactly one");
  no_output();
  // A truncated shard inside a folder.
  const std::string st = testing::read_file(d.file("hf/model.safetensors"));
  testing::write_file(d.file("hf/model.safetensors"), st.substr(0, st.size() - 100));
  expect_clean_failure(testing::run_kvsieve("convert " + q(d.file("hf")) + " -o " + q(out)), "model.safetensors");
  no_output();
  // Converting onto the input is refused and the input survives.
  expect_clean_failure(
      testing::run_kvsieve("convert " + q(d.file("good.gguf")) + " -o " + q(d.file("good.gguf"))), "is the input");
  EXPECT_EQ(testing::read_file(d.file("good.gguf")), good);
  // A missing option value is a usage error, not a crash.
  const auto usage = testing::run_kvsieve("convert " + q(d.file("good.gguf")) + " -o");
  EXPECT_NE(usage.exit_code, 0);
  EXPECT_LT(usage.exit_code, 128);
}

TEST(BadInputIo, CliConvertAndInspectWork) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  KVSIEVE_REQUIRE_SHARED("stories260K/tok512.bin");
  TempDir d;
  const std::string data = testing::shared_data() + "/stories260K/";
  const std::string out = d.file("s.gguf");
  const auto c = testing::run_kvsieve("convert --llama2c " + q(data + "stories260K.bin") + " --tokenizer " +
                                      q(data + "tok512.bin") + " -o " + q(out) + " --type q8_0");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("blk.0.ffn_down.weight: row length 172"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("wrote"), std::string::npos) << c.err;
  const auto i = testing::run_kvsieve("inspect " + q(out));
  ASSERT_EQ(i.exit_code, 0) << i.err;
  for (const char* s : {"format:          gguf", "architecture:    llama", "Q8_0", "blk.0.attn_q.weight",
                        "bos:           1 '<s>'", "tokens:        512"})
    EXPECT_NE(i.out.find(s), std::string::npos) << s << "\n" << i.out;
  EXPECT_EQ(i.out.find("blk.3.attn_q.weight"), std::string::npos);  // only layer 0 by default
  const auto all = testing::run_kvsieve("inspect --tensors " + q(out));
  EXPECT_NE(all.out.find("blk.3.attn_q.weight"), std::string::npos);
}

}  // namespace
}  // namespace kvsieve
