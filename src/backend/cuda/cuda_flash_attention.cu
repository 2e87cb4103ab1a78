// Prefill attention on the tensor cores (GpuMath::kTensor) over a 16-bit
// cache, FlashAttention-2 style: the n x rows matrix of scores never exists.
// It uses the mma.sync instruction, whose register layouts the PTX ISA
// documents, so scores, probabilities and output stay in registers (a first
// version on wmma, whose fragments are opaque, had to rescale O in shared
// memory). A block takes 128 queries of one head (64 with
// KVSIEVE_FLASH_BM=64, to compare), 16 per warp; per step
// of 64 cached rows (K and V staged in shared memory):
//   S = Q·Kᵀ (m16n8k16, f32 accumulation; Q in registers for the whole run),
//   mask, online softmax in f32 on S's registers (log2 units, exp2),
//   O = O·corr + P·V, P packed to 16 bits straight from S's registers (the
//   accumulator layout of m16n8 is the A layout of the next product), V
//   read transposed by ldmatrix.
// Lane layout (PTX ISA, m16n8k16): g = lane / 4 and c = lane % 4; a lane
// holds rows g and g + 8 of the warp's 16 queries, columns 2c, 2c + 1 of
// each 8-wide tile. Rows a query may not see (pos > its position, or past
// the head's count) get probability 0; a step that no query of a warp sees
// is skipped by that warp.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/cuda_kernels.h"

namespace kvsieve::cuda {
namespace {

constexpr int kBN = 64;   // cached rows per step
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// d += a · b for a 16x16 A (row-major), a 16x8 B (column-major), f32 d.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Four 8x8 16-bit matrices from shared memory, transposed: lane i gives the
// address of row i % 8 of matrix i / 8.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                                  uint32_t& r3, const void* row) {
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// 16 bytes global -> shared without a register stop (cp.async); src_bytes 0
// writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem),
               "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <int HD>
constexpr size_t flash_smem_bytes(bool pipe) {
  return size_t(pipe ? 2 : 1) * 2 * kBN * (HD + 8) * 2;
}

// kBM queries per block (16 per warp): 128 halves the K and V staged per
// query against 64. kPipe: two K/V buffers, the next step's rows copied in
// (cp.async) while this step's are used; else one, loaded, then used.
// Shared memory: flash_smem_bytes (dynamic).
template <typename T, int HD, int kBM, bool kPipe>
__global__ void __launch_bounds__(kBM / 16 * 32)
    flash_mma_kernel(KvDev kv, const float* q, const int32_t* q_pos, int64_t n, int64_t n_head,
                     float* out, float* m_out, float* l_out, int n_split, float* part) {
  constexpr int kLd = HD + 8;  // shared row in T: 16 bytes of padding against bank conflicts
  constexpr int kKT = HD / 16, kNT = HD / 8, kST = kBN / 8;
  extern __shared__ __align__(16) uint8_t flash_smem[];
  T* const Kbuf = reinterpret_cast<T*>(flash_smem);  // [kPipe ? 2 : 1][kBN * kLd]
  T* const Vbuf = Kbuf + (kPipe ? 2 : 1) * kBN * kLd;

  // The last query tiles see the most rows: they go first, so the grid does
  // not end on a few long blocks.
  const int64_t h = blockIdx.y, t0 = int64_t(gridDim.x - 1 - blockIdx.x) * kBM;
  const int64_t s = h / (n_head / kv.n_stored);
  const int32_t* pos = kv.pos + s * kv.capacity;
  const int64_t rows = kv_rows(kv, s);
  const T* K = static_cast<const T*>(kv.k) + size_t(s * kv.capacity) * HD;
  const T* V = static_cast<const T*>(kv.v) + size_t(s * kv.capacity) * HD;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, c = lane % 4;
  const int64_t ta = t0 + warp * 16 + g, tb = ta + 8;  // this lane's two queries
  const int seen_a = ta < n ? int(visible(pos, rows, query_pos(kv, q_pos, ta))) : 0;
  const int seen_b = tb < n ? int(visible(pos, rows, query_pos(kv, q_pos, tb))) : 0;
  // Positions increase along the batch: the block's last query sees most.
  const int64_t t_last = min(n, t0 + kBM) - 1;
  const int j_end = int(visible(pos, rows, query_pos(kv, q_pos, t_last)));
  // Split z of n_split takes its share of the block's steps (few query tiles
  // over a long cache: the splits fill the GPU, attention_merge adds them up).
  const int steps = (j_end + kBN - 1) / kBN, per = (steps + n_split - 1) / n_split;
  const int j_begin = min(j_end, int(blockIdx.z) * per * kBN);
  const int j_stop = min(j_end, (int(blockIdx.z) + 1) * per * kBN);

  // Q scaled by log2(e)/sqrt(HD), as A fragments for every 16 of its dims.
  uint32_t qf[kKT][4];
  {
    const float qs = kLog2e / sqrtf(float(HD));
    const float2 zero = make_float2(0.0f, 0.0f);
    const float* qa = q + (ta * n_head + h) * HD;
    const float* qb = q + (tb * n_head + h) * HD;
#pragma unroll
    for (int kt = 0; kt < kKT; ++kt) {
      const int d = kt * 16 + 2 * c;
      const float2 a0 = ta < n ? *reinterpret_cast<const float2*>(qa + d) : zero;
      const float2 a1 = tb < n ? *reinterpret_cast<const float2*>(qb + d) : zero;
      const float2 a2 = ta < n ? *reinterpret_cast<const float2*>(qa + d + 8) : zero;
      const float2 a3 = tb < n ? *reinterpret_cast<const float2*>(qb + d + 8) : zero;
      qf[kt][0] = pack2<T>(a0.x * qs, a0.y * qs);
      qf[kt][1] = pack2<T>(a1.x * qs, a1.y * qs);
      qf[kt][2] = pack2<T>(a2.x * qs, a2.y * qs);
      qf[kt][3] = pack2<T>(a3.x * qs, a3.y * qs);
    }
  }
  float o[kNT][4];
#pragma unroll
  for (int i = 0; i < kNT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;  // l: this lane's share

  constexpr int kPerRow = HD / 8;  // 16-byte pieces of a row
  // Rows [j0, j0 + kBN) into buffer b (rows past the head: zeros, never NaN).
  auto stage = [&](int j0, int b) {
    T* Kd = Kbuf + b * kBN * kLd;
    T* Vd = Vbuf + b * kBN * kLd;
    for (int i = tid; i < kBN * kPerRow; i += blockDim.x) {
      const int r = i / kPerRow, d = (i % kPerRow) * 8;
      const bool in = j0 + r < rows;
      const size_t at = size_t(in ? j0 + r : 0) * HD + d;
      if constexpr (kPipe) {
        cp_async16(Kd + r * kLd + d, K + at, in ? 16 : 0);
        cp_async16(Vd + r * kLd + d, V + at, in ? 16 : 0);
      } else {
        uint4 kk = make_uint4(0, 0, 0, 0), vv = kk;
        if (in) {
          kk = *reinterpret_cast<const uint4*>(K + at);
          vv = *reinterpret_cast<const uint4*>(V + at);
        }
        *reinterpret_cast<uint4*>(Kd + r * kLd + d) = kk;
        *reinterpret_cast<uint4*>(Vd + r * kLd + d) = vv;
      }
    }
    if constexpr (kPipe) cp_async_commit();
  };
  if constexpr (kPipe) {
    if (j_begin < j_stop) stage(j_begin, 0);
  }
  for (int j0 = j_begin, step = 0; j0 < j_stop; j0 += kBN, ++step) {
    const int b = kPipe ? step & 1 : 0;
    if constexpr (kPipe) {
      if (j0 + kBN < j_stop) {
        stage(j0 + kBN, b ^ 1);  // the buffer the previous step used: every warp left it
        cp_async_wait<1>();      // this step's rows are in
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
    } else {
      __syncthreads();  // every warp is done with the previous K and V
      stage(j0, 0);
      __syncthreads();
    }
    const T* Ks = Kbuf + b * kBN * kLd;
    const T* Vs = Vbuf + b * kBN * kLd;
    const bool any = __any_sync(0xffffffffu, seen_a > j0 || seen_b > j0);
    if (any) {
      float sc[kST][4];
#pragma unroll
      for (int i = 0; i < kST; ++i) sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.0f;
#pragma unroll
      for (int kt = 0; kt < kKT; ++kt) {
#pragma unroll
        for (int nt = 0; nt < kST; ++nt) {
          // B = Kᵀ: the lane's pairs are K[row nt*8 + g][dims 2c, 2c+1 (+8)].
          const T* kr = Ks + (nt * 8 + g) * kLd + kt * 16 + 2 * c;
          mma16816<T>(sc[nt], qf[kt], *reinterpret_cast<const uint32_t*>(kr),
                      *reinterpret_cast<const uint32_t*>(kr + 8));
        }
      }
      float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kST; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = j0 + nt * 8 + 2 * c + e;
          if (j >= seen_a) sc[nt][e] = -INFINITY;
          if (j >= seen_b) sc[nt][2 + e] = -INFINITY;
          mx_a = fmaxf(mx_a, sc[nt][e]);
          mx_b = fmaxf(mx_b, sc[nt][2 + e]);
        }
      }
      // The 4 lanes of a row group hold its 64 columns.
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
      const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
      // A row that has seen nothing yet keeps m = -inf, l = 0 and O = 0.
      const float corr_a = m_a == -INFINITY ? 0.0f : exp2f(m_a - mn_a);
      const float corr_b = m_b == -INFINITY ? 0.0f : exp2f(m_b - mn_b);
      m_a = mn_a;
      m_b = mn_b;
      float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kST; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          sc[nt][e] = mn_a == -INFINITY ? 0.0f : exp2f(sc[nt][e] - mn_a);
          sc[nt][2 + e] = mn_b == -INFINITY ? 0.0f : exp2f(sc[nt][2 + e] - mn_b);
          sum_a += sc[nt][e];
          sum_b += sc[nt][2 + e];
        }
      }
      l_a = l_a * corr_a + sum_a;
      l_b = l_b * corr_b + sum_b;
#pragma unroll
      for (int i = 0; i < kNT; ++i) {
        o[i][0] *= corr_a;
        o[i][1] *= corr_a;
        o[i][2] *= corr_b;
        o[i][3] *= corr_b;
      }
      // O += P·V over 16 rows at a time; P's A fragment is two S tiles.
      const int mi = lane / 8, ri = lane % 8;
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        const uint32_t pa[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]),
                                pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                                pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                                pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
        // Matrix mi: rows kk*16 + (mi & 1)*8 .., dims np*16 + (mi >> 1)*8 ..
        const T* vrow = Vs + (kk * 16 + (mi & 1) * 8 + ri) * kLd + (mi >> 1) * 8;
#pragma unroll
        for (int np = 0; np < kNT / 2; ++np) {
          uint32_t b0, b1, b2, b3;
          ldmatrix_x4_trans(b0, b1, b2, b3, vrow + np * 16);
          mma16816<T>(o[2 * np], pa, b0, b1);
          mma16816<T>(o[2 * np + 1], pa, b2, b3);
        }
      }
    }  // any
    if constexpr (kPipe) __syncthreads();  // buffer b is refilled by the next step's stage
  }

  l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
  l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
  if (n_split > 1) {  // unnormalised, for attention_merge: [m (natural units), l, O]
    constexpr int kStride = HD + 2;
    float* pa = part + ((ta * n_head + h) * n_split + blockIdx.z) * kStride;
    float* pb = part + ((tb * n_head + h) * n_split + blockIdx.z) * kStride;
#pragma unroll
    for (int i = 0; i < kNT; ++i) {
      const int d = i * 8 + 2 * c;
      if (ta < n) {
        pa[2 + d] = o[i][0];
        pa[3 + d] = o[i][1];
      }
      if (tb < n) {
        pb[2 + d] = o[i][2];
        pb[3 + d] = o[i][3];
      }
    }
    if (c == 0) {
      if (ta < n) {
        pa[0] = m_a == -INFINITY ? -INFINITY : m_a / kLog2e;
        pa[1] = l_a;
      }
      if (tb < n) {
        pb[0] = m_b == -INFINITY ? -INFINITY : m_b / kLog2e;
        pb[1] = l_b;
      }
    }
    return;
  }
  const float ia = l_a > 0.0f ? 1.0f / l_a : 0.0f, ib = l_b > 0.0f ? 1.0f / l_b : 0.0f;
#pragma unroll
  for (int i = 0; i < kNT; ++i) {
    const int d = i * 8 + 2 * c;
    if (ta < n)
      *reinterpret_cast<float2*>(out + (ta * n_head + h) * HD + d) =
          make_float2(o[i][0] * ia, o[i][1] * ia);
    if (tb < n)
      *reinterpret_cast<float2*>(out + (tb * n_head + h) * HD + d) =
          make_float2(o[i][2] * ib, o[i][3] * ib);
  }
  if (m_out && c == 0) {  // natural units, as attention()'s
    if (ta < n) {
      m_out[ta * n_head + h] = m_a / kLog2e;
      l_out[ta * n_head + h] = l_a;
    }
    if (tb < n) {
      m_out[tb * n_head + h] = m_b / kLog2e;
      l_out[tb * n_head + h] = l_b;
    }
  }
}

template <typename T, int HD>
void launch(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n, int64_t n_head,
            float* out, float* m_out, float* l_out, int n_split, float* part, cudaStream_t s) {
  // KVSIEVE_FLASH: "64" / "128" (queries per block, one buffer) or "128p"
  // (two buffers, cp.async); for comparing them.
  static const int variant = [] {
    const char* e = std::getenv("KVSIEVE_FLASH");
    const std::string v = e ? e : "128p";
    return v == "64" ? 0 : v == "128" ? 1 : 2;
  }();
  static const bool opted_in = [] {  // over 48 KiB of shared memory must be asked for
    return cudaFuncSetAttribute(flash_mma_kernel<T, HD, 128, true>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                int(flash_smem_bytes<HD>(true))) == cudaSuccess;
  }();
  (void)opted_in;  // a refusal shows as the launch's error
  auto go = [&](auto kernel, int bm, bool pipe) {
    const size_t smem = flash_smem_bytes<HD>(pipe);
    const dim3 grid(unsigned(ceil_div(n, bm)), unsigned(n_head), unsigned(n_split));
    kernel<<<grid, bm / 16 * 32, smem, s>>>(kv, q, q_pos, n, n_head, out, m_out, l_out, n_split,
                                            part);
  };
  if (variant == 0) go(flash_mma_kernel<T, HD, 64, false>, 64, false);
  else if (variant == 1) go(flash_mma_kernel<T, HD, 128, false>, 128, false);
  else go(flash_mma_kernel<T, HD, 128, true>, 128, true);
}

}  // namespace

bool flash_attention_fits(DType type, int64_t head_dim) {
  return (type == DType::BF16 || type == DType::F16) && (head_dim == 64 || head_dim == 128);
}

int64_t flash_splits(int64_t n, int64_t n_head, int64_t max_rows) {
  // Blocks of 128 queries (the default variant); below two per SM of an
  // H100/H200 (132) the cache's rows are split, at least 4 steps each.
  const int64_t blocks = ceil_div(n, 128) * n_head;
  if (blocks >= 264) return 1;
  return std::max<int64_t>(1, std::min(ceil_div(264, blocks), max_rows / (kBN * 4)));
}

void flash_attention(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n,
                     int64_t n_head, float* out, float* m_out, float* l_out, int64_t n_split,
                     float* part, cudaStream_t s) {
  if (n <= 0) return;
  const int ns = int(std::max<int64_t>(1, n_split));
  const bool bf16 = kv.type == DType::BF16;
  if (kv.head_dim == 64) {
    if (bf16) launch<__nv_bfloat16, 64>(kv, q, q_pos, n, n_head, out, m_out, l_out, ns, part, s);
    else launch<__half, 64>(kv, q, q_pos, n, n_head, out, m_out, l_out, ns, part, s);
  } else {
    if (bf16) launch<__nv_bfloat16, 128>(kv, q, q_pos, n, n_head, out, m_out, l_out, ns, part, s);
    else launch<__half, 128>(kv, q, q_pos, n, n_head, out, m_out, l_out, ns, part, s);
  }
  if (ns > 1) attention_merge(part, n * n_head, ns, kv.head_dim, out, m_out, l_out, s);
}

}  // namespace kvsieve::cuda
