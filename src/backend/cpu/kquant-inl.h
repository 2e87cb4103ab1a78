// What the per-type K-quant kernels share (compiled per Highway target in
// each matmul_q*_k.cpp): a driver that walks W rows and super-blocks, asks
// the type's unpacker for the block's scaled integer weights, and takes
// integer dot products with the Q8_K activation rows.
//
// Per super-block the unpacker writes ws[256] (int16) = sub-block scale x
// level, the exact integers of the format (Q4_K/Q5_K: sc·q, at most
// 63·31; Q6_K: sc·(q - 32), |.| <= 127·32 = 4064). Then for each x row
//   isum (int32 lanes) = Σ ws[v]·q8[v]    (pairs of int16 products, |q8| <= 127:
//                                           |sum| < 256·4064·127 < 2^31, exact)
//   acc (f32 lanes)   += float(isum) · (d·x.d)
//   mins (f32)        += dmin·x.d·Σ_j mn[j]·(bsum[2j] + bsum[2j+1])   (Q4_K/Q5_K)
// and y = Σ lanes(acc) - mins. The unpack is done once per block and reused
// by every x row (n <= kDotMaxN of matmul-inl.h); W is streamed once, rows
// in order (one long stream per thread, which the prefetchers follow).
#if defined(KVSIEVE_BACKEND_CPU_KQUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_KQUANT_INL_H_
#undef KVSIEVE_BACKEND_CPU_KQUANT_INL_H_
#else
#define KVSIEVE_BACKEND_CPU_KQUANT_INL_H_
#endif

#include <cstring>

#include "core/kquant.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace kq {
namespace hn = hwy::HWY_NAMESPACE;

// Software prefetch of the decode kernels' weight stream: each line
// kPrefetch bytes ahead of the reader. 1.1B Q4_K_M decode (2 threads) ran 12%
// faster with 2304 bytes, 24% with 4608 to 18432 (all alike) than with the
// hardware prefetchers alone. It runs past the end of a thread's rows (a
// prefetch never faults): what lies there, the other thread's rows or a
// neighbouring tensor of the layer, is mostly read soon after, and stopping
// at the range's end made decode 3-5% slower; fetching a range's first
// kPrefetch bytes at once when it starts made it 3% slower.
constexpr size_t kPrefetch = 9216;

// The lines of [p, p + bytes) moved kPrefetch ahead.
HWY_INLINE void PrefetchAhead(const void* p, size_t bytes) {
  const uint8_t* a = static_cast<const uint8_t*>(p) + kPrefetch;
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(a + o);
}

// What an unpacker gives for one super-block.
struct Unpacked {
  HWY_ALIGN int16_t ws[kQK_K];  // scale x level, in value order
  float d = 0;                  // the block's d (f16 widened)
  float dmin = 0;               // Q4_K/Q5_K: dmin; 0 for Q6_K
  int16_t mn[8] = {};           // Q4_K/Q5_K: the sub-block mins
};

// The two f16 values at p (a block's d and dmin) widened exactly, in one
// vcvtph2ps where the target has it (core's f16_to_f32 is an out-of-line
// call, a noticeable part of a block's time).
HWY_INLINE void HalfPair(const uint8_t* p, float* a, float* b) {
  const hn::CappedTag<float, 2> d2;
  const hn::Rebind<hwy::float16_t, decltype(d2)> dh;
  HWY_ALIGN float out[hn::MaxLanes(d2) < 2 ? 2 : hn::MaxLanes(d2)];
  if constexpr (hn::MaxLanes(d2) >= 2) {
    hn::Store(hn::PromoteTo(d2, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))), d2, out);
  } else {
    uint16_t h[2];
    std::memcpy(h, p, 4);
    out[0] = f16_to_f32(h[0]);
    out[1] = f16_to_f32(h[1]);
  }
  *a = out[0];
  *b = out[1];
}

#if HWY_TARGET != HWY_SCALAR
// Σ_v ws[v]·q8[v] over a super-block, as int32 lanes (their sum is the dot).
HWY_INLINE hn::Vec<hn::ScalableTag<int32_t>> DotBlock(const int16_t* HWY_RESTRICT ws,
                                                     const int8_t* HWY_RESTRICT q8) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const size_t N = hn::Lanes(d16);
  auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
  for (size_t v = 0; v < size_t(kQK_K); v += N) {
    const auto w = hn::Load(d16, ws + v);
    const auto q = hn::PromoteTo(d16, hn::LoadU(d8, q8 + v));
    s0 = hn::ReorderWidenMulAccumulate(d32, w, q, s0, s1);
  }
  return hn::Add(s0, s1);  // lanes reordered, the total is the dot product
}
#endif

// out[256] = d·ws[v] - dmin·mn[v/32] for a Q4_K/Q5_K block (ws = sc·q). As
// core's dequantize_row: d·sc·q is exact in f32 (an f16 times at most 11
// bits) whichever way it is grouped, dmin·mn too, so the one rounding of the
// difference is the same.
HWY_INLINE void StoreQ45(const Unpacked& u, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int32_t, decltype(df)> d32;
  const size_t N = hn::Lanes(df);
  const auto d = hn::Set(df, u.d);
  for (size_t v = 0; v < size_t(kQK_K); v += N) {
    const auto w = hn::ConvertTo(df, hn::PromoteTo(d32, hn::LoadU(d16, u.ws + v)));
    const auto m = hn::Set(df, u.dmin * float(u.mn[v / 32]));
    hn::StoreU(hn::Sub(hn::Mul(w, d), m), df, out + v);
  }
}

// Fills u.ws from a block through a type's visitor (see DotRowsK).
template <class Visit>
HWY_INLINE void Unpack(const Visit& visit, const uint8_t* blk, Unpacked* u) {
  const typename Visit::D16 d16;
  visit(blk, u, [&](size_t v, hn::Vec<typename Visit::D16> w) { hn::StoreU(w, d16, u->ws + v); });
}

// The K-quant matrix-vector product for one weight type. visit(blk, &u, fn)
// sets u.d, u.dmin, u.mn of the block at blk and calls fn(v, w) for each
// chunk of Visit::D16 lanes: w = the scaled levels of values v, v + 1, ...
// (never crossing a sub-block or scale group). For one x row (decode) the
// chunks go straight into the integer dot product; for several, they are
// stored once (u.ws) and reused by every row. kMins: the type has mins
// (Q4_K, Q5_K). ref_dot(w_row, x_row, nb) is the scalar reference, which the
// scalar target runs.
template <size_t kBlockBytes, bool kMins, class Visit, class RefDot>
HWY_INLINE void DotRowsK(const Visit& visit, const RefDot& ref_dot, const uint8_t* w,
                         size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x, int64_t n,
                         size_t nb, float* y, size_t ys, const float* bias) {
#if HWY_TARGET == HWY_SCALAR
  // One lane: no pairwise products to use; the reference is the kernel.
  (void)visit;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t m = 0; m < n; ++m)
      y[size_t(m) * ys + size_t(r)] =
          ref_dot(w + size_t(r) * row_bytes, x + size_t(m) * nb, int64_t(nb)) + (bias ? bias[r] : 0.0f);
#else
  Unpacked u;
  auto mins_of = [&](const BlockQ8_K& xb) {
    int32_t msum = 0;
    for (int j = 0; j < 8; ++j) msum += u.mn[j] * (xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
    return u.dmin * xb.d * float(msum);
  };
  if (n == 1) {
    // Decode: the chunks of a block meet the Q8_K values in registers.
    using D16 = typename Visit::D16;
    const D16 d16;
    const hn::Repartition<int32_t, D16> d32;
    const hn::Repartition<float, D16> dfc;
    const hn::Rebind<int8_t, D16> d8;
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w + size_t(r) * row_bytes;
      auto acc = hn::Zero(dfc);
      float mins = 0;
      for (size_t b = 0; b < nb; ++b) {
        const BlockQ8_K& xb = x[b];
        auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
        visit(row + b * kBlockBytes, &u, [&](size_t v, hn::Vec<D16> wv) {
          const auto q = hn::PromoteTo(d16, hn::LoadU(d8, xb.qs + v));
          s0 = hn::ReorderWidenMulAccumulate(d32, wv, q, s0, s1);
        });
        acc = hn::MulAdd(hn::ConvertTo(dfc, hn::Add(s0, s1)), hn::Set(dfc, u.d * xb.d), acc);
        if constexpr (kMins) mins += mins_of(xb);
      }
      y[size_t(r)] = hn::GetLane(hn::SumOfLanes(dfc, acc)) - mins + (bias ? bias[r] : 0.0f);
    }
    return;
  }
  const hn::ScalableTag<float> df;
  using VF = hn::Vec<decltype(df)>;
  constexpr int64_t kMaxN = 32;  // matmul-inl.h sends at most kDotMaxN (<= 20) rows
  HWY_ASSERT(n <= kMaxN);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * row_bytes;
    VF acc[kMaxN];
    float mins[kMaxN];
    for (int64_t m = 0; m < n; ++m) acc[m] = hn::Zero(df), mins[m] = 0;
    for (size_t b = 0; b < nb; ++b) {
      Unpack(visit, row + b * kBlockBytes, &u);
      for (int64_t m = 0; m < n; ++m) {
        const BlockQ8_K& xb = x[size_t(m) * nb + b];
        const auto isum = DotBlock(u.ws, xb.qs);
        acc[m] = hn::MulAdd(hn::ConvertTo(df, isum), hn::Set(df, u.d * xb.d), acc[m]);
        if constexpr (kMins) mins[m] += mins_of(xb);
      }
    }
    for (int64_t m = 0; m < n; ++m)
      y[size_t(m) * ys + size_t(r)] =
          hn::GetLane(hn::SumOfLanes(df, acc[m])) - mins[m] + (bias ? bias[r] : 0.0f);
  }
#endif
}

}  // namespace kq
}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_KQUANT_INL_H_
