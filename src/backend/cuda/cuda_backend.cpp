// The CUDA device: one backend is one stream on GPU 0, with its own cuBLAS
// handle, stream-ordered allocations and a staging buffer for the small host
// arrays ops take (positions, row counts, offsets). Weights are read from
// their device copies (cuda_weights.h). Kernels are in cuda_*.cu.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_blas.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_kernels.h"
#include "backend/cuda/cuda_weights.h"
#include "backend/host_access.h"
#include "core/adakv_split.h"
#include "core/error.h"
#include "core/select.h"

namespace kvsieve {
namespace {

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    fail("CUDA: {} failed: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

void cublas_check(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {} failed (status {})", what, int(st));
}

int reduce_code(Reduce r) { return r == Reduce::kSum ? 0 : r == Reduce::kMean ? 1 : 2; }

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(GpuMath math) : math_(math) {
    cuda_check(cudaSetDevice(0), "cudaSetDevice");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cublas_check(cuda::blas().create(&blas_), "cublasCreate");
    cublas_check(cuda::blas().set_stream(blas_, stream_), "cublasSetStream");
    // Tensor cores for the 16-bit products; the f32 ones ask for
    // CUBLAS_COMPUTE_32F_PEDANTIC themselves (no TF32: the exact path is
    // checked against the CPU at 1e-4).
    cublas_check(cuda::blas().set_math_mode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    for (auto* a : {&scratch_, &dequant_, &probe_scratch_}) a->bind(*this);
    for (auto* a : {&half_x_, &half_w_}) a->bind(*this);
    stage_.bind(*this);
    cuda_check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    // Without pinned memory, uploads of small arrays may wait (see upload).
    if (cudaMallocHost(reinterpret_cast<void**>(&pinned_), kPinnedBytes) != cudaSuccess) {
      cudaGetLastError();
      pinned_ = nullptr;
    }
  }
  ~CudaBackend() override {
    for (auto* a : {&scratch_, &dequant_, &probe_scratch_}) a->resize(0);
    for (auto* a : {&half_x_, &half_w_}) a->resize(0);
    stage_.resize(0);
    cudaStreamSynchronize(stream_);
    if (pinned_) cudaFreeHost(pinned_);
    cudaEventDestroy(done_);
    for (auto& [p, bytes] : sizes_) cudaFree(p);  // what the backend's users did not release
    sizes_.clear();
    cuda::blas().destroy(blas_);
    cudaStreamDestroy(stream_);
  }

  DeviceKind kind() const override { return DeviceKind::kCuda; }
  std::string describe() const override {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    return fmt::format("cuda ({}, {:.0f} GiB, {} math)", prop.name,
                       double(prop.totalGlobalMem) / (1 << 30), gpu_math_name(math_));
  }
  ThreadPool* host_pool() override { return nullptr; }

  // ---- memory
  bool host_memory() const override { return false; }
  void* allocate(size_t bytes) override {
    void* p = nullptr;
    const size_t rounded = std::max<size_t>((bytes + 255) / 256 * 256, 256);
    const cudaError_t e = cudaMallocAsync(&p, rounded, stream_);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear it
      fail("CUDA: out of device memory: could not allocate {} bytes ({} in use by this session)",
           rounded, in_use_);
    }
    sizes_[p] = rounded;
    in_use_ += rounded;
    peak_ = std::max(peak_, in_use_);
    return p;
  }
  void release(void* p) noexcept override {
    if (!p) return;
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return;
    in_use_ -= it->second;
    sizes_.erase(it);
    cudaFreeAsync(p, stream_);
  }
  // Small arrays (positions, counts, offsets: a few per layer and token in
  // decode) go through a pinned ring: from pageable memory cudaMemcpyAsync
  // may wait for the stream to drain, which would leave the GPU idle between
  // the ops of a decode step. The ring starts over once the stream has
  // drained (synchronize), never while a copy still reads it. Either way the
  // caller may reuse src at once.
  void upload(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    if (!pinned_ || bytes > kPinnedBytes / 4) {
      cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
      return;
    }
    size_t at = (pinned_at_ + 255) / 256 * 256;
    if (at + bytes > kPinnedBytes) {
      synchronize();
      at = 0;
    }
    std::memcpy(pinned_ + at, src, bytes);
    cuda_check(cudaMemcpyAsync(dst, pinned_ + at, bytes, cudaMemcpyHostToDevice, stream_),
               "upload");
    pinned_at_ = at + bytes;
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    synchronize();
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (!bytes || dst == src) return;
    const auto* d = static_cast<const uint8_t*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    if (d < s + bytes && s < d + bytes) {  // overlapping: through a temporary (memmove's meaning)
      void* tmp = allocate(bytes);
      cuda_check(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
      cuda_check(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
      release(tmp);
      return;
    }
    cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void zero(void* dst, size_t bytes) override {
    if (bytes) cuda_check(cudaMemsetAsync(dst, 0, bytes, stream_), "zero");
  }
  void synchronize() override {
    cuda_check(cudaStreamSynchronize(stream_), "synchronize");
    pinned_at_ = 0;  // no copy reads the pinned ring any more
  }
  void wait_for(Backend& other) override {
    auto* o = dynamic_cast<CudaBackend*>(&other);
    check(o != nullptr, "CUDA: cannot wait for a {} backend", device_name(other.kind()));
    if (o == this) return;
    cuda_check(cudaEventRecord(o->done_, o->stream_), "cudaEventRecord");
    cuda_check(cudaStreamWaitEvent(stream_, o->done_, 0), "cudaStreamWaitEvent");
  }
  void preload(const void* host, size_t bytes) override { cuda::device_weights(host, bytes); }
  size_t bytes_in_use() const override { return in_use_; }
  size_t peak_bytes() const override { return peak_; }
  void reset_peak() override { peak_ = in_use_; }

  // ---- the forward pass
  void embed(const TensorView& table, const int32_t* ids, int64_t n, float* out) override {
    Staging st(*this);
    const size_t h_ids = st.add(ids, n);
    st.send();
    cuda::embed(table.type, weights(table), dtype_row_bytes(table.type, table.cols()),
                st.at<int32_t>(h_ids), n,
                table.cols(), out, stream_);
    launched("embed");
  }
  void matmul(const TensorView& W, const float* x, int64_t n, float* y,
              const float* bias) override {
    const MatmulOut o{&W, y, bias};
    matmuls({&o, 1}, x, n);
  }
  void matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n) override {
    const int n_outs = int(outs.size());
    if (n_outs <= 0) return;
    const int64_t cols = outs[0].W->cols();
    for (int i = 0; i < n_outs; ++i) {
      const TensorView& W = *outs[i].W;
      check(W.cols() == cols, "matmuls: tensor '{}' has {} columns, x has {}", W.name,
            W.cols(), cols);
      check(W.nbytes == size_t(W.rows()) * dtype_row_bytes(W.type, cols),
            "matmul: tensor '{}' holds {} bytes, its shape needs {}", W.name, W.nbytes,
            size_t(W.rows()) * dtype_row_bytes(W.type, cols));
    }
    if (n <= 8) {
      matvecs(x, n, outs.data(), n_outs);
      return;
    }
    // Row-major y[n, rows] = x[n, cols] · Wᵀ is column-major yᵀ = W·xᵀ.
    int rounded = -1;  // what half_x_ holds: -1 nothing, 0 f16, 1 bf16
    for (int i = 0; i < n_outs; ++i) {
      const TensorView& W = *outs[i].W;
      const int64_t rows = W.rows();
      const void* w = weights(W);
      float* y = outs[i].y;
      const float* b = device_bias(outs[i].bias, rows);
      const float one = 1.0f, zero = 0.0f;
      if (math_ == GpuMath::kTensor && W.type != DType::F32) {
        // BF16 weights meet bf16 activations. F16 weights, and quantized ones
        // decoded to f16 (closer to their values than bf16: a Q8_0 weight
        // d·q needs 19 bits, f16 keeps 11, bf16 8), meet f16 activations, as
        // in llama.cpp's cuBLAS path (their range is f16's: to 65504).
        // Products exact in f32, sums in f32. x is rounded once for all the
        // products that want the same type.
        const bool bf16 = W.type == DType::BF16;
        const cudaDataType_t dt = bf16 ? CUDA_R_16BF : CUDA_R_16F;
        if (rounded != int(bf16)) {
          half_x_.reserve(n * cols);
          cuda::round_to_half(x, n * cols, half_x_.data(), bf16, stream_);
          launched("round activations");
          rounded = int(bf16);
        }
        const void* wh = w;
        if (!bf16 && W.type != DType::F16) {
          half_w_.reserve(rows * cols);
          cuda::dequantize_f16(W.type, w, rows, cols, half_w_.data(), stream_);
          launched("dequantize to f16");
          wh = half_w_.data();
        }
        cublas_check(cuda::blas().gemm_ex(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(n),
                                          int(cols), &one, wh, dt, int(cols), half_x_.data(), dt,
                                          int(cols), &zero, y, CUDA_R_32F, int(rows),
                                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx (16-bit)");
      } else {
        const void* wf = w;
        if (W.type != DType::F32) {
          dequant_.reserve(rows * cols);
          cuda::dequantize(W.type, w, rows, cols, dequant_.data(), stream_);
          launched("dequantize");
          wf = dequant_.data();
        }
        cublas_check(cuda::blas().gemm_ex(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), int(n),
                                          int(cols), &one, wf, CUDA_R_32F, int(cols), x,
                                          CUDA_R_32F, int(cols), &zero, y, CUDA_R_32F, int(rows),
                                          CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT),
                     "cublasGemmEx (f32)");
      }
      if (b) {
        cuda::add_bias(y, b, n, rows, stream_);
        launched("add_bias");
      }
    }
  }
  void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim,
               float eps) override {
    cuda::rmsnorm(x, static_cast<const float*>(cuda::device_weights(w, size_t(dim) * 4)), out,
                  rows, dim, eps, stream_);
    launched("rmsnorm");
  }
  void add_rmsnorm(float* x, const float* d, const float* w, float* out, int64_t rows,
                   int64_t dim, float eps) override {
    cuda::add_rmsnorm(x, d, static_cast<const float*>(cuda::device_weights(w, size_t(dim) * 4)),
                      out, rows, dim, eps, stream_);
    launched("add_rmsnorm");
  }
  void rope_table(const RopeFreqs& freqs, const int32_t* pos, int64_t n, float* cos,
                  float* sin) override {
    // The angles as on the CPU (core/rope.h: f32 angle, cos/sin in double).
    const int64_t half = freqs.head_dim / 2;
    host_cos_.resize(size_t(n * half));
    host_sin_.resize(size_t(n * half));
    for (int64_t t = 0; t < n; ++t)
      rope_cos_sin(freqs, pos[t], host_cos_.data() + t * half, host_sin_.data() + t * half);
    upload(cos, host_cos_.data(), host_cos_.size() * sizeof(float));
    upload(sin, host_sin_.data(), host_sin_.size() * sizeof(float));
  }
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
            const float* sin, RopeStyle style) override {
    cuda::rope(x, n, n_heads, head_dim, cos, sin, style == RopeStyle::kNeox, stream_);
    launched("rope");
  }
  void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
    cuda::swiglu(gate, up, out, n, stream_);
    launched("swiglu");
  }
  void add(const float* a, const float* b, float* out, int64_t n) override {
    cuda::add(a, b, out, n, stream_);
    launched("add");
  }
  void scale(float* x, float s, int64_t n) override {
    cuda::scale(x, s, n, stream_);
    launched("scale");
  }
  void attention(const AttentionArgs& a) override {
    check(a.kv.head_dim <= 256, "CUDA attention: head_dim {} > 256 is not supported",
          a.kv.head_dim);
    check(a.n_head % a.kv.n_stored == 0, "attention: {} query heads over {} stored heads",
          a.n_head, a.kv.n_stored);
    Staging st(*this);
    const size_t h_pos = add_positions(st, a.q_pos, a.n);
    cuda::KvDev kv = kv_dev(a.kv, st, true);
    const int32_t* q_pos = positions(kv, st, h_pos, a.q_pos, a.n);
    const int64_t items = a.n * a.n_head, hd = a.kv.head_dim;
    // A prefill chunk over a 16-bit cache goes to the tensor cores; decode
    // steps (a few queries) split each head's rows over many warps instead.
    const bool flash = math_ == GpuMath::kTensor && a.n >= kFlashMinQueries &&
                       cuda::flash_attention_fits(a.kv.type, hd);
    const int64_t splits = flash ? cuda::flash_splits(a.n, a.n_head, max_rows(a.kv))
                                 : cuda::attention_splits(kv, a.n, a.n_head, max_rows(a.kv));
    const int64_t parts = flash && splits == 1 ? 0 : splits;  // partial states kept
    scratch_.reserve(items * parts * (hd + 2) + (a.colsum ? 2 * items : 0));
    float* m = a.colsum ? scratch_.data() + items * parts * (hd + 2) : nullptr;
    float* l = m ? m + items : nullptr;
    if (flash) {
      cuda::flash_attention(kv, a.q, q_pos, a.n, a.n_head, a.out, m, l, splits, scratch_.data(),
                            stream_);
      launched("flash attention");
    } else {
      cuda::attention(kv, a.q, q_pos, a.n, a.n_head, a.out, m, l, splits, scratch_.data(),
                      stream_);
      launched("attention");
    }
    if (a.colsum) {
      cuda::attention_colsums(kv, a.q, q_pos, a.n, a.n_head, m, l, a.colsum, a.colcount, a.ld,
                              stream_);
      launched("attention column sums");
    }
  }

  // ---- the KV store and the eviction pipeline
  void probe_attention(const ProbeAttentionArgs& a) override {
    check(a.n_head % a.kv.n_stored == 0, "probe attention: {} query heads over {} stored heads",
          a.n_head, a.kv.n_stored);
    check(a.kv.head_dim <= 256, "CUDA probe attention: head_dim {} > 256 is not supported",
          a.kv.head_dim);
    if (a.n_probe <= 0) {
      if (a.out) zero(a.out, size_t(a.n_head * a.ld) * sizeof(float));
      return;
    }
    Staging st(*this);
    const size_t h_pos = st.add(a.q_pos, a.n_probe);
    const cuda::KvDev kv = kv_dev(a.kv, st, false);  // probe_reduce reads kv.rows
    const int32_t* q_pos = st.at<int32_t>(h_pos);
    const int64_t need = max_rows(a.kv) + a.n_probe;
    float* p = a.probs;
    int64_t p_ld = a.probs_ld;
    if (!p) {
      p_ld = need;
      scratch_.reserve(a.n_probe * a.n_head * p_ld);
      p = scratch_.data();
    }
    check(p_ld >= need, "probe attention: probs_ld {} < {} rows + {} probes", p_ld, need - a.n_probe,
          a.n_probe);
    // Key tiles shared by 64 query rows where the head size allows
    // (KVSIEVE_PROBE=rows: one block per probe and head, to compare).
    const char* env = std::getenv("KVSIEVE_PROBE");
    if (cuda::probe_tiles_apply(kv) && !(env && std::string(env) == "rows")) {
      probe_scratch_.reserve(cuda::probe_tiles_scratch(a.n_probe, a.n_head, need - a.n_probe));
      cuda::probe_tiles(kv, a.q, q_pos, a.n_probe, a.n_head, a.own_k, p, p_ld, a.probs != nullptr,
                        a.out, a.ld, reduce_code(a.reduce), need - a.n_probe, probe_scratch_.data(),
                        stream_);
      launched("probe attention (tiles)");
      return;
    }
    cuda::probe_probs(kv, a.q, q_pos, a.n_probe, a.n_head, a.own_k, p, p_ld, stream_);
    launched("probe attention");
    if (a.out) {
      cuda::probe_reduce(p, a.n_probe, a.n_head, p_ld, kv.rows, a.n_head / a.kv.n_stored,
                         reduce_code(a.reduce), a.out, a.ld, stream_);
      launched("probe reduce");
    }
  }
  void kv_append(const KvLayerView& kv, const float* k, const float* v, const int32_t* pos,
                 int64_t n, int64_t n_head_kv) override {
    Staging st(*this);
    const size_t h_pos = add_positions(st, pos, n);
    cuda::KvDev d = kv_dev(kv, st, true);
    const int32_t* d_pos = positions(d, st, h_pos, pos, n);
    cuda::kv_append(d, kv.k, kv.v, k, v, d_pos, n, n_head_kv, stream_);
    launched("kv append");
  }
  void gather(const GatherArgs& a) override {
    const int64_t n_sel = a.n_heads / a.sel_div;
    int64_t most = 0;
    for (int64_t s = 0; s < n_sel; ++s) most = std::max(most, a.off[s + 1] - a.off[s]);
    Staging st(*this);
    const size_t h_off = st.add(a.off, n_sel + 1);
    st.send();
    const int64_t* off = st.at<int64_t>(h_off);
    cuda::gather(a.src, a.dst, a.n_heads, a.src_div, a.sel_div, a.ld_src, a.ld_dst, a.row_bytes,
                 a.idx, off, most, stream_);
    launched("gather");
  }
  void read_keys(const KvLayerView& kv, int64_t first, int64_t n, float* out) override {
    Staging st(*this);
    const cuda::KvDev d = kv_dev(kv, st, true);
    cuda::read_keys(d, first, n, out, stream_);
    launched("read keys");
  }
  void key_norms(const KvLayerView& kv, float* out, int64_t ld) override {
    Staging st(*this);
    const cuda::KvDev d = kv_dev(kv, st, true);
    cuda::key_norms(d, out, ld, stream_);
    launched("key norms");
  }
  void pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
            const int64_t* rows, int64_t kernel, PoolKind kind) override {
    check(kernel >= 1 && kernel % 2 == 1, "pooling kernel must be odd, got {}", kernel);
    int64_t most = 0;
    for (int64_t h = 0; h < n_heads; ++h) most = std::max(most, rows[h]);
    Staging st(*this);
    const size_t h_len = st.add(len, n_heads), h_rows = st.add(rows, n_heads);
    st.send();
    const int64_t* d_len = st.at<int64_t>(h_len);
    const int64_t* d_rows = st.at<int64_t>(h_rows);
    cuda::pool(in, out, n_heads, ld, d_len, d_rows, kernel,
               kind == PoolKind::kNone ? 0 : kind == PoolKind::kMax ? 1 : 2, most, stream_);
    launched("pool");
  }
  void reduce_groups(const float* in, float* out, int64_t n_out, int64_t group, int64_t ld,
                     const int64_t* rows, Reduce how) override {
    int64_t most = 0;
    for (int64_t g = 0; g < n_out; ++g) most = std::max(most, rows[g]);
    Staging st(*this);
    const size_t h_rows = st.add(rows, n_out);
    st.send();
    const int64_t* d_rows = st.at<int64_t>(h_rows);
    cuda::reduce_groups(in, out, n_out, group, ld, d_rows, reduce_code(how), most, stream_);
    launched("reduce groups");
  }
  // The selection runs on the GPU (cuda_select.cu) with the CPU's rule; the
  // budgets are checked here first, with the CPU's message.
  void select_rows(const float* scores, int64_t n_heads, int64_t ld, const int64_t* rows,
                   const int64_t* budget, int64_t sinks, int64_t window, int64_t* out,
                   const int64_t* off) override {
    const Protect prot{sinks, window};
    for (int64_t h = 0; h < n_heads; ++h) {
      check(budget[h] >= 0, "budget must not be negative");
      if (budget[h] < rows[h])
        check(protected_count(rows[h], prot) <= budget[h],
              "a budget of {} tokens cannot hold the {} protected ones (sinks {} + window {})",
              budget[h], protected_count(rows[h], prot), sinks, window);
      check(off[h + 1] - off[h] == std::min(budget[h], rows[h]),
            "select: {} rows kept, {} expected", off[h + 1] - off[h], std::min(budget[h], rows[h]));
    }
    Staging st(*this);
    const size_t h_rows = st.add(rows, n_heads), h_budget = st.add(budget, n_heads),
                 h_off = st.add(off, n_heads + 1);
    st.send();
    cuda::SelectHeads heads;
    heads.rows = st.at<int64_t>(h_rows);
    heads.budget = st.at<int64_t>(h_budget);
    heads.off = st.at<int64_t>(h_off);
    cuda::select_rows(scores, n_heads, ld, heads, sinks, window, out, stream_);
    launched("select rows");
  }

  void adakv_split(std::span<const AdaKvLayer> layers, int64_t n_heads, int64_t sinks,
                   int64_t window, double floor, const std::string& variant,
                   int64_t* out) override {
    const int64_t L = int64_t(layers.size());
    if (L == 0) return;
    if (variant != "kvpress" || n_heads > cuda::kMaxAdaKvHeads) {
      // KVCache-Factory's rule, or layers too wide for one block: the host's.
      std::vector<int64_t> all;
      for (const AdaKvLayer& l : layers) {
        const HostRead<float> host(*this, l.scores, n_heads * l.ld);
        const std::vector<int64_t> per_head = kvsieve::adakv_split(
            host.data(), l.ld, l.rows, n_heads, l.keep, Protect{sinks, window}, floor, variant);
        all.insert(all.end(), per_head.begin(), per_head.end());
      }
      upload(out, all.data(), all.size() * sizeof(int64_t));
      return;
    }
    std::vector<const float*> scores;
    std::vector<int64_t> ld, keep, safe, rows;
    for (const AdaKvLayer& l : layers) {
      for (int64_t h = 0; h < n_heads; ++h)
        if (l.keep < l.rows[h])
          check(protected_count(l.rows[h], Protect{sinks, window}) <= l.keep,
                "a budget of {} tokens cannot hold the {} protected ones", l.keep,
                protected_count(l.rows[h], Protect{sinks, window}));
      scores.push_back(l.scores);
      ld.push_back(l.ld);
      keep.push_back(l.keep);
      safe.push_back(int64_t(double(l.keep) * floor));
      rows.insert(rows.end(), l.rows, l.rows + n_heads);
    }
    Staging st(*this);
    const size_t h_scores = st.add(scores.data(), L), h_ld = st.add(ld.data(), L),
                 h_keep = st.add(keep.data(), L), h_safe = st.add(safe.data(), L),
                 h_rows = st.add(rows.data(), L * n_heads);
    st.send();
    cuda::AdaKvLayers d;
    d.scores = st.at<const float*>(h_scores);
    d.ld = st.at<int64_t>(h_ld);
    d.keep = st.at<int64_t>(h_keep);
    d.safe = st.at<int64_t>(h_safe);
    d.rows = st.at<int64_t>(h_rows);
    cuda::adakv_split(d, L, n_heads, sinks, window, out, stream_);
    launched("Ada-KV split");
  }

 private:
  // Small host arrays gathered into one upload to a device buffer of this
  // backend: add() each (it returns a handle), send(), then at() gives the
  // device pointers. Ops on one stream run in order, so the next op's upload
  // cannot overwrite what a kernel still reads.
  class Staging {
   public:
    explicit Staging(CudaBackend& be) : be_(be) {}
    template <typename T>
    size_t add(const T* host, int64_t n) {
      const size_t at = (host_.size() + 15) / 16 * 16;
      host_.resize(at + size_t(n) * sizeof(T));
      if (n > 0) std::memcpy(host_.data() + at, host, size_t(n) * sizeof(T));
      return at;
    }
    void send() {
      if (host_.empty()) return;
      be_.stage_.reserve(int64_t(host_.size()));
      be_.upload(be_.stage_.data(), host_.data(), host_.size());
    }
    template <typename T>
    const T* at(size_t handle) const {
      return reinterpret_cast<const T*>(be_.stage_.data() + handle);
    }

   private:
    CudaBackend& be_;
    std::vector<uint8_t> host_;
  };
  friend class Staging;

  const void* weights(const TensorView& t) { return cuda::device_weights(t.data, t.nbytes); }
  const float* device_bias(const float* bias, int64_t rows) {
    return bias ? static_cast<const float*>(cuda::device_weights(bias, size_t(rows) * 4)) : nullptr;
  }

  // Decode's products (n <= 8 rows of x): the 16-bit weights of one type
  // in one launch, the others one by one.
  void matvecs(const float* x, int64_t n, const MatmulOut* outs, int n_outs) {
    const int64_t cols = outs[0].W->cols();
    const DType t0 = outs[0].W->type;
    if (n_outs <= cuda::kMaxJobs) {
      // Each weight's device copy is looked up once (a locked map).
      cuda::Matvec16Jobs jobs;
      jobs.n = n_outs;
      bool fuse = true;
      for (int i = 0; i < n_outs && fuse; ++i) {
        jobs.w[i] = weights(*outs[i].W);
        fuse = outs[i].W->type == t0 && cuda::matvec16_fits(t0, jobs.w[i], cols, x);
      }
      for (int i = 0; i < n_outs && fuse; ++i) {
        jobs.y[i] = outs[i].y;
        jobs.bias[i] = device_bias(outs[i].bias, outs[i].W->rows());
        jobs.first[i + 1] = jobs.first[i] + outs[i].W->rows();
      }
      if (fuse) {
        cuda::matvec16_many(t0 == DType::BF16, jobs, cols, x, n, stream_);
        launched("matvec");
        return;
      }
    }
    for (int i = 0; i < n_outs; ++i) {
      const TensorView& W = *outs[i].W;
      cuda::matvec(W.type, weights(W), W.rows(), cols, x, n, outs[i].y,
                   device_bias(outs[i].bias, W.rows()), stream_);
      launched("matvec");
    }
  }


  void launched(const char* op) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) fail("CUDA: {} kernel failed to launch: {}", op, cudaGetErrorString(e));
  }

  static constexpr int64_t kFlashMinQueries = 16;

  static int64_t max_rows(const KvLayerView& kv) {
    int64_t m = 0;
    for (int64_t s = 0; s < kv.n_stored; ++s) m = std::max(m, kv.rows[s]);
    return m;
  }

  // Positions (host [n]) for a kernel: a decode step's few ride in the
  // kernel parameters (KvDev::q_pos_inline, and the kernel gets null), more
  // are staged. add_positions before kv_dev sends st; positions after.
  static constexpr size_t kInline = ~size_t(0);
  static size_t add_positions(Staging& st, const int32_t* pos, int64_t n) {
    return n <= cuda::KvDev::kInlineQueries ? kInline : st.add(pos, n);
  }
  static const int32_t* positions(cuda::KvDev& d, const Staging& st, size_t handle,
                                  const int32_t* pos, int64_t n) {
    if (handle != kInline) return st.at<int32_t>(handle);
    std::copy(pos, pos + n, d.q_pos_inline);
    return nullptr;
  }

  // The store's layer as the kernels see it. Its row counts (host) go inline
  // where allowed and few enough, else they are staged. Sends st: add
  // whatever else the op stages before.
  static cuda::KvDev kv_dev(const KvLayerView& kv, Staging& st, bool allow_inline) {
    cuda::KvDev d;
    if (allow_inline && kv.n_stored <= cuda::KvDev::kInlineHeads) {
      std::copy(kv.rows, kv.rows + kv.n_stored, d.rows_inline);
      st.send();
    } else {
      const size_t h_rows = st.add(kv.rows, kv.n_stored);
      st.send();
      d.rows = st.at<int64_t>(h_rows);
    }
    d.type = kv.type;
    d.k = kv.k;
    d.v = kv.v;
    d.pos = kv.pos;
    d.n_stored = kv.n_stored;
    d.capacity = kv.capacity;
    d.head_dim = kv.head_dim;
    d.repeat = kv.repeat;
    return d;
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::unordered_map<void*, size_t> sizes_;
  size_t in_use_ = 0, peak_ = 0;
  DeviceArray<uint8_t> stage_;
  GpuMath math_;
  DeviceArray<float> scratch_, dequant_;
  DeviceArray<float> probe_scratch_;  // tiled probes' maxima and softmax sums
  DeviceArray<uint16_t> half_x_, half_w_;  // [n, cols] activations, [rows, cols] weights in 16 bits
  std::vector<float> host_cos_, host_sin_;
  static constexpr size_t kPinnedBytes = size_t(4) << 20;
  cudaEvent_t done_ = nullptr;  // recorded on stream_ when another backend waits for it
  uint8_t* pinned_ = nullptr;  // [kPinnedBytes] page-locked host memory
  size_t pinned_at_ = 0;       // first free byte of pinned_
};

}  // namespace

bool cuda_built() { return true; }
void cuda_forget_weights(const void* host) { cuda::forget_weights(host); }

bool cuda_device_present() {
  static const bool present = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) cudaGetLastError();
    return e == cudaSuccess && n > 0;
  }();
  return present;
}

std::unique_ptr<Backend> make_cuda_backend(GpuMath math) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    fail("--device cuda: no usable GPU ({})",
         e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports none");
  return std::make_unique<CudaBackend>(math);
}

}  // namespace kvsieve
