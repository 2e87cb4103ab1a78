// Q5_K x Q8_K matrix-vector kernel (layout in core/kquant.h), per Highway
// target; the driver and the integer dot are in kquant-inl.h.
#include "backend/cpu/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/matmul_q5_k.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "backend/cpu/kquant-inl.h"
#include "backend/cpu/kquant_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace {
namespace hn = hwy::HWY_NAMESPACE;

// As Q4_K, each level with its fifth bit from qh: bit 2c of qh[l] for value
// 64c + l, bit 2c + 1 for value 64c + 32 + l.
struct VisitQ5K {
  using D16 = hn::CappedTag<int16_t, 32>;
  template <class Fn>
  HWY_INLINE void operator()(const uint8_t* blk, kq::Unpacked* u, const Fn& fn) const {
    const auto* b = reinterpret_cast<const BlockQ5_K*>(blk);
    kq::HalfPair(blk, &u->d, &u->dmin);  // d, dmin: the block's first 4 bytes
    uint8_t sc[8], mn[8];
    unpack_scales_k4_all(b->scales, sc, mn);
    for (int j = 0; j < 8; ++j) u->mn[j] = int16_t(mn[j]);
    const D16 d16;
    const hn::Rebind<uint8_t, D16> d8;
    const size_t N = hn::Lanes(d16);
    const auto low4 = hn::Set(d16, 0xF);
    const auto bit4 = hn::Set(d16, 0x10);
    for (int c = 0; c < 4; ++c) {
      const auto s_lo = hn::Set(d16, int16_t(sc[2 * c])), s_hi = hn::Set(d16, int16_t(sc[2 * c + 1]));
      for (size_t l = 0; l < 32; l += N) {
        const auto raw = hn::PromoteTo(d16, hn::LoadU(d8, b->qs + 32 * c + l));
        const auto h = hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(d8, b->qh + l)), 2 * c);
        // The fifth bit moved to bit 4: (h >> 2c) << 4 and (h >> (2c + 1)) << 4.
        const auto h_lo = hn::And(hn::ShiftLeft<4>(h), bit4);
        const auto h_hi = hn::And(hn::ShiftLeft<3>(h), bit4);
        fn(64 * c + l, hn::Mul(hn::Or(hn::And(raw, low4), h_lo), s_lo));
        fn(64 * c + 32 + l, hn::Mul(hn::Or(hn::ShiftRight<4>(raw), h_hi), s_hi));
      }
    }
  }
};

}  // namespace

void DequantRowQ5K(const uint8_t* row, size_t K, float* out) {
  kq::Unpacked u;
  for (size_t b = 0; b < K / kQK_K; ++b) {
    kq::Unpack(VisitQ5K(), row + b * sizeof(BlockQ5_K), &u);
    kq::StoreQ45(u, out + b * kQK_K);
  }
}

void DotRowsQ5K(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const BlockQ8_K* x,
                int64_t n, size_t nb, float* y, size_t ys, const float* bias) {
  kq::DotRowsK<sizeof(BlockQ5_K), true>(
      VisitQ5K(),
      [](const uint8_t* wr, const BlockQ8_K* xr, int64_t k) {
        return dot_q5_K_q8_K(reinterpret_cast<const BlockQ5_K*>(wr), xr, k);
      },
      w, row_bytes, r0, r1, x, n, nb, y, ys, bias);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();
