// safetensors reader/writer: round trip, and every kind of broken file gives an Error.
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_io_util.h"
#include "test_util.h"

namespace kvsieve {
namespace {

using testing::TempDir;

// A file from a header object and a data buffer, written byte by byte (not by
// SafetensorsWriter), so the reader is tested against the format itself.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + data;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Safetensors, ReadsAFileWrittenByHand) {
  TempDir d;
  // Two tensors: F32 [2, 2] then BF16 [3].
  float a[4] = {1.0f, -2.0f, 3.5f, 0.25f};
  uint16_t b[3] = {0x3f80, 0xc000, 0x4040};  // 1, -2, 3 in bf16
  std::string data(reinterpret_cast<const char*>(a), 16);
  data += std::string(reinterpret_cast<const char*>(b), 6);
  const std::string header =
      R"({"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
      R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}})";
  testing::write_file(d.file("x.safetensors"), raw_file(header, data));
  SafetensorsFile f(d.file("x.safetensors"));
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a");  // sorted by offset
  const TensorView* ta = f.tensor("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->type, DType::F32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(std::memcmp(ta->data, a, 16), 0);
  const TensorView* tb = f.tensor("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->type, DType::BF16);
  EXPECT_EQ(testing::as_f32(*tb), (std::vector<float>{1.0f, -2.0f, 3.0f}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.tensor("c"), nullptr);
}

TEST(Safetensors, WriterRoundTrip) {
  TempDir d;
  std::vector<float> x(6);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) * 0.5f - 1.0f;
  SafetensorsWriter w;
  w.add("m.f32", DType::F32, {2, 3}, x.data());
  const auto h = testing::to_bytes(x, DType::F16);
  w.add("m.f16", DType::F16, {6}, h.data());
  w.set_metadata("who", "test");
  w.write(d.file("w.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(d.file("w.safetensors.tmp")));
  SafetensorsFile f(d.file("w.safetensors"));
  EXPECT_EQ(testing::as_f32(*f.tensor("m.f32")), x);
  EXPECT_EQ(testing::as_f32(*f.tensor("m.f16")), x);  // these values are exact in f16
  EXPECT_EQ(f.tensor("m.f16")->shape, (std::vector<int64_t>{6}));
  EXPECT_EQ(f.metadata().at("who"), "test");
  // Header padded so the data starts 8-byte aligned, as the reference writer does.
  const std::string bytes = testing::read_file(d.file("w.safetensors"));
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_THROW(w.add("q", DType::Q8_0, {32}, x.data()), Error);
  EXPECT_THROW(w.add("m.f32", DType::F32, {1}, x.data()), Error);
}

struct BadCase {
  const char* what;
  std::string bytes;
  const char* expect;  // substring of the message
};

TEST(Safetensors, BadFilesGiveClearErrors) {
  const std::string data(16, '\0');
  const std::string ok_hdr = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  std::string huge_len(8, '\0');
  const uint64_t big = uint64_t(1) << 62;
  std::memcpy(huge_len.data(), &big, 8);
  std::vector<BadCase> cases = {
      {"empty", "", "truncated"},
      {"short", "abc", "truncated"},
      {"header length beyond file", huge_len + "{}", "exceeds"},
      {"not json", raw_file("{not json", data), "not valid JSON"},
      {"not an object", raw_file("[1,2,3]", data), "JSON object"},
      {"truncated data", raw_file(ok_hdr, data.substr(0, 10)), "truncated"},
      {"unsupported dtype", raw_file(R"({"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data), "I64"},
      {"unknown dtype", raw_file(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,16]}})", data), "unknown dtype"},
      {"size mismatch", raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data), "needs 12 bytes"},
      {"reversed offsets", raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", data), "wrong order"},
      {"negative dim", raw_file(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data), "bad dimension"},
      {"absurd dim", raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data), "absurd"},
      {"missing offsets", raw_file(R"({"a":{"dtype":"F32","shape":[4]}})", data), "data_offsets"},
      {"overlap", raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", data), "overlap"},
      {"metadata not strings", raw_file(R"({"__metadata__":{"x":1}})", ""), "__metadata__"},
  };
  TempDir d;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string p = d.file("bad.safetensors");
    testing::write_file(p, c.bytes);
    const std::string msg = error_of([&] { SafetensorsFile f(p); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_NE(msg.find(p), std::string::npos) << "message should name the file: " << msg;
  }
}

}  // namespace
}  // namespace kvsieve
