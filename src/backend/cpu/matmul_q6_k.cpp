// Q6_K x Q8_K matrix-vector kernel (layout in core/kquant.h), per Highway
// target; the driver and the integer dot are in kquant-inl.h.
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul_q6_k.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "backend/cpu/kquant-inl.h"
#include "backend/cpu/kquant_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// Chunks of sc[v/16]·(q - 32). Per half h and quarter t (values 128h + 32t +
// l): low bits from ql[64h + l (+32 for t odd)] (low nibble for t < 2, high
// for t >= 2), top bits (qh[32h + l] >> 2t) & 3. kScaled = false: q - 32
// alone (the dequantisation must round (d·sc)·q as core does).
template <bool kScaled>
struct VisitQ6K {
  using D16 = hn::CappedTag<int16_t, 16>;  // at most one 16-value scale group per vector
  template <class Fn>
  HWY_INLINE void operator()(const uint8_t* blk, kq::Unpacked* u, const Fn& fn) const {
    const auto* b = reinterpret_cast<const BlockQ6_K*>(blk);
    // d is the block's last two bytes: widen the pair ending there (the first
    // half is scales[14..15], discarded) so nothing past the block is read.
    float unused;
    kq::HalfPair(blk + sizeof(BlockQ6_K) - 4, &unused, &u->d);
    const D16 d16;
    const hn::Rebind<uint8_t, D16> d8;
    const size_t N = hn::Lanes(d16);
    const auto low4 = hn::Set(d16, 0xF), three = hn::Set(d16, 3), k32 = hn::Set(d16, 32);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = b->ql + 64 * h;
      const uint8_t* qh = b->qh + 32 * h;
      for (size_t l = 0; l < 32; l += N) {
        const auto hb = hn::PromoteTo(d16, hn::LoadU(d8, qh + l));
        const auto l0 = hn::PromoteTo(d16, hn::LoadU(d8, ql + l));
        const auto l1 = hn::PromoteTo(d16, hn::LoadU(d8, ql + 32 + l));
        const decltype(l0) lows[4] = {hn::And(l0, low4), hn::And(l1, low4), hn::ShiftRight<4>(l0),
                                      hn::ShiftRight<4>(l1)};
        for (int t = 0; t < 4; ++t) {
          const auto top = hn::And(hn::ShiftRightSame(hb, 2 * t), three);
          const auto q = hn::Sub(hn::Or(lows[t], hn::ShiftLeft<4>(top)), k32);
          const size_t v = size_t(128 * h + 32 * t) + l;
          if constexpr (kScaled) {
            fn(v, hn::Mul(q, hn::Set(d16, int16_t(b->scales[v / 16]))));
          } else {
            fn(v, q);
          }
        }
      }
    }
  }
};

}  // namespace

void DequantRowQ6K(const uint8_t* row, size_t K, float* out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int32_t, decltype(df)> d32;
  const size_t N = hn::Lanes(df);
  kq::Unpacked u;
  for (size_t b = 0; b < K / kQK_K; ++b) {
    const auto* blk = reinterpret_cast<const BlockQ6_K*>(row + b * sizeof(BlockQ6_K));
    kq::Unpack(VisitQ6K<false>(), row + b * sizeof(BlockQ6_K), &u);
    for (size_t v = 0; v < size_t(kQK_K); v += N) {
      // (d·sc)·(q - 32), in core's order: d·sc is exact, the product rounds once.
      const auto ds = hn::Set(df, u.d * float(blk->scales[v / 16]));
      const auto q = hn::ConvertTo(df, hn::PromoteTo(d32, hn::LoadU(d16, u.ws + v)));
      hn::StoreU(hn::Mul(ds, q), df, out + b * kQK_K + v);
    }
  }
}

void DotRowsQ6K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias) {
  kq::DotRowsK<sizeof(BlockQ6_K), false>(
      VisitQ6K<true>(),
      [](const uint8_t* wr, const BlockQ8_K* xr, int64_t k) {
        return dot_q6_K_q8_K(reinterpret_cast<const BlockQ6_K*>(wr), xr, k);
      },
      w, row_bytes, r0, r1, x, n, nb, y, ys, bias);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
