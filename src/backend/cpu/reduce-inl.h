// Horizontal sums shared by the kernels, one copy per SIMD target.
// Sum4 adds up the lanes of four vectors at once with a transpose-and-add
// tree: about a third of the shuffles of four separate lane reductions, which
// matters where a dot product is short (head_dim keys, small K).

#if defined(KVSIEVE_BACKEND_CPU_REDUCE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_REDUCE_INL_H_
#undef KVSIEVE_BACKEND_CPU_REDUCE_INL_H_
#else
#define KVSIEVE_BACKEND_CPU_REDUCE_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace reduce {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// out[0..4) = lane sums of a0..a3.
HWY_INLINE void Sum4(DF d, VF a0, VF a1, VF a2, VF a3, float* HWY_RESTRICT out) {
#if HWY_TARGET == HWY_SCALAR
  out[0] = hn::GetLane(a0);
  out[1] = hn::GetLane(a1);
  out[2] = hn::GetLane(a2);
  out[3] = hn::GetLane(a3);
#else
  // Within each 128-bit block [x0 x1 x2 x3]:
  // t01 = [a0_0+a0_2, a1_0+a1_2, a0_1+a0_3, a1_1+a1_3], t23 likewise,
  // then pairing their 64-bit halves gives [s0 s1 s2 s3] for the block.
  const VF t01 = hn::Add(hn::InterleaveLower(d, a0, a1), hn::InterleaveUpper(d, a0, a1));
  const VF t23 = hn::Add(hn::InterleaveLower(d, a2, a3), hn::InterleaveUpper(d, a2, a3));
  const hn::Repartition<uint64_t, DF> d64;
  const auto p = hn::BitCast(d64, t01), q = hn::BitCast(d64, t23);
  const VF u = hn::Add(hn::BitCast(d, hn::InterleaveLower(d64, p, q)),
                       hn::BitCast(d, hn::InterleaveUpper(d64, p, q)));
  // Then add the 128-bit blocks together.
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const hn::Half<DF> d8;
  const auto h = hn::Add(hn::LowerHalf(d8, u), hn::UpperHalf(d8, u));
  const hn::Half<decltype(d8)> d4;
  hn::StoreU(hn::Add(hn::LowerHalf(d4, h), hn::UpperHalf(d4, h)), d4, out);
#elif HWY_TARGET == HWY_AVX2
  const hn::Half<DF> d4;
  hn::StoreU(hn::Add(hn::LowerHalf(d4, u), hn::UpperHalf(d4, u)), d4, out);
#else
  static_assert(HWY_LANES(float) == 4, "Sum4 expects 128-bit vectors here");
  hn::StoreU(u, d, out);
#endif
#endif
}

}  // namespace reduce
}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_REDUCE_INL_H_
