// The one place where SIMD targets are compiled and chosen. Highway's
// foreach_target re-includes this file once per target; each pass compiles
// the kernels of matmul-inl.h and rowops-inl.h for that target and fills a
// CpuKernels table. cpu_kernels() picks the table with one
// HWY_DYNAMIC_DISPATCH; the ops of ops.h call through it.
//
// Targets: see hwy_targets.h (shared with the per-type K-quant files, whose
// per-target functions matmul-inl.h calls). No -march flag is needed: each
// target's code carries its own target attributes, so the binary runs on
// every x86-64 CPU.
#include "backend/cpu/hwy_targets.h"

#include "backend/cpu/kernel_table.h"
#include "backend/cpu/ops.h"
#include "core/error.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/ops_dispatch.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
// The per-target kernels (re-included for every target).
#include "backend/cpu/kquant_kernels.h"
#include "backend/cpu/q4_0_kernels.h"
#include "backend/cpu/matmul-inl.h"
#include "backend/cpu/rowops-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {

void DequantizeRow(DType t, const void* row, int64_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::Q4_K: return DequantRowQ4K(p, size_t(n), out);
    case DType::Q5_K: return DequantRowQ5K(p, size_t(n), out);
    case DType::Q6_K: return DequantRowQ6K(p, size_t(n), out);
    default: return dequantize_row(t, row, out, n);
  }
}

const CpuKernels* GetKernels() {
  static const CpuKernels table = {
      hwy::TargetName(HWY_TARGET), &Matmul, &Matmuls, &DequantizeRow, &QuantizeRowQ8_0x, &Dot, &Axpy, &DotRows, &AxpyRows,
      &DotRowsF16, &DotRowsBF16, &AxpyRowsF16, &AxpyRowsBF16, &Scale, &Add,
      &RmsNorm, &Softmax, &SiluMul, &ApplyRope,
  };
  return &table;
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

namespace kvsieve {

HWY_EXPORT(GetKernels);

const CpuKernels& cpu_kernels() {
  static const CpuKernels* const best = HWY_DYNAMIC_DISPATCH(GetKernels)();
  return *best;
}

std::vector<const CpuKernels*> cpu_kernels_all() {
  std::vector<const CpuKernels*> out;
  const int64_t supported = hwy::SupportedTargets();
  // Targets compiled into this file, best first (lower bit = better).
#if HWY_TARGETS & HWY_AVX3
  if (supported & HWY_AVX3) out.push_back(N_AVX3::GetKernels());
#endif
#if HWY_TARGETS & HWY_AVX2
  if (supported & HWY_AVX2) out.push_back(N_AVX2::GetKernels());
#endif
#if HWY_TARGETS & HWY_SSE4
  if (supported & HWY_SSE4) out.push_back(N_SSE4::GetKernels());
#endif
#if HWY_TARGETS & HWY_SCALAR
  out.push_back(N_SCALAR::GetKernels());
#endif
#if HWY_TARGETS & HWY_EMU128
  out.push_back(N_EMU128::GetKernels());
#endif
  return out;
}

void matmul(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
            const float* bias) {
  cpu_kernels().matmul(W, x, n, y, pool, bias);
}
void matmuls(std::span<const MatmulOut> outs, const float* x, int64_t n, ThreadPool& pool) {
  cpu_kernels().matmuls(outs.data(), outs.size(), x, n, pool);
}
void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  cpu_kernels().rmsnorm(x, weight, out, n, eps);
}
void softmax_inplace(float* x, int64_t n) { cpu_kernels().softmax(x, n); }
void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  cpu_kernels().silu_mul(gate, up, out, n);
}
float dot_f32(const float* a, const float* b, int64_t n) { return cpu_kernels().dot(a, b, n); }
void axpy_f32(float a, const float* x, float* y, int64_t n) { cpu_kernels().axpy(a, x, y, n); }
void dot_rows_f32(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                  float* out) {
  cpu_kernels().dot_rows(q, rows, n_rows, stride, dim, out);
}
void axpy_rows_f32(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
                   float* y) {
  cpu_kernels().axpy_rows(a, rows, n_rows, stride, dim, y);
}
void dot_rows(DType t, const float* q, const void* rows, int64_t n_rows, int64_t stride,
              int64_t dim, float* out) {
  const CpuKernels& k = cpu_kernels();
  switch (t) {
    case DType::F32: return k.dot_rows(q, static_cast<const float*>(rows), n_rows, stride, dim, out);
    case DType::F16:
      return k.dot_rows_f16(q, static_cast<const uint16_t*>(rows), n_rows, stride, dim, out);
    case DType::BF16:
      return k.dot_rows_bf16(q, static_cast<const uint16_t*>(rows), n_rows, stride, dim, out);
    default: fail("dot_rows: rows of type {} are not supported", dtype_name(t));
  }
}
void axpy_rows(DType t, const float* a, const void* rows, int64_t n_rows, int64_t stride,
               int64_t dim, float* y) {
  const CpuKernels& k = cpu_kernels();
  switch (t) {
    case DType::F32: return k.axpy_rows(a, static_cast<const float*>(rows), n_rows, stride, dim, y);
    case DType::F16:
      return k.axpy_rows_f16(a, static_cast<const uint16_t*>(rows), n_rows, stride, dim, y);
    case DType::BF16:
      return k.axpy_rows_bf16(a, static_cast<const uint16_t*>(rows), n_rows, stride, dim, y);
    default: fail("axpy_rows: rows of type {} are not supported", dtype_name(t));
  }
}
void scale_f32(float* x, float s, int64_t n) { cpu_kernels().scale(x, s, n); }
void add_f32(const float* a, const float* b, float* out, int64_t n) {
  cpu_kernels().add(a, b, out, n);
}
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
                RopeStyle style) {
  cpu_kernels().apply_rope(x, n_heads, head_dim, cos, sin, style);
}
const char* cpu_kernel_target() { return cpu_kernels().target; }

}  // namespace kvsieve
#endif  // HWY_ONCE
