// Row and elementwise kernels (dot, axpy, attention rows of f32/f16/bf16
// K/V, scale, add, RMSNorm, softmax, SwiGLU) and the RoPE rotation, one copy per SIMD target (included from
// ops_dispatch.cpp under Highway's foreach_target). Reductions keep several
// vector partial sums; tails shorter than a vector run through a small
// padded buffer so every element takes the same SIMD code path.

#if defined(KVSIEVE_BACKEND_CPU_ROWOPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_ROWOPS_INL_H_
#undef KVSIEVE_BACKEND_CPU_ROWOPS_INL_H_
#else
#define KVSIEVE_BACKEND_CPU_ROWOPS_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/reduce-inl.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "core/dtype.h"
#include "core/rope_types.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace rowops {

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
constexpr size_t kN = HWY_LANES(float);

// The last n < kN values of p as a vector, the missing lanes set to pad.
HWY_INLINE VF LoadTail(DF d, const float* p, size_t n, float pad) {
  HWY_ALIGN float buf[kN];
  for (size_t i = 0; i < kN; ++i) buf[i] = i < n ? p[i] : pad;
  return hn::Load(d, buf);
}
HWY_INLINE void StoreTail(DF d, VF v, float* p, size_t n) {
  HWY_ALIGN float buf[kN];
  hn::Store(v, d, buf);
  std::memcpy(p, buf, n * sizeof(float));
}

HWY_INLINE float Sum(DF d, VF v) { return hn::GetLane(hn::SumOfLanes(d, v)); }

}  // namespace rowops

float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  VF s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * kN <= n; i += 4 * kN) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + kN), hn::LoadU(d, b + i + kN), s1);
    s2 = hn::MulAdd(hn::LoadU(d, a + i + 2 * kN), hn::LoadU(d, b + i + 2 * kN), s2);
    s3 = hn::MulAdd(hn::LoadU(d, a + i + 3 * kN), hn::LoadU(d, b + i + 3 * kN), s3);
  }
  for (; i + kN <= n; i += kN) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  if (i < n) s1 = hn::MulAdd(LoadTail(d, a + i, n - i, 0.0f), LoadTail(d, b + i, n - i, 0.0f), s1);
  return Sum(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)));
}

namespace rowops {
// Loads of cached K/V rows of each element type as f32 vectors: Load gives
// values k..k+kN, Tail the last n < kN values with zeros after them.
template <DType T>
struct KvRow;
template <>
struct KvRow<DType::F32> {
  using type = float;
  static HWY_INLINE VF Load(DF d, const float* p) { return hn::LoadU(d, p); }
  static HWY_INLINE VF Tail(DF d, const float* p, size_t n) { return LoadTail(d, p, n, 0.0f); }
};
template <>
struct KvRow<DType::F16> {
  using type = uint16_t;
  static HWY_INLINE VF Load(DF d, const uint16_t* p) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
  static HWY_INLINE VF Tail(DF d, const uint16_t* p, size_t n) {
    HWY_ALIGN float buf[kN];
    for (size_t i = 0; i < kN; ++i) buf[i] = i < n ? f16_to_f32(p[i]) : 0.0f;
    return hn::Load(d, buf);
  }
};
template <>
struct KvRow<DType::BF16> {
  using type = uint16_t;
  static HWY_INLINE VF Load(DF d, const uint16_t* p) {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(d, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(p)));
  }
  static HWY_INLINE VF Tail(DF d, const uint16_t* p, size_t n) {
    HWY_ALIGN float buf[kN];
    for (size_t i = 0; i < kN; ++i) buf[i] = i < n ? bf16_to_f32(p[i]) : 0.0f;
    return hn::Load(d, buf);
  }
};

// q · row for one row of type T (f32 rows: exactly Dot).
template <DType T>
HWY_INLINE float DotRow(const float* HWY_RESTRICT q, const typename KvRow<T>::type* HWY_RESTRICT r,
                        int64_t dim64) {
  if constexpr (T == DType::F32) {
    return Dot(q, r, dim64);
  } else {
    const DF d;
    const size_t dim = size_t(std::max<int64_t>(dim64, 0));
    VF s0 = hn::Zero(d), s1 = hn::Zero(d);
    size_t i = 0;
    for (; i + 2 * kN <= dim; i += 2 * kN) {
      s0 = hn::MulAdd(hn::LoadU(d, q + i), KvRow<T>::Load(d, r + i), s0);
      s1 = hn::MulAdd(hn::LoadU(d, q + i + kN), KvRow<T>::Load(d, r + i + kN), s1);
    }
    for (; i + kN <= dim; i += kN) s0 = hn::MulAdd(hn::LoadU(d, q + i), KvRow<T>::Load(d, r + i), s0);
    if (i < dim) s1 = hn::MulAdd(LoadTail(d, q + i, dim - i, 0.0f), KvRow<T>::Tail(d, r + i, dim - i), s1);
    return Sum(d, hn::Add(s0, s1));
  }
}
}  // namespace rowops

// out[t] = Σ_i q[i] · rows[t*stride + i] for t < n_rows: attention scores of
// one query against many keys (rows of type T, widened to f32). Four rows at
// a time share the loads of q.
template <DType T>
void DotRowsT(const float* HWY_RESTRICT q, const typename rowops::KvRow<T>::type* HWY_RESTRICT rows,
              int64_t n_rows, int64_t stride, int64_t dim64, float* HWY_RESTRICT out) {
  using namespace rowops;
  using R = KvRow<T>;
  const DF d;
  const size_t dim = size_t(std::max<int64_t>(dim64, 0));
  int64_t t = 0;
  for (; t + 4 <= n_rows; t += 4) {
    const auto* r0 = rows + t * stride;
    const auto* r1 = r0 + stride;
    const auto* r2 = r1 + stride;
    const auto* r3 = r2 + stride;
    VF a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    size_t i = 0;
    for (; i + kN <= dim; i += kN) {
      const VF qv = hn::LoadU(d, q + i);
      a0 = hn::MulAdd(qv, R::Load(d, r0 + i), a0);
      a1 = hn::MulAdd(qv, R::Load(d, r1 + i), a1);
      a2 = hn::MulAdd(qv, R::Load(d, r2 + i), a2);
      a3 = hn::MulAdd(qv, R::Load(d, r3 + i), a3);
    }
    if (i < dim) {
      const size_t rem = dim - i;
      const VF qv = LoadTail(d, q + i, rem, 0.0f);
      a0 = hn::MulAdd(qv, R::Tail(d, r0 + i, rem), a0);
      a1 = hn::MulAdd(qv, R::Tail(d, r1 + i, rem), a1);
      a2 = hn::MulAdd(qv, R::Tail(d, r2 + i, rem), a2);
      a3 = hn::MulAdd(qv, R::Tail(d, r3 + i, rem), a3);
    }
    reduce::Sum4(d, a0, a1, a2, a3, out + t);
  }
  for (; t < n_rows; ++t) out[t] = DotRow<T>(q, rows + t * stride, dim64);
}

// y[i] += Σ_t a[t] · rows[t*stride + i] for i < dim: the weighted sum of
// value rows in attention (rows of type T). Up to four vectors of y stay in
// registers while all rows stream past.
template <DType T>
void AxpyRowsT(const float* HWY_RESTRICT a, const typename rowops::KvRow<T>::type* HWY_RESTRICT rows,
               int64_t n_rows, int64_t stride, int64_t dim64, float* HWY_RESTRICT y) {
  using namespace rowops;
  using R = KvRow<T>;
  const DF d;
  const size_t dim = size_t(std::max<int64_t>(dim64, 0));
  size_t i = 0;
  for (; i + 4 * kN <= dim; i += 4 * kN) {
    VF y0 = hn::LoadU(d, y + i), y1 = hn::LoadU(d, y + i + kN);
    VF y2 = hn::LoadU(d, y + i + 2 * kN), y3 = hn::LoadU(d, y + i + 3 * kN);
    for (int64_t t = 0; t < n_rows; ++t) {
      const VF at = hn::Set(d, a[t]);
      const auto* r = rows + t * stride + i;
      y0 = hn::MulAdd(at, R::Load(d, r), y0);
      y1 = hn::MulAdd(at, R::Load(d, r + kN), y1);
      y2 = hn::MulAdd(at, R::Load(d, r + 2 * kN), y2);
      y3 = hn::MulAdd(at, R::Load(d, r + 3 * kN), y3);
    }
    hn::StoreU(y0, d, y + i);
    hn::StoreU(y1, d, y + i + kN);
    hn::StoreU(y2, d, y + i + 2 * kN);
    hn::StoreU(y3, d, y + i + 3 * kN);
  }
  for (; i + kN <= dim; i += kN) {
    VF y0 = hn::LoadU(d, y + i);
    for (int64_t t = 0; t < n_rows; ++t)
      y0 = hn::MulAdd(hn::Set(d, a[t]), R::Load(d, rows + t * stride + i), y0);
    hn::StoreU(y0, d, y + i);
  }
  if (i < dim) {
    const size_t rem = dim - i;
    VF y0 = LoadTail(d, y + i, rem, 0.0f);
    for (int64_t t = 0; t < n_rows; ++t)
      y0 = hn::MulAdd(hn::Set(d, a[t]), R::Tail(d, rows + t * stride + i, rem), y0);
    StoreTail(d, y0, y + i, rem);
  }
}

void DotRows(const float* q, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
             float* out) {
  DotRowsT<DType::F32>(q, rows, n_rows, stride, dim, out);
}
void DotRowsF16(const float* q, const uint16_t* rows, int64_t n_rows, int64_t stride, int64_t dim,
                float* out) {
  DotRowsT<DType::F16>(q, rows, n_rows, stride, dim, out);
}
void DotRowsBF16(const float* q, const uint16_t* rows, int64_t n_rows, int64_t stride, int64_t dim,
                 float* out) {
  DotRowsT<DType::BF16>(q, rows, n_rows, stride, dim, out);
}
void AxpyRows(const float* a, const float* rows, int64_t n_rows, int64_t stride, int64_t dim,
              float* y) {
  AxpyRowsT<DType::F32>(a, rows, n_rows, stride, dim, y);
}
void AxpyRowsF16(const float* a, const uint16_t* rows, int64_t n_rows, int64_t stride, int64_t dim,
                 float* y) {
  AxpyRowsT<DType::F16>(a, rows, n_rows, stride, dim, y);
}
void AxpyRowsBF16(const float* a, const uint16_t* rows, int64_t n_rows, int64_t stride,
                  int64_t dim, float* y) {
  AxpyRowsT<DType::BF16>(a, rows, n_rows, stride, dim, y);
}

void Axpy(float a, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  const VF va = hn::Set(d, a);
  size_t i = 0;
  for (; i + kN <= n; i += kN) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  if (i < n)
    StoreTail(d, hn::MulAdd(va, LoadTail(d, x + i, n - i, 0.0f), LoadTail(d, y + i, n - i, 0.0f)), y + i,
              n - i);
}

void Scale(float* x, float s, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  const VF vs = hn::Set(d, s);
  size_t i = 0;
  for (; i + kN <= n; i += kN) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vs), d, x + i);
  if (i < n) StoreTail(d, hn::Mul(LoadTail(d, x + i, n - i, 0.0f), vs), x + i, n - i);
}

void Add(const float* a, const float* b, float* out, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  size_t i = 0;
  for (; i + kN <= n; i += kN) hn::StoreU(hn::Add(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  if (i < n)
    StoreTail(d, hn::Add(LoadTail(d, a + i, n - i, 0.0f), LoadTail(d, b + i, n - i, 0.0f)), out + i, n - i);
}

void RmsNorm(const float* x, const float* weight, float* out, int64_t n64, float eps) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  if (n == 0) return;
  VF s0 = hn::Zero(d), s1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * kN <= n; i += 2 * kN) {
    const VF a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + kN);
    s0 = hn::MulAdd(a, a, s0);
    s1 = hn::MulAdd(b, b, s1);
  }
  for (; i + kN <= n; i += kN) {
    const VF a = hn::LoadU(d, x + i);
    s0 = hn::MulAdd(a, a, s0);
  }
  if (i < n) {
    const VF a = LoadTail(d, x + i, n - i, 0.0f);
    s1 = hn::MulAdd(a, a, s1);
  }
  // As transformers: variance in f32, then rsqrt(variance + eps) in f32.
  const float var = Sum(d, hn::Add(s0, s1)) / float(n);
  const VF inv = hn::Set(d, 1.0f / std::sqrt(var + eps));
  i = 0;
  for (; i + kN <= n; i += kN)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), inv), hn::LoadU(d, weight + i)), d, out + i);
  if (i < n)
    StoreTail(d, hn::Mul(hn::Mul(LoadTail(d, x + i, n - i, 0.0f), inv), LoadTail(d, weight + i, n - i, 0.0f)),
              out + i, n - i);
}

void Softmax(float* x, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  if (n == 0) return;
  const float ninf = -std::numeric_limits<float>::infinity();
  VF m = hn::Set(d, ninf);
  size_t i = 0;
  for (; i + kN <= n; i += kN) m = hn::Max(m, hn::LoadU(d, x + i));
  if (i < n) m = hn::Max(m, LoadTail(d, x + i, n - i, ninf));
  const VF vmax = hn::MaxOfLanes(d, m);
  // exp(x - max) is in (0, 1], inside the accurate range of hn::Exp (<= 1 ulp).
  VF s = hn::Zero(d);
  i = 0;
  for (; i + kN <= n; i += kN) {
    const VF e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), vmax));
    s = hn::Add(s, e);
    hn::StoreU(e, d, x + i);
  }
  if (i < n) {
    const VF e = hn::Exp(d, hn::Sub(LoadTail(d, x + i, n - i, ninf), vmax));  // pad lanes -> 0
    s = hn::Add(s, e);
    StoreTail(d, e, x + i, n - i);
  }
  const VF inv = hn::Set(d, 1.0f / Sum(d, s));
  i = 0;
  for (; i + kN <= n; i += kN) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), inv), d, x + i);
  if (i < n) StoreTail(d, hn::Mul(LoadTail(d, x + i, n - i, 0.0f), inv), x + i, n - i);
}

namespace rowops {
// silu(g) * u with sigmoid from e = exp(-|g|) in (0, 1] (never overflows):
// sigmoid(g) = 1/(1+e) for g >= 0 and e/(1+e) for g < 0.
HWY_INLINE VF SiluMul(DF d, VF g, VF u) {
  const VF one = hn::Set(d, 1.0f);
  const VF e = hn::Exp(d, hn::Neg(hn::Abs(g)));
  const VF r = hn::Div(one, hn::Add(one, e));
  const VF sig = hn::IfThenElse(hn::Ge(g, hn::Zero(d)), r, hn::Mul(e, r));
  return hn::Mul(hn::Mul(g, sig), u);
}
}  // namespace rowops

void SiluMul(const float* gate, const float* up, float* out, int64_t n64) {
  using namespace rowops;
  const DF d;
  const size_t n = size_t(std::max<int64_t>(n64, 0));
  size_t i = 0;
  for (; i + kN <= n; i += kN)
    hn::StoreU(rowops::SiluMul(d, hn::LoadU(d, gate + i), hn::LoadU(d, up + i)), d, out + i);
  if (i < n)
    StoreTail(d, rowops::SiluMul(d, LoadTail(d, gate + i, n - i, 0.0f), LoadTail(d, up + i, n - i, 0.0f)),
              out + i, n - i);
}

void ApplyRope(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin,
               RopeStyle style) {
  using namespace rowops;
  const DF d;
  const size_t half = size_t(std::max<int64_t>(head_dim, 0)) / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    size_t i = 0;
    if (style == RopeStyle::kNeox) {
      for (; i + kN <= half; i += kN) {
        const VF a = hn::LoadU(d, v + i), b = hn::LoadU(d, v + half + i);
        const VF c = hn::LoadU(d, cos + i), s = hn::LoadU(d, sin + i);
        hn::StoreU(hn::MulSub(a, c, hn::Mul(b, s)), d, v + i);
        hn::StoreU(hn::MulAdd(b, c, hn::Mul(a, s)), d, v + half + i);
      }
      for (; i < half; ++i) {
        const float a = v[i], b = v[half + i];
        v[i] = a * cos[i] - b * sin[i];
        v[half + i] = b * cos[i] + a * sin[i];
      }
    } else {
      for (; i + kN <= half; i += kN) {
        VF a, b;
        hn::LoadInterleaved2(d, v + 2 * i, a, b);
        const VF c = hn::LoadU(d, cos + i), s = hn::LoadU(d, sin + i);
        hn::StoreInterleaved2(hn::MulSub(a, c, hn::Mul(b, s)), hn::MulAdd(b, c, hn::Mul(a, s)), d, v + 2 * i);
      }
      for (; i < half; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cos[i] - b * sin[i];
        v[2 * i + 1] = b * cos[i] + a * sin[i];
      }
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_ROWOPS_INL_H_
