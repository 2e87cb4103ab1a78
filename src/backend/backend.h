// The device layer: everything the forward pass, the KV store and the eviction
// pipeline ask of a device, behind one interface. A Backend is one executor
// on one device (CPU: a thread pool; CUDA: a stream): each session owns one,
// so sessions never share scratch or queues. Model, kv and engine code call
// only this interface and never test which device they run on.
//
// Memory: pointers passed to ops are device memory of this backend unless a
// comment says "host". Buffers come from allocate() (or DeviceArray below).
// On the CPU device memory is host memory (host_memory() is true), so host
// code may read it in place; elsewhere it must download() first. Ops run in
// issue order on the backend's queue; synchronize() waits for all of them.
//
// Shapes are written outermost first, row-major: [n, n_head, head_dim] is n
// rows of n_head·head_dim floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/dtype.h"
#include "core/rope.h"
#include "core/tensor.h"

namespace kvsieve {

class ThreadPool;

enum class DeviceKind { kCpu, kCuda };
const char* device_name(DeviceKind d);  // "cpu", "cuda"
// "cpu", "cuda", or "auto": CUDA when this build has it and a GPU is present,
// else the CPU. Throws Error for any other name.
DeviceKind device_from_name(std::string_view name);
// How a GPU computes the products and attention of a prefill chunk.
//   kExact:  f32 activations everywhere, as on the CPU; results equal the
//            CPU's to f32 rounding (weights widened to f32, cuBLAS SGEMM).
//   kTensor: tensor cores. Chunks of more than 8 rows multiply 16-bit and
//            quantized weights with activations rounded to bf16 for BF16
//            weights, else to f16 (quantized weights decoded to f16), f32
//            accumulation; prefill attention over a 16-bit
//            cache rounds queries and probabilities to the cache's type.
//            F32 weights and an f32 cache stay exact. Decode (<= 8 rows)
//            is exact in both modes.
// The CPU ignores it.
enum class GpuMath { kExact, kTensor };
const char* gpu_math_name(GpuMath m);  // "exact", "tensor"
GpuMath gpu_math_from_name(std::string_view name);  // throws Error for others
// Whether this build has the CUDA device and it found a GPU.
bool cuda_available();
// Whether this build has the CUDA device compiled in (a GPU or not).
bool cuda_built_in();
// Devices keep their own copies of a model's weights, made on first use and
// found again by host address (ops take weights as host TensorViews and
// pointers). Whoever frees host memory that held weights calls this first
// (Model's destructor does), so that a later weight at the same address is
// not mistaken for it. A no-op without a device that copies.
void forget_device_weights(const void* host);

// How several rows of scores become one (over probes, over a query group).
enum class Reduce { kSum, kMean, kMax };
// 1-D pooling along a head's rows (torch's max_pool1d / avg_pool1d with
// count_include_pad, stride 1, padding kernel/2).
enum class PoolKind { kNone, kMax, kAvg };

// One layer of a KV store as the ops see it (the layout is described in
// kv/kv_store.h). Stored head s holds KV head s / repeat.
struct KvLayerView {
  DType type = DType::F32;         // element type of K and V: F32, F16 or BF16
  void* k = nullptr;               // [n_stored, capacity, head_dim] keys after RoPE
  void* v = nullptr;               // [n_stored, capacity, head_dim] values
  int32_t* pos = nullptr;          // [n_stored, capacity] original positions, increasing per head
  const int64_t* rows = nullptr;   // host [n_stored]: rows each head holds
  int64_t n_stored = 0, capacity = 0, head_dim = 0;
  int64_t repeat = 1;
};

// Causal attention of a batch of queries over one layer of the store, whose
// rows already include the batch's own keys: query t of head h (stored head
// h / (n_head / n_stored)) attends to the rows with pos <= q_pos[t].
struct AttentionArgs {
  KvLayerView kv;
  const float* q = nullptr;        // [n, n_head, head_dim] after RoPE
  const int32_t* q_pos = nullptr;  // host [n], increasing
  int64_t n = 0, n_head = 0;
  float* out = nullptr;            // [n, n_head, head_dim]
  // H2O's record, or null: for every query, colsum[h, j] += the probability it
  // gave row j of its head, and colcount[h, j] += 1 for every row it saw.
  // Queries add in batch order, so sums do not depend on the thread count.
  float* colsum = nullptr;         // [n_head, ld]
  float* colcount = nullptr;       // [n_head, ld]
  int64_t ld = 0;
};

// Attention probabilities of probe queries over one layer of the store: the
// one computation behind SnapKV-style scoring, LAQ and Judge Q probes and
// the Judge Q soft pass. Probe t attends to the rows with pos <= q_pos[t]
// and, when own_k is given, causally to the probes' own keys 0..t (the soft
// tokens are not in the store); each row of probabilities is one softmax in
// f32 over everything it sees.
struct ProbeAttentionArgs {
  KvLayerView kv;
  const float* q = nullptr;        // [n_probe, n_head, head_dim] after RoPE
  const int32_t* q_pos = nullptr;  // host [n_probe]
  int64_t n_probe = 0, n_head = 0;
  const float* own_k = nullptr;    // [n_probe, n_head_kv, head_dim] or null
  // Reduced over probes into out[h, j] for the rows j of h's stored head (a
  // row a probe cannot see counts 0; kMean divides by n_probe). Or null.
  float* out = nullptr;            // [n_head, ld]
  int64_t ld = 0;
  Reduce reduce = Reduce::kSum;
  // Every probe's own row: probs[t, h, j] for the head's store rows j, then
  // its own keys at [rows + i] for i <= t; 0 elsewhere. Or null.
  float* probs = nullptr;          // [n_probe, n_head, probs_ld]
  int64_t probs_ld = 0;
};

// Row gather of per-head arrays, the one op behind KvStore::retain and cuts
// written into a new store: for head h of n_heads output heads,
//   dst[h, j] = src[h / src_div, idx[off[s] + j]]  for j < off[s + 1] - off[s],
// s = h / sel_div, where a "row" is row_bytes bytes and heads are ld_src /
// ld_dst rows apart. idx is increasing per selection. dst must not overlap src.
struct GatherArgs {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t n_heads = 0, src_div = 1, sel_div = 1;
  int64_t ld_src = 0, ld_dst = 0;  // rows between heads
  size_t row_bytes = 0;
  const int64_t* idx = nullptr;    // device [off[n_heads / sel_div]]
  const int64_t* off = nullptr;    // host [n_heads / sel_div + 1]
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceKind kind() const = 0;
  // "cpu (AVX3, 2 threads)"
  virtual std::string describe() const = 0;
  // The threads host-side loops of this session may use (the CPU device's
  // own pool); null when the device is not the CPU.
  virtual ThreadPool* host_pool() = 0;

  // ---- memory
  virtual bool host_memory() const = 0;
  // 64-byte aligned; throws Error when the device is out of memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* dst, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // Ops issued on this backend from now on start after every op issued on
  // `other` so far (a CUDA stream waits for another's work; a CPU backend's
  // ops are done when they return). For a pass that writes one session's
  // memory from another session's backend. Both on the same device.
  virtual void wait_for(Backend& other) { (void)other; }
  // Makes the device's copy of the weight at host now instead of at its
  // first use (see forget_device_weights); nothing to do on the CPU.
  virtual void preload(const void* host, size_t bytes) {
    (void)host;
    (void)bytes;
  }
  // Bytes of device memory this backend holds now, and the most it held at
  // once since the last reset_peak() (KV stores, scratch, scores).
  virtual size_t bytes_in_use() const = 0;
  virtual size_t peak_bytes() const = 0;
  virtual void reset_peak() = 0;

  // ---- the forward pass (activations f32, weights in their stored type)
  // out[n, cols] = rows ids[t] of table [n_vocab, cols]; ids host, in range.
  virtual void embed(const TensorView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // y[n, W.rows] = x[n, W.cols] · Wᵀ (+ bias [W.rows]); y must not overlap x.
  virtual void matmul(const TensorView& W, const float* x, int64_t n, float* y,
                      const float* bias = nullptr) = 0;
  // matmul(*o.W, x, n, o.y, o.bias) for every o of outs (products of the
  // same x: a layer's q/k/v, gate/up); a backend may run them as one job
  // (one launch on a GPU, x rounded once for all of them). The outputs must
  // not overlap x or each other.
  virtual void matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n) {
    for (const MatmulOut& o : outs) matmul(*o.W, x, n, o.y, o.bias);
  }
  // out[rows, dim] = x · 1/sqrt(mean(x²) + eps) · w per row; out may alias x.
  virtual void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim,
                       float eps) = 0;
  // x[rows, dim] += d, then out = rmsnorm(x) as above (the residual add and
  // the next block's norm; a device may do both in one pass). out may alias d.
  virtual void add_rmsnorm(float* x, const float* d, const float* w, float* out, int64_t rows,
                           int64_t dim, float eps) {
    add(x, d, x, rows * dim);
    rmsnorm(x, w, out, rows, dim, eps);
  }
  // cos/sin [n, head_dim/2] of the angles pos[t] · inv_freq (pos host).
  virtual void rope_table(const RopeFreqs& freqs, const int32_t* pos, int64_t n, float* cos,
                          float* sin) = 0;
  // Rotates x [n, n_heads, head_dim] in place, row t by the angles of table row t.
  virtual void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
                    const float* sin, RopeStyle style) = 0;
  // out[n] = silu(gate) · up; out may alias either input.
  virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
  // out[n] = a + b; out may alias either input.
  virtual void add(const float* a, const float* b, float* out, int64_t n) = 0;
  // x[n] *= s.
  virtual void scale(float* x, float s, int64_t n) = 0;
  virtual void attention(const AttentionArgs& a) = 0;

  // ---- the KV store and the eviction pipeline
  virtual void probe_attention(const ProbeAttentionArgs& a) = 0;
  // Writes the K and V of n new tokens into every stored head of a layer, at
  // row kv.rows[s] onwards, converting to kv.type: k, v [n, n_head_kv,
  // head_dim] (keys after RoPE), and their positions pos (host [n]) into
  // kv.pos of every stored head. The caller has made room and advances the
  // counts afterwards.
  virtual void kv_append(const KvLayerView& kv, const float* k, const float* v,
                         const int32_t* pos, int64_t n, int64_t n_head_kv) = 0;
  virtual void gather(const GatherArgs& a) = 0;
  // Rows [first, first + n) of the keys of every KV head (stored head g ·
  // repeat) in f32: out [n, n_stored / repeat, head_dim] (e.g. the soft
  // tokens' own keys).
  virtual void read_keys(const KvLayerView& kv, int64_t first, int64_t n, float* out) = 0;
  // out[s, j] = ||k_j||2 for the rows of stored head s (f32).
  virtual void key_norms(const KvLayerView& kv, float* out, int64_t ld) = 0;
  // Pools rows [0, len[h]) of each head of in [n_heads, ld] along the rows;
  // rows [len[h], rows[h]) are copied. kernel odd; kNone or kernel 1 copy.
  // out must not alias in. len and rows host.
  virtual void pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
                    const int64_t* rows, int64_t kernel, PoolKind kind) = 0;
  // out[g, j] = reduce over h in [g·group, (g+1)·group) of in[h, j], for the
  // rows[g] rows of output head g (the heads of a group hold as many rows).
  virtual void reduce_groups(const float* in, float* out, int64_t n_out, int64_t group,
                             int64_t ld, const int64_t* rows, Reduce how) = 0;
  // Per head h of scores [n_heads, ld] with rows[h] rows: the indices
  // (increasing) of the min(budget[h], rows[h]) rows kept: the first `sinks`
  // and last `window` rows, then the best scores (ties: the earlier row;
  // NaN last), written at out[off[h] ..]. rows, budget, off host; every
  // budget below rows[h] is >= the protected count.
  virtual void select_rows(const float* scores, int64_t n_heads, int64_t ld, const int64_t* rows,
                           const int64_t* budget, int64_t sinks, int64_t window, int64_t* out,
                           const int64_t* off) = 0;
  // Ada-KV's split (core/adakv_split.h, `variant` its rule) of each layer's
  // budget (keep rows per head on average) over its n_heads heads, for
  // several layers at once: layer i's scores [n_heads, ld] hold rows[h]
  // (host) rows in head h; out[i, h] (this backend's memory) = the rows head
  // h of layer i keeps. Throws as adakv_split does.
  struct AdaKvLayer {
    const float* scores = nullptr;
    int64_t ld = 0;
    const int64_t* rows = nullptr;
    int64_t keep = 0;
  };
  virtual void adakv_split(std::span<const AdaKvLayer> layers, int64_t n_heads, int64_t sinks,
                           int64_t window, double floor, const std::string& variant,
                           int64_t* out) = 0;
};

// A backend for a device: CPU with `threads` threads (<= 0: all hardware
// threads), or CUDA computing as `math` says (a build without CUDA throws
// Error "built without CUDA").
std::unique_ptr<Backend> make_backend(DeviceKind kind, int threads = 0,
                                      GpuMath math = GpuMath::kTensor);
// The CPU backend on a pool the caller owns.
std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool);

// A typed block of a backend's memory, freed with it. Move-only. resize()
// reallocates without keeping the contents (callers copy what they need).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(Backend& be, int64_t n) : be_(&be) { resize(n); }
  DeviceArray(DeviceArray&& o) noexcept { swap(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    DeviceArray t(std::move(o));
    swap(t);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (p_) be_->release(p_);
  }
  void bind(Backend& be) { be_ = &be; }
  // Allocates room for n elements (contents undefined); n = 0 frees.
  void resize(int64_t n) {
    if (n == n_) return;
    if (p_) be_->release(p_);
    p_ = nullptr;
    n_ = 0;
    if (n > 0) p_ = static_cast<T*>(be_->allocate(size_t(n) * sizeof(T)));
    n_ = n;
  }
  // Grows to at least n elements (contents undefined).
  void reserve(int64_t n) {
    if (n > n_) resize(n);
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  int64_t size() const { return n_; }
  size_t bytes() const { return size_t(n_) * sizeof(T); }
  Backend* backend() const { return be_; }
  void swap(DeviceArray& o) noexcept {
    std::swap(be_, o.be_);
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
  }

 private:
  Backend* be_ = nullptr;
  T* p_ = nullptr;
  int64_t n_ = 0;
};

}  // namespace kvsieve
