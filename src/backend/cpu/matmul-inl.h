// Matrix multiplication y[n, rows] = x[n, cols] · Wᵀ (+ bias) for f32
// activations and F32/F16/BF16/Q8_0/Q4_0 weights, one copy per SIMD target
// (included from ops_dispatch.cpp under Highway's foreach_target).
//
// Two shapes of work, chosen by n:
//
//  * small n (decode, n <= kDotMaxN): "dot form". Each thread takes a range
//    of W rows; for a tile of NR rows and MR <= 4 rows of x it keeps MR x NR
//    f32 vector accumulators, decodes W in registers one vector at a time
//    (int8 / nibbles / halves -> f32, times the block scale) and FMAs it
//    against the MR x vectors; the accumulators are reduced across lanes at
//    the end. All passes over x run while a tile is in L1, so W is streamed
//    from memory exactly once.
//
//  * larger n (prefill): "outer-product form". x is first repacked into
//    panels of kXB rows, transposed so that panel[k][j] = x[i0 + j][k]
//    (zero-padded past n). Each thread takes blocks of kNB rows of W, decodes
//    them once to f32 into a per-thread tile (F32 weights are used in place),
//    and for every panel runs a micro-kernel over NR of those rows: per k it
//    loads kXV vectors of the panel and broadcasts W[r][k] for r < NR,
//    accumulating NR x kXV vectors, i.e. NR*kXB outputs with no horizontal
//    reductions. Each decoded weight is reused by all n rows of x.
//
// K-quant weights (Q4_K, Q5_K, Q6_K) take another dot form: x is quantized
// to Q8_K and each W row meets it in integer dot products (one file per type,
// matmul_q*_k.cpp, driver in kquant-inl.h), as llama.cpp does: their 4-6 bit
// levels times 6/8-bit sub-block scales are exact int16s, and an int16 pair
// product does twice the work of an f32 FMA. In the panel form they are
// dequantized to f32 by the same files (exactly core's dequantize_row values).
// Q4_0 does the same with x quantized to 8 bits in blocks of 32 (BlockQ8_0x,
// matmul_q4_0.cpp): widening its nibbles to f32 made decode compute-bound.
// On AVX2/AVX-512, Q4_0 and Q4_K prefill too multiply quantized x in
// integers, 8 W rows by 4 x rows per tile (matmul_q4_0.cpp, gemm_q4_k.cpp):
// 32 byte products per instruction against 8 f32 FMAs, which llama.cpp's
// repacked Q4_0/Q4_K kernels also use.
//
// Other quantized weights are dequantized to f32 (exactly the values of core's
// dequantize_row) rather than quantizing x to Q8 for integer dots: the
// result then differs from the f64 reference only by f32 summation order
// (no activation-quantization error), and with the decode amortised over a
// whole panel (prefill) or hidden under memory traffic (decode) the integer
// route had little left to win. Accumulation is in f32.

#if defined(KVSIEVE_BACKEND_CPU_MATMUL_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVSIEVE_BACKEND_CPU_MATMUL_INL_H_
#undef KVSIEVE_BACKEND_CPU_MATMUL_INL_H_
#else
#define KVSIEVE_BACKEND_CPU_MATMUL_INL_H_
#endif

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/kquant.h"
#include "core/q4_0_dot.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "backend/cpu/reduce-inl.h"
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace kvsieve {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace mm {

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
constexpr size_t kN = HWY_LANES(float);  // f32 lanes per vector on this target

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr bool kManyRegs = true;  // 32 vector registers
#else
constexpr bool kManyRegs = false;  // 16 (SSE4, AVX2) or a scalar fallback
#endif

// Dot form: at most kDotMR rows of x per pass; NR W rows per tile (more rows
// when n == 1, to keep enough independent accumulators).
constexpr size_t kDotMR = kManyRegs ? 4 : 2;
constexpr size_t kDotNR1 = 8;  // W rows per tile when n == 1
constexpr size_t kDotNR = 4;   // W rows per tile when n > 1
#if HWY_TARGET == HWY_SCALAR
constexpr int64_t kDotMaxN = int64_t(1) << 62;  // the panel path needs real vectors
#else
// Larger n takes the panel path. A panel costs the same for 1 or kXB rows of
// x, so the dot form wins below about 5 passes (measured on Zen 4: at n = 16
// four dot passes take 60% of the time of one 32-row panel).
constexpr int64_t kDotMaxN = kManyRegs ? 20 : 8;
#endif

// Dot form over a large matrix (decode): the row range is split into
// kDotChunksPerThread chunks per thread, claimed by whichever thread is free
// (the two threads of a decode step rarely get the same share of memory
// bandwidth, and with one chunk each the faster one waited for the slower),
// and each of a tile's NR weight streams is prefetched kDotPrefetch bytes
// ahead. Measured on the 2-core Zen VM, 1.1B Q8_0 decode: +8% from the
// chunks, +20% more from the prefetch (768 beat 512, 1024 and 1536).
constexpr int kDotChunksPerThread = 8;
constexpr size_t kDotPrefetch = 768;

// Outer-product form: panels of kXB = kXV vectors of x rows, NR = kNR W rows
// per micro-tile (kNR * kXV accumulators + kXV + 1 registers), W decoded in
// blocks of kNB rows that are reused across all panels.
constexpr size_t kXV = 2;
constexpr size_t kXB = kXV * kN;
constexpr size_t kNR = kManyRegs ? 8 : 6;
constexpr size_t kNB = 4 * kNR;

// f16 bits -> f32, exact for every input (subnormals by an exact power-of-two
// scaling, inf/nan passed through). Used for the tails of F16 rows.
HWY_INLINE float HalfToFloat(uint16_t h) {
  const uint32_t em = uint32_t(h & 0x7fff) << 13;
  uint32_t u;
  if ((h & 0x7c00) == 0x7c00) {
    u = em | 0x7f800000u;
  } else {
    float f;
    std::memcpy(&f, &em, 4);
    f *= 0x1p112f;
    std::memcpy(&u, &f, 4);
  }
  u |= uint32_t(h & 0x8000) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

// The f16 scale at the start of a block, broadcast to all lanes. One
// vcvtph2ps on AVX2/AVX3; Highway's emulation on SSE4 (exact for finite
// values, which block scales are).
HWY_INLINE VF BlockScale(DF d, const uint8_t* blk) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> dh;
  uint16_t h;
  std::memcpy(&h, blk, 2);
  return hn::PromoteTo(d, hn::BitCast(dh, hn::Set(du16, h)));
}

// ---- weight decoders: f32 vectors out of a row of W --------------------
// Plain types: Load(d, row, k) gives values k..k+kN; Scalar(row, k) one value.
// Blocked types: Load(d, block, j, ds) gives values j*kN..(j+1)*kN of the 32
// in the block, times ds = BlockScale(block).
template <DType T>
struct WDec;

template <>
struct WDec<DType::F32> {
  static constexpr bool kBlocked = false;
  static HWY_INLINE VF Load(DF d, const uint8_t* row, size_t k) {
    return hn::LoadU(d, reinterpret_cast<const float*>(row) + k);
  }
  static HWY_INLINE float Scalar(const uint8_t* row, size_t k) {
    float v;
    std::memcpy(&v, row + 4 * k, 4);
    return v;
  }
};

template <>
struct WDec<DType::F16> {
  static constexpr bool kBlocked = false;
  static HWY_INLINE VF Load(DF d, const uint8_t* row, size_t k) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + k));
  }
  static HWY_INLINE float Scalar(const uint8_t* row, size_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return HalfToFloat(h);
  }
};

template <>
struct WDec<DType::BF16> {
  static constexpr bool kBlocked = false;
  static HWY_INLINE VF Load(DF d, const uint8_t* row, size_t k) {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(d, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(row) + k));
  }
  static HWY_INLINE float Scalar(const uint8_t* row, size_t k) {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return bf16_to_f32(h);
  }
};

template <>
struct WDec<DType::Q8_0> {
  static constexpr bool kBlocked = true;
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static HWY_INLINE VF Load(DF d, const uint8_t* blk, size_t j, VF ds) {
    const hn::Rebind<int32_t, DF> di;
    const hn::Rebind<int8_t, DF> d8;
    const auto q = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(blk + 2) + j * kN));
    return hn::Mul(hn::ConvertTo(d, q), ds);  // d * float(q), as dequantize_row
  }
};

// The 4-bit codes of lanes [j·kN, (j+1)·kN) of a block whose 16 code bytes
// start at nib: values 0..15 are the low nibbles of nib[0..16), values
// 16..31 the high ones (Q4_0 and Q4_1 alike).
HWY_INLINE hn::Vec<hn::Rebind<int32_t, DF>> Nibbles(const uint8_t* nib, size_t j) {
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<uint8_t, DF> d8;
  const size_t first = j * kN;
  const auto b = hn::PromoteTo(di, hn::LoadU(d8, nib + (first & 15)));
  return first < 16 ? hn::And(b, hn::Set(di, 0xF)) : hn::ShiftRight<4>(b);
}

template <>
struct WDec<DType::Q4_0> {
  static constexpr bool kBlocked = true;
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static HWY_INLINE VF Load(DF d, const uint8_t* blk, size_t j, VF ds) {
    const hn::Rebind<int32_t, DF> di;
    const auto q = Nibbles(blk + 2, j);
    return hn::Mul(hn::ConvertTo(d, hn::Sub(q, hn::Set(di, 8))), ds);  // d * float(q - 8)
  }
};

template <>
struct WDec<DType::Q4_1> {
  static constexpr bool kBlocked = true;
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  // d * float(q) + m, the product rounded before the sum, as dequantize_row.
  static HWY_INLINE VF Load(DF d, const uint8_t* blk, size_t j, VF ds) {
    return hn::Add(hn::Mul(hn::ConvertTo(d, Nibbles(blk + 4, j)), ds), BlockScale(d, blk + 2));
  }
};

// Decodes a whole row of K values to f32 (out needs K floats).
template <DType T>
HWY_INLINE void DecodeRowPlain(const uint8_t* row, size_t K, float* HWY_RESTRICT out) {
  const DF d;
  using Dec = WDec<T>;
  if constexpr (Dec::kBlocked) {
    for (size_t b = 0; b < K / kQK; ++b) {
      const uint8_t* blk = row + b * Dec::kBytes;
      const VF ds = BlockScale(d, blk);
      for (size_t j = 0; j < kQK / kN; ++j) hn::StoreU(Dec::Load(d, blk, j, ds), d, out + b * kQK + j * kN);
    }
  } else {
    size_t k = 0;
    for (; k + kN <= K; k += kN) hn::StoreU(Dec::Load(d, row, k), d, out + k);
    for (; k < K; ++k) out[k] = Dec::Scalar(row, k);
  }
}

template <DType T>
HWY_INLINE void DecodeRow(const uint8_t* row, size_t K, float* HWY_RESTRICT out) {
  if constexpr (T == DType::Q4_K) {
    DequantRowQ4K(row, K, out);  // kquant_kernels.h; exactly dequantize_row's values
  } else if constexpr (T == DType::Q5_K) {
    DequantRowQ5K(row, K, out);
  } else if constexpr (T == DType::Q6_K) {
    DequantRowQ6K(row, K, out);
  } else {
    DecodeRowPlain<T>(row, K, out);
  }
}

// ---- dot form -------------------------------------------------------------
// sums[m][r] = lane sum of acc[m][r], four at a time where NR allows.
template <size_t MR, size_t NR>
HWY_INLINE void ReduceTile(DF d, const VF (&acc)[MR][NR], float (&sums)[MR][NR]) {
  for (size_t m = 0; m < MR; ++m) {
    if constexpr (NR % 4 == 0) {
      for (size_t r = 0; r < NR; r += 4)
        reduce::Sum4(d, acc[m][r], acc[m][r + 1], acc[m][r + 2], acc[m][r + 3], &sums[m][r]);
    } else {
      for (size_t r = 0; r < NR; ++r) sums[m][r] = hn::GetLane(hn::SumOfLanes(d, acc[m][r]));
    }
  }
}

// y[m*ys + r*rs] = Σ_k x[m*K + k] · W_r[k] (+ bias[r*rs]) for m < MR, r < NR,
// where W_r is the row at w + r*wstride (so W_r is row r*rs of the group).
// x, y and bias are already offset.
template <DType T, size_t MR, size_t NR>
HWY_NOINLINE void DotTile(const uint8_t* HWY_RESTRICT w, size_t wstride, size_t K,
                          const float* HWY_RESTRICT x, float* HWY_RESTRICT y, size_t ys,
                          size_t rs, const float* HWY_RESTRICT bias) {
  const DF d;
  using Dec = WDec<T>;
  VF acc[MR][NR];
  for (size_t m = 0; m < MR; ++m)
    for (size_t r = 0; r < NR; ++r) acc[m][r] = hn::Zero(d);
  float sums[MR][NR];

  if constexpr (Dec::kBlocked) {
    const size_t nb = K / kQK;
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * Dec::kBytes;
      if ((b & 1) == 0)  // every other block: a cache line per stream (Q8_0)
        for (size_t r = 0; r < NR; ++r) __builtin_prefetch(blk + r * wstride + kDotPrefetch);
      VF sc[NR];
      for (size_t r = 0; r < NR; ++r) sc[r] = BlockScale(d, blk + r * wstride);
      for (size_t j = 0; j < kQK / kN; ++j) {
        VF xv[MR];
        for (size_t m = 0; m < MR; ++m) xv[m] = hn::LoadU(d, x + m * K + b * kQK + j * kN);
        for (size_t r = 0; r < NR; ++r) {
          const VF wv = Dec::Load(d, blk + r * wstride, j, sc[r]);
          for (size_t m = 0; m < MR; ++m) acc[m][r] = hn::MulAdd(xv[m], wv, acc[m][r]);
        }
      }
    }
    ReduceTile<MR, NR>(d, acc, sums);
  } else {
    size_t k = 0;
    for (; k + kN <= K; k += kN) {
      VF xv[MR];
      for (size_t m = 0; m < MR; ++m) xv[m] = hn::LoadU(d, x + m * K + k);
      for (size_t r = 0; r < NR; ++r) {
        const VF wv = Dec::Load(d, w + r * wstride, k);
        for (size_t m = 0; m < MR; ++m) acc[m][r] = hn::MulAdd(xv[m], wv, acc[m][r]);
      }
    }
    ReduceTile<MR, NR>(d, acc, sums);
    for (; k < K; ++k) {
      for (size_t r = 0; r < NR; ++r) {
        const float wk = Dec::Scalar(w + r * wstride, k);
        for (size_t m = 0; m < MR; ++m) sums[m][r] += x[m * K + k] * wk;
      }
    }
  }
  for (size_t m = 0; m < MR; ++m)
    for (size_t r = 0; r < NR; ++r) y[m * ys + r * rs] = sums[m][r] + (bias ? bias[r * rs] : 0.0f);
}

// MR rows of x (x, y offset to them) against NR rows of W at stride rs rows,
// starting at row r; MR chosen at run time for the last pass over x.
template <DType T, size_t NR>
HWY_INLINE void DotPass(size_t mr, const uint8_t* w, size_t wstride, size_t K, const float* x,
                        float* y, size_t ys, size_t rs, const float* bias) {
  switch (mr) {
    case 1: return DotTile<T, 1, NR>(w, wstride, K, x, y, ys, rs, bias);
    case 2: return DotTile<T, 2, NR>(w, wstride, K, x, y, ys, rs, bias);
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    case 3: return DotTile<T, 3, NR>(w, wstride, K, x, y, ys, rs, bias);
    case 4: return DotTile<T, 4, NR>(w, wstride, K, x, y, ys, rs, bias);
#endif
  }
  HWY_ASSERT(false);
}

// Rows [r0, r1) of W against all n rows of x, in passes of kDotMR x rows.
// The range is cut into NR equal stripes of S rows and a tile takes the t-th
// row of every stripe: each of the NR weight streams then runs through S
// consecutive rows of memory, long enough for the hardware prefetchers
// (NR adjacent rows of a Q8_0 matrix with 768 columns would be NR streams of
// only 13 cache lines each, and single-thread decode of a large matrix ran at
// less than half the speed). All passes over x run on a tile while its
// weights are in L1, so W leaves memory once whatever n is.
template <DType T, size_t NR>
HWY_INLINE void DotRows(const TensorView& W, size_t row_bytes, size_t K, int64_t r0, int64_t r1,
                        const float* x, int64_t n, float* y, size_t ys, const float* bias) {
  const int64_t S = (r1 - r0) / int64_t(NR);
  for (int64_t t = 0; t < S; ++t) {
    const int64_t r = r0 + t;
    for (int64_t i = 0; i < n; i += int64_t(kDotMR))
      DotPass<T, NR>(size_t(std::min<int64_t>(int64_t(kDotMR), n - i)), W.row_ptr(r),
                     size_t(S) * row_bytes, K, x + i * int64_t(K), y + i * int64_t(ys) + r, ys,
                     size_t(S), bias ? bias + r : nullptr);
  }
  for (int64_t r = r0 + S * int64_t(NR); r < r1; ++r)
    for (int64_t i = 0; i < n; i += int64_t(kDotMR))
      DotPass<T, 1>(size_t(std::min<int64_t>(int64_t(kDotMR), n - i)), W.row_ptr(r), row_bytes,
                    K, x + i * int64_t(K), y + i * int64_t(ys) + r, ys, 1, bias ? bias + r : nullptr);
}

// ---- outer-product form ---------------------------------------------------

// A growable 64-byte aligned f32 buffer, one per thread and target.
struct Scratch {
  hwy::AlignedFreeUniquePtr<float[]> p;
  size_t cap = 0;
  float* get(size_t n) {
    if (n > cap) {
      p = hwy::AllocateAligned<float>(n);
      cap = n;
    }
    return p.get();
  }
};

// NR rows of f32 weights (w, row stride ws floats) against one panel
// [K][kXB] of x rows: out[j*os + r] = Σ_k w[r*ws + k] · panel[k][j] for all
// kXB panel rows j.
template <size_t NR>
HWY_NOINLINE void OuterTile(const float* HWY_RESTRICT w, size_t ws, size_t K,
                            const float* HWY_RESTRICT panel, float* HWY_RESTRICT out, size_t os) {
  const DF d;
  VF acc[NR][kXV];
  for (size_t r = 0; r < NR; ++r)
    for (size_t v = 0; v < kXV; ++v) acc[r][v] = hn::Zero(d);
  for (size_t k = 0; k < K; ++k) {
    VF xv[kXV];
    for (size_t v = 0; v < kXV; ++v) xv[v] = hn::Load(d, panel + k * kXB + v * kN);
    for (size_t r = 0; r < NR; ++r) {
      const VF wb = hn::Set(d, w[r * ws + k]);
      for (size_t v = 0; v < kXV; ++v) acc[r][v] = hn::MulAdd(wb, xv[v], acc[r][v]);
    }
  }
  HWY_ALIGN float tmp[kXB];
  for (size_t r = 0; r < NR; ++r) {
    for (size_t v = 0; v < kXV; ++v) hn::Store(acc[r][v], d, tmp + v * kN);
    for (size_t j = 0; j < kXB; ++j) out[j * os + r] = tmp[j];
  }
}

template <DType T>
void MatmulPanels(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
                  const float* bias) {
  const int64_t rows = W.rows();
  const size_t K = size_t(W.cols());
  const size_t n_panels = (size_t(n) + kXB - 1) / kXB;

  // panels [n_panels][K][kXB]: panel p holds x rows p*kXB .. p*kXB+kXB-1, transposed.
  static thread_local Scratch panel_buf;
  float* panels = panel_buf.get(n_panels * K * kXB);
  pool.parallel_for(int64_t(n_panels), [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      float* dst = panels + size_t(p) * K * kXB;
      for (size_t j = 0; j < kXB; ++j) {
        const int64_t i = p * int64_t(kXB) + int64_t(j);
        if (i < n) {
          const float* src = x + i * int64_t(K);
          for (size_t k = 0; k < K; ++k) dst[k * kXB + j] = src[k];
        } else {
          for (size_t k = 0; k < K; ++k) dst[k * kXB + j] = 0.0f;
        }
      }
    }
  });

  const int64_t n_blocks = (rows + int64_t(kNB) - 1) / int64_t(kNB);
  // Blocks in chunks claimed by whichever thread is free: a thread that the
  // OS runs less (a machine shared with other work) takes fewer of them.
  // Each block's rows are computed whole by one call: the same results.
  pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int) {
    static thread_local Scratch tile_buf;
    float* tile = nullptr;
    if constexpr (T != DType::F32) tile = tile_buf.get(kNB * K);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * int64_t(kNB);
      const int64_t nr = std::min<int64_t>(int64_t(kNB), rows - r0);
      const float* wf;
      if constexpr (T == DType::F32) {
        wf = reinterpret_cast<const float*>(W.row_ptr(r0));
      } else {
        for (int64_t r = 0; r < nr; ++r) DecodeRow<T>(W.row_ptr(r0 + r), K, tile + size_t(r) * K);
        wf = tile;
      }
      for (size_t p = 0; p < n_panels; ++p) {
        const float* panel = panels + p * K * kXB;
        // The block's outputs for this panel, yb[j][r], gathered here first:
        // written straight into y, the kXB rows of y (a stride of `rows`
        // floats, often a multiple of 4 KiB) fell into the same L1 sets and
        // were evicted between the partial writes of the micro-tiles.
        HWY_ALIGN float yb[kXB * kNB];
        int64_t r = 0;
        for (; r + int64_t(kNR) <= nr; r += kNR)
          OuterTile<kNR>(wf + size_t(r) * K, K, K, panel, yb + r, kNB);
        for (; r < nr; ++r) OuterTile<1>(wf + size_t(r) * K, K, K, panel, yb + r, kNB);
        const size_t i0 = p * kXB;
        const size_t valid = std::min(kXB, size_t(n) - i0);
        for (size_t j = 0; j < valid; ++j) {
          float* yr = y + (i0 + j) * size_t(rows) + size_t(r0);
          const float* src = yb + j * kNB;
          if (bias) {
            for (int64_t c = 0; c < nr; ++c) yr[c] = src[c] + bias[r0 + c];
          } else {
            for (int64_t c = 0; c < nr; ++c) yr[c] = src[c];
          }
        }
      }
    }
  }, 1, kDotChunksPerThread * pool.size());
}

// quantize_row_q8_K of core, vectorized on AVX-512 and AVX2 (the scalar loop calls
// nearbyintf per value: 5% of a 1.1B Q4_K_M decode step). The same values
// bit for bit: the same amax (NaN ignored as std::max does), the same id,
// one rounded product per value, converted with the current rounding mode
// (nearest-even, as nearbyint), clamped to ±127.
HWY_INLINE void QuantizeRowQ8K(const float* x, BlockQ8_K* y, int64_t n) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    __m512 m = _mm512_setzero_ps();
    // max(|x|, m): maxps returns its second operand when the first is NaN.
    for (int v = 0; v < kQK_K; v += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb + v)), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float d = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    y[i].d = d;
    const __m512 vid = _mm512_set1_ps(id);
    for (int g = 0; g < kQK_K / 16; ++g) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * g), vid));
      q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * g), _mm512_cvtepi32_epi8(q));
      y[i].bsums[g] = int16_t(_mm512_reduce_add_epi32(q));
    }
  }
#elif HWY_TARGET == HWY_AVX2
  // The same at 256 bits (prefill quantizes every row of a prompt).
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* xb = x + i * kQK_K;
    __m256 m = _mm256_setzero_ps();
    for (int v = 0; v < kQK_K; v += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + v)), m);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    y[i].d = amax / 127.0f;
    const __m256 vid = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    for (int g = 0; g < kQK_K / 16; ++g) {  // 16 values: one bsum
      const __m256i q0 = _mm256_min_epi32(
          _mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 16 * g), vid)), lo), hi);
      const __m256i q1 = _mm256_min_epi32(
          _mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 16 * g + 8), vid)), lo), hi);
      // int32 -> int8 (|q| <= 127) within 128-bit lanes: words 0, 1 of lane 0
      // hold values 0..3, 8..11; of lane 1, values 4..7, 12..15.
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_setzero_si256());
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[i].qs + 16 * g),
                       _mm_unpacklo_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
      const __m256i s8 = _mm256_add_epi32(q0, q1);
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      y[i].bsums[g] = int16_t(_mm_cvtsi128_si32(s4));
    }
  }
#else
  quantize_row_q8_K(x, y, n);
#endif
}

// Rows [r0, r1) of one product in the dot form. xq: x quantized to Q8_K
// ([n][K/256] blocks; K-quant weights only), xq0: to Q8_0x ([n][K/32]
// blocks; Q4_0 weights only), see MatmulsDot.
template <DType T>
HWY_INLINE void DotRange(const TensorView& W, const float* x, const BlockQ8_K* xq, const BlockQ8_0x* xq0,
                         int64_t n, float* y, const float* bias, int64_t r0, int64_t r1) {
  const size_t ys = size_t(W.rows());
  const size_t K = size_t(W.cols());
  const size_t row_bytes = dtype_row_bytes(T, int64_t(K));
  if constexpr (is_kquant(T)) {
    const auto* w = static_cast<const uint8_t*>(W.data);
    const size_t nb = K / kQK_K;
    if constexpr (T == DType::Q4_K) DotRowsQ4K(w, row_bytes, r0, r1, xq, n, nb, y, ys, bias);
    if constexpr (T == DType::Q5_K) DotRowsQ5K(w, row_bytes, r0, r1, xq, n, nb, y, ys, bias);
    if constexpr (T == DType::Q6_K) DotRowsQ6K(w, row_bytes, r0, r1, xq, n, nb, y, ys, bias);
  } else if constexpr (T == DType::Q4_0) {
    DotRowsQ4_0(static_cast<const uint8_t*>(W.data), row_bytes, r0, r1, xq0, n, K / kQK, y, ys, bias);
  } else if (n == 1) {
    DotRows<T, kDotNR1>(W, row_bytes, K, r0, r1, x, n, y, ys, bias);
  } else {
    DotRows<T, kDotNR>(W, row_bytes, K, r0, r1, x, n, y, ys, bias);
  }
}

HWY_INLINE void DotRangeAny(const TensorView& W, const float* x, const BlockQ8_K* xq, const BlockQ8_0x* xq0,
                            int64_t n, float* y, const float* bias, int64_t r0, int64_t r1) {
  switch (W.type) {
    case DType::F32: return DotRange<DType::F32>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::F16: return DotRange<DType::F16>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::BF16: return DotRange<DType::BF16>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q8_0: return DotRange<DType::Q8_0>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q4_0: return DotRange<DType::Q4_0>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q4_1: return DotRange<DType::Q4_1>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q4_K: return DotRange<DType::Q4_K>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q5_K: return DotRange<DType::Q5_K>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q6_K: return DotRange<DType::Q6_K>(W, x, xq, xq0, n, y, bias, r0, r1);
    case DType::Q8_K: break;
  }
  HWY_ASSERT(false);
}

// The dot form of one or more products sharing x (n <= kDotMaxN): their rows
// are one range, split into chunks claimed by whichever thread is free, so
// a layer's q/k/v (or gate/up) products cost one pass of the pool instead of
// three. For K-quant weights x is quantized to Q8_K ([n][K/256] blocks, kept
// per thread), for Q4_0 weights to Q8_0x ([n][K/32] blocks), by every thread
// itself, once per call, when it runs its first chunk, rather than by the
// caller alone while the others wait. K-quant
// products take one chunk per thread: each chunk starts a new prefetch
// stream (and Q4_K reorders x for it), and 1.1B Q4_K_M decode ran 3-10%
// slower with 4 or 8 chunks per thread (paired rounds on the 2-core VM).
HWY_INLINE void MatmulsDot(const MatmulOut* outs, size_t count, const float* x, int64_t n, ThreadPool& pool) {
  const int64_t K = outs[0].W->cols();
  // The products' rows are split by their bytes (q/k/v mix Q4_K and Q6_K
  // rows): the loop runs over units of kUnit bytes, and a row belongs to
  // the chunk holding its first byte.
  constexpr int64_t kUnit = 64;
  int64_t total = 0;
  bool kquant = false, all_kquant = true, q4_0 = false;
  for (size_t j = 0; j < count; ++j) {
    total += outs[j].W->rows() * int64_t(dtype_row_bytes(outs[j].W->type, K));
    kquant = kquant || is_kquant(outs[j].W->type);
    all_kquant = all_kquant && is_kquant(outs[j].W->type);
    q4_0 = q4_0 || outs[j].W->type == DType::Q4_0;
  }
  const int64_t units = (total + kUnit - 1) / kUnit;
  const size_t nb = size_t(K / kQK_K);
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;
  pool.parallel_for(
      units,
      [&](int64_t a, int64_t b, int) {
        static thread_local std::vector<BlockQ8_K> xq;
        static thread_local std::vector<BlockQ8_0x> xq0;
        static thread_local uint64_t xq_call = 0;
        if (xq_call != call) {
          if (kquant) {
            if (xq.size() < size_t(n) * nb) xq.resize(size_t(n) * nb);
            for (int64_t i = 0; i < n; ++i) QuantizeRowQ8K(x + i * K, xq.data() + size_t(i) * nb, K);
          }
          if (q4_0) {
            const size_t nb0 = size_t(K / kQK);
            if (xq0.size() < size_t(n) * nb0) xq0.resize(size_t(n) * nb0);
            for (int64_t i = 0; i < n; ++i) QuantizeRowQ8_0x(x + i * K, xq0.data() + size_t(i) * nb0, K);
          }
          xq_call = call;
        }
        int64_t first = 0;  // byte of the range where outs[j] begins
        for (size_t j = 0; j < count && first < b * kUnit; ++j) {
          const MatmulOut& o = outs[j];
          const int64_t rows = o.W->rows(), rb = int64_t(dtype_row_bytes(o.W->type, K));
          // The rows whose first byte lies in [a, b) units.
          auto row_at = [&](int64_t byte) { return std::clamp<int64_t>((byte - first + rb - 1) / rb, 0, rows); };
          const int64_t r0 = row_at(a * kUnit), r1 = row_at(b * kUnit);
          if (r0 < r1) DotRangeAny(*o.W, x, xq.data(), xq0.data(), n, o.y, o.bias, r0, r1);
          first += rows * rb;
        }
      },
      // Chunks of at least 64 KiB so small matrices stay on one thread.
      (64 << 10) / kUnit, all_kquant ? pool.size() : kDotChunksPerThread * pool.size());
}

template <DType T>
void MatmulT(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
             const float* bias) {
  if (n <= kDotMaxN) {
    const MatmulOut o{&W, y, bias};
    return MatmulsDot(&o, 1, x, n, pool);
  }
  if constexpr (T == DType::Q4_0) {
    // Integer tiles where the target has them (matmul_q4_0.cpp), else f32 panels.
    if (GemmQ4_0(static_cast<const uint8_t*>(W.data), dtype_row_bytes(T, W.cols()), W.rows(), x, n,
                 size_t(W.cols()), y, pool, bias))
      return;
    return MatmulPanels<T>(W, x, n, y, pool, bias);
  }
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (T == DType::Q4_K) {
    // Integer tiles (gemm_q4_k.cpp) on x quantized to Q8_K ([n][K/256]
    // blocks), the rows quantized by all threads.
    const int64_t K = W.cols();
    const size_t nb = size_t(K / kQK_K);
    static thread_local std::vector<BlockQ8_K> xq;
    if (xq.size() < size_t(n) * nb) xq.resize(size_t(n) * nb);
    BlockQ8_K* xqp = xq.data();
    pool.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) QuantizeRowQ8K(x + i * K, xqp + size_t(i) * nb, K);
    });
    if (GemmQ4K(static_cast<const uint8_t*>(W.data), dtype_row_bytes(T, K), W.rows(), xqp, n, nb, y, pool, bias))
      return;
  }
#endif
  if constexpr (is_kquant(T)) {
    // Whole panels and a partial one (zero rows cost a little) above kDotMaxN.
    return MatmulPanels<T>(W, x, n, y, pool, bias);
  } else {
    // Whole panels, then the last n % kXB rows by the dot form when that is
    // cheaper than a mostly empty panel.
    const int64_t rem = n % int64_t(kXB);
    if (rem == 0 || rem > kDotMaxN) return MatmulPanels<T>(W, x, n, y, pool, bias);
    const int64_t main = n - rem;
    MatmulPanels<T>(W, x, main, y, pool, bias);
    const MatmulOut o{&W, y + main * W.rows(), bias};
    MatmulsDot(&o, 1, x + main * W.cols(), rem, pool);
  }
}

}  // namespace mm

// Throws Error unless W can be multiplied by n rows of x.
inline void CheckMatmul(const TensorView& W, int64_t n) {
  const int64_t rows = W.rows(), cols = W.cols();
  check(n >= 0, "matmul {}: negative row count {}", W.name, n);
  check(W.shape.size() >= 1 && rows >= 0 && cols >= 0, "matmul {}: bad shape {}", W.name,
        shape_str(W.shape));
  check(cols % dtype_block_size(W.type) == 0,
        "matmul {}: row length {} is not a multiple of the {} block size", W.name, cols,
        dtype_name(W.type));
  if (n == 0 || rows == 0) return;
  const size_t need = size_t(rows) * dtype_row_bytes(W.type, cols);
  check(W.data != nullptr && (W.nbytes == 0 || W.nbytes >= need),
        "matmul {}: weight data missing or smaller than its shape {}", W.name, shape_str(W.shape));
}

void Matmul(const TensorView& W, const float* x, int64_t n, float* y, ThreadPool& pool,
            const float* bias) {
  CheckMatmul(W, n);
  if (n == 0 || W.rows() == 0) return;
  switch (W.type) {
    case DType::F32: return mm::MatmulT<DType::F32>(W, x, n, y, pool, bias);
    case DType::F16: return mm::MatmulT<DType::F16>(W, x, n, y, pool, bias);
    case DType::BF16: return mm::MatmulT<DType::BF16>(W, x, n, y, pool, bias);
    case DType::Q8_0: return mm::MatmulT<DType::Q8_0>(W, x, n, y, pool, bias);
    case DType::Q4_0: return mm::MatmulT<DType::Q4_0>(W, x, n, y, pool, bias);
    case DType::Q4_1: return mm::MatmulT<DType::Q4_1>(W, x, n, y, pool, bias);
    case DType::Q4_K: return mm::MatmulT<DType::Q4_K>(W, x, n, y, pool, bias);
    case DType::Q5_K: return mm::MatmulT<DType::Q5_K>(W, x, n, y, pool, bias);
    case DType::Q6_K: return mm::MatmulT<DType::Q6_K>(W, x, n, y, pool, bias);
    case DType::Q8_K: break;  // activations only
  }
  fail("matmul {}: unsupported weight type {}", W.name, uint32_t(W.type));
}

// Several products of the same x: one pass of the pool over all their rows
// in the dot form (decode); otherwise one Matmul each.
void Matmuls(const MatmulOut* outs, size_t count, const float* x, int64_t n, ThreadPool& pool) {
  bool fuse = count > 1 && n <= mm::kDotMaxN;
  for (size_t j = 0; j < count; ++j) {
    const TensorView& W = *outs[j].W;
    CheckMatmul(W, n);
    const bool known = W.type == DType::F32 || W.type == DType::F16 || W.type == DType::BF16 ||
                       W.type == DType::Q8_0 || W.type == DType::Q4_0 || W.type == DType::Q4_1 ||
                       is_kquant(W.type);
    fuse = fuse && known && W.cols() == outs[0].W->cols();
  }
  if (n == 0) return;
  if (!fuse) {
    for (size_t j = 0; j < count; ++j) Matmul(*outs[j].W, x, n, outs[j].y, pool, outs[j].bias);
    return;
  }
  mm::MatmulsDot(outs, count, x, n, pool);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvsieve
HWY_AFTER_NAMESPACE();

#endif  // KVSIEVE_BACKEND_CPU_MATMUL_INL_H_
