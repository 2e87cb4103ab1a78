// The CUDA device against the CPU device: weight products of every type,
// logits of every fixture model, keep sets and generated ids of every method,
// and stories260K's greedy text against llama2.c's. Skips with a message on
// a machine without a GPU or a build without CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "kvsieve/kvsieve.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

#define KVSIEVE_REQUIRE_GPU()                                                                  \
  do {                                                                                         \
    if (!::kvsieve::cuda_available())                                                          \
      GTEST_SKIP() << "no GPU here (or this build has no CUDA): the CUDA device is not tested"; \
  } while (0)

std::string fixture(const std::string& name) { return fixtures() + "/hf/" + name; }

// max |a - b| / max |b|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    scale = std::max(scale, double(std::fabs(b[i])));
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  }
  return scale > 0 ? worst / scale : worst;
}

// y = x · Wᵀ on a backend, everything uploaded and downloaded.
std::vector<float> product(Backend& be, const TensorView& W, const std::vector<float>& x,
                           int64_t n, const std::vector<float>* bias) {
  DeviceArray<float> dx(be, int64_t(x.size())), dy(be, n * W.rows());
  be.upload(dx.data(), x.data(), x.size() * sizeof(float));
  be.matmul(W, dx.data(), n, dy.data(), bias ? bias->data() : nullptr);
  std::vector<float> y(size_t(n * W.rows()));
  be.download(y.data(), dy.data(), y.size() * sizeof(float));
  return y;
}

TEST(Cuda, WeightProductsOfEveryTypeMatchTheCpu) {
  KVSIEVE_REQUIRE_GPU();
  auto cpu = make_backend(DeviceKind::kCpu, 2);
  auto gpu = make_backend(DeviceKind::kCuda);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 96, cols = 160;
  std::vector<float> wf(static_cast<size_t>(rows * cols));
  std::vector<float> bias(static_cast<size_t>(rows));
  for (float& v : wf) v = nd(rng);
  for (float& v : bias) v = nd(rng);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> raw(size_t(rows) * dtype_row_bytes(t, cols));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, wf.data() + r * cols, raw.data() + size_t(r) * dtype_row_bytes(t, cols), cols);
    TensorView W;
    W.name = "w";
    W.type = t;
    W.shape = {rows, cols};
    W.data = raw.data();
    W.nbytes = raw.size();
    for (int64_t n : {1, 3, 8, 9, 40}) {
      std::vector<float> x(size_t(n * cols));
      for (float& v : x) v = nd(rng);
      const auto want = product(*cpu, W, x, n, &bias);
      const auto got = product(*gpu, W, x, n, &bias);
      EXPECT_LE(rel_diff(got, want), 1e-5) << dtype_name(t) << " n=" << n;
    }
    forget_device_weights(raw.data());  // the next type's buffer may take its address
  }
  forget_device_weights(bias.data());
}

// Every logit of a fixture's prompt (prefilled in chunks of 64: the cuBLAS
// path), then 8 greedy tokens (the matrix-vector path), on each device.
struct DeviceRun {
  std::vector<float> logits, last;
  std::vector<int32_t> ids;
};

DeviceRun run_on(const std::string& model, const std::string& device, const std::string& kv_type) {
  EngineOptions eo;
  eo.model = model;
  eo.device = device;
  eo.threads = 2;
  const auto engine = Engine::load(eo);
  SessionOptions so;
  so.batch = 64;
  so.kv_type = kv_type;
  auto s = engine->new_session(so);
  DeviceRun r;
  s->prefill(read_npy_ids(model + "/ids.npy"), &r.logits);
  GenerateOptions g;
  g.max_tokens = 8;
  g.stop_at_eog = false;
  r.ids = s->generate(g);
  r.last = s->logits();
  return r;
}

class CudaModels : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModels, LogitsAndGreedyIdsMatchTheCpu) {
  KVSIEVE_REQUIRE_GPU();
  const std::string model = fixture(GetParam());
  for (const std::string kv : {"f32", "bf16"}) {
    const DeviceRun cpu = run_on(model, "cpu", kv), gpu = run_on(model, "cuda", kv);
    ASSERT_EQ(gpu.logits.size(), cpu.logits.size());
    const double d = rel_diff(gpu.logits, cpu.logits), dl = rel_diff(gpu.last, cpu.last);
    std::printf("[ cuda ] %s, %s KV: prompt logits %.2e, after decoding %.2e (max |diff| / max |logit|)\n",
                GetParam().c_str(), kv.c_str(), d, dl);
    // The same f32 arithmetic in another order (and bf16 K/V rounded alike).
    EXPECT_LE(d, 1e-4) << kv;
    EXPECT_LE(dl, 1e-4) << kv;
    EXPECT_EQ(gpu.ids, cpu.ids) << kv;
  }
}

// What each method keeps and then generates, on each device.
struct Cut {
  std::string kept;
  std::vector<int32_t> ids;
};

Cut cut_on(const std::string& model, const std::string& device, const std::string& spec,
           int64_t budget) {
  EngineOptions eo;
  eo.model = model;
  eo.device = device;
  eo.threads = 2;
  const auto engine = Engine::load(eo);
  SessionOptions so;
  so.batch = 64;
  so.eviction.spec = spec;
  so.eviction.budget.tokens = budget;
  auto s = engine->new_session(so);
  const auto ids = read_npy_ids(model + "/ids.npy");
  Cut c;
  GenerateOptions g;
  g.max_tokens = 8;
  g.stop_at_eog = false;
  c.ids = s->generate(ids, {}, g, nullptr, nullptr,
                      [&](const CutReport& r) { c.kept = r.kept_json; });
  return c;
}

TEST_P(CudaModels, EveryMethodKeepsWhatTheCpuKeeps) {
  KVSIEVE_REQUIRE_GPU();
  const std::string model = fixture(GetParam());
  for (const std::string spec :
       {"streamingllm", "h2o", "snapkv", "pyramidkv", "adakv", "tova", "knorm", "laq", "laq++",
        "snapkv:pool=avg,kernel=5", "adakv:base=laq++"}) {
    const Cut cpu = cut_on(model, "cpu", spec, 40), gpu = cut_on(model, "cuda", spec, 40);
    EXPECT_FALSE(cpu.kept.empty()) << spec;
    EXPECT_EQ(gpu.kept, cpu.kept) << spec;
    EXPECT_EQ(gpu.ids, cpu.ids) << spec;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModels,
                         ::testing::Values("llama2-f32", "llama3-f32", "llama3-bf16",
                                           "mistral-f32", "mistral-bf16", "qwen2-f32",
                                           "qwen2-bf16"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

// Without a GPU (or without CUDA built in), asking for one is a clear error.
TEST(Cuda, WithoutAGpuTheCudaDeviceIsRefusedClearly) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present: nothing to refuse";
  const auto r = run_kvsieve("run -m " + fixture("llama3-f32") + " --device cuda -p hi -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.err.find("built without CUDA") != std::string::npos ||
              r.err.find("no usable GPU") != std::string::npos)
      << r.err;
  // auto falls back to the CPU.
  const auto a = run_kvsieve("run -m " + fixture("llama3-f32") + " --device auto --ids " +
                             fixture("llama3-f32") + "/ids.npy -n 1");
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.err.find("cpu ("), std::string::npos) << a.err;
}

// llama2.c's published greedy output of stories260K, generated on the GPU.
TEST(Cuda, Stories260KGreedyTextIsLlama2cs) {
  KVSIEVE_REQUIRE_GPU();
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  TempDir d;
  const std::string src = shared_data() + "/stories260K";
  auto conv = run_kvsieve("convert --llama2c " + src + "/stories260K.bin --tokenizer " + src +
                          "/tok512.bin -o " + d.file("s.gguf"));
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  const auto r = run_kvsieve("run -m " + d.file("s.gguf") + " --device cuda -p '' -n 200 --ignore-eos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, read_file(src + "/golden_run_c_t0_n200.txt") + "\n");
  EXPECT_NE(r.err.find("cuda"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvsieve::testing
