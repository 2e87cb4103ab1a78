// The CPU device: memory and the forward pass's element and row ops.
// Attention is in cpu_attention.cpp, the KV store and eviction ops in
// cpu_kv_ops.cpp.
#include "backend/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "backend/cpu/ops.h"
#include "core/error.h"

namespace kvsieve {

CpuBackend::CpuBackend(ThreadPool& pool) : pool_(pool), scratch_(size_t(pool.size())) {}

CpuBackend::CpuBackend(int threads)
    : own_pool_(std::make_unique<ThreadPool>(threads)), pool_(*own_pool_),
      scratch_(size_t(pool_.size())) {}

std::string CpuBackend::describe() const {
  return fmt::format("cpu ({}, {} thread{})", cpu_kernel_target(), pool_.size(),
                     pool_.size() == 1 ? "" : "s");
}

// Each block carries its size in a 64-byte header (the accounting of
// bytes_in_use), so the caller's pointer stays 64-byte aligned.
void* CpuBackend::allocate(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64 + 64;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  check(p != nullptr, "out of memory: could not allocate {} bytes", rounded);
  std::memcpy(p, &rounded, sizeof rounded);
  const size_t now = in_use_.fetch_add(rounded) + rounded;
  size_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  return p + 64;
}

void CpuBackend::release(void* p) noexcept {
  if (!p) return;
  uint8_t* base = static_cast<uint8_t*>(p) - 64;
  size_t rounded;
  std::memcpy(&rounded, base, sizeof rounded);
  in_use_.fetch_sub(rounded);
  std::free(base);
}

void CpuBackend::upload(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void CpuBackend::download(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, size_t bytes) {
  if (bytes && dst != src) std::memmove(dst, src, bytes);
}
void CpuBackend::zero(void* dst, size_t bytes) {
  if (bytes) std::memset(dst, 0, bytes);
}

void CpuBackend::ensure_scratch(int64_t n) {
  for (auto& s : scratch_)
    if (int64_t(s.size()) < n) s.resize(size_t(n));
}

void CpuBackend::embed(const TensorView& table, const int32_t* ids, int64_t n, float* out) {
  const int64_t E = table.cols(), V = table.rows();
  for (int64_t t = 0; t < n; ++t) {
    check(ids[t] >= 0 && ids[t] < V, "token id {} is out of range (vocabulary size {})", ids[t], V);
    dequantize_row(table.type, table.row_ptr(ids[t]), out + t * E, E);
  }
}

void CpuBackend::matmul(const TensorView& W, const float* x, int64_t n, float* y,
                        const float* bias) {
  kvsieve::matmul(W, x, n, y, pool_, bias);
}

void CpuBackend::matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n) {
  kvsieve::matmuls(outs, x, n, pool_);
}

void CpuBackend::rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim,
                         float eps) {
  for (int64_t t = 0; t < rows; ++t) kvsieve::rmsnorm(x + t * dim, w, out + t * dim, dim, eps);
}

void CpuBackend::rope_table(const RopeFreqs& freqs, const int32_t* pos, int64_t n, float* cos,
                            float* sin) {
  const int64_t half = freqs.head_dim / 2;
  for (int64_t t = 0; t < n; ++t) rope_cos_sin(freqs, pos[t], cos + t * half, sin + t * half);
}

void CpuBackend::rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
                      const float* sin, RopeStyle style) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < n; ++t)
    apply_rope(x + t * n_heads * head_dim, n_heads, head_dim, cos + t * half, sin + t * half, style);
}

void CpuBackend::swiglu(const float* gate, const float* up, float* out, int64_t n) {
  silu_mul(gate, up, out, n);
}

void CpuBackend::add(const float* a, const float* b, float* out, int64_t n) { add_f32(a, b, out, n); }

void CpuBackend::scale(float* x, float s, int64_t n) { scale_f32(x, s, n); }

}  // namespace kvsieve
