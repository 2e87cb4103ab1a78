// The CPU device: device memory is host memory, ops run on a thread pool
// with the SIMD kernels of ops.h (Highway, the best target of this CPU).
// Work inside an op is split over rows, heads or (head, token) pairs; every
// output element is computed by one thread in a fixed order, so results do
// not depend on the thread count.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/thread_pool.h"

namespace kvsieve {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(ThreadPool& pool);      // on a pool the caller owns
  explicit CpuBackend(int threads);           // on a pool of its own

  DeviceKind kind() const override { return DeviceKind::kCpu; }
  std::string describe() const override;
  ThreadPool* host_pool() override { return &pool_; }

  bool host_memory() const override { return true; }
  void* allocate(size_t bytes) override;
  void release(void* p) noexcept override;
  void upload(void* dst, const void* src, size_t bytes) override;
  void download(void* dst, const void* src, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void zero(void* dst, size_t bytes) override;
  void synchronize() override {}
  size_t bytes_in_use() const override { return in_use_.load(); }
  size_t peak_bytes() const override { return peak_.load(); }
  void reset_peak() override { peak_.store(in_use_.load()); }

  void embed(const TensorView& table, const int32_t* ids, int64_t n, float* out) override;
  void matmul(const TensorView& W, const float* x, int64_t n, float* y, const float* bias) override;
  void matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n) override;
  void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim,
               float eps) override;
  void rope_table(const RopeFreqs& freqs, const int32_t* pos, int64_t n, float* cos,
                  float* sin) override;
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
            const float* sin, RopeStyle style) override;
  void swiglu(const float* gate, const float* up, float* out, int64_t n) override;
  void add(const float* a, const float* b, float* out, int64_t n) override;
  void scale(float* x, float s, int64_t n) override;
  void attention(const AttentionArgs& a) override;

  void probe_attention(const ProbeAttentionArgs& a) override;
  void kv_append(const KvLayerView& kv, const float* k, const float* v, const int32_t* pos, int64_t n,
                 int64_t n_head_kv) override;
  void gather(const GatherArgs& a) override;
  void read_keys(const KvLayerView& kv, int64_t first, int64_t n, float* out) override;
  void key_norms(const KvLayerView& kv, float* out, int64_t ld) override;
  void pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
            const int64_t* rows, int64_t kernel, PoolKind kind) override;
  void reduce_groups(const float* in, float* out, int64_t n_out, int64_t group, int64_t ld,
                     const int64_t* rows, Reduce how) override;
  void select_rows(const float* scores, int64_t n_heads, int64_t ld, const int64_t* rows,
                   const int64_t* budget, int64_t sinks, int64_t window, int64_t* out,
                   const int64_t* off) override;
  void adakv_split(std::span<const AdaKvLayer> layers, int64_t n_heads, int64_t sinks,
                   int64_t window, double floor, const std::string& variant,
                   int64_t* out) override;

 private:
  // Per-thread scratch of at least n floats (grown before a parallel loop).
  float* scratch(int thread) { return scratch_[size_t(thread)].data(); }
  void ensure_scratch(int64_t n);

  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool& pool_;
  std::vector<std::vector<float>> scratch_;  // [threads][n]
  std::atomic<size_t> in_use_{0}, peak_{0};
};

}  // namespace kvsieve
