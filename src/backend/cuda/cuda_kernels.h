// The CUDA device's kernels, as host functions that launch them on a stream
// (cuda_*.cu). Every pointer is device memory unless it says "host"; every
// launch is asynchronous, and the caller checks cudaGetLastError() after it
// (cuda_backend.cpp does, naming the op). Shapes as in backend/backend.h.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace kvsieve::cuda {

// ---- the forward pass (cuda_forward_ops.cu)
// out[n, cols] = rows ids[t] of table [*, cols] of type t (row_bytes apart).
void embed(DType t, const void* table, size_t row_bytes, const int32_t* ids, int64_t n,
           int64_t cols, float* out, cudaStream_t s);
void rmsnorm(const float* x, const float* w, float* out, int64_t rows, int64_t dim, float eps,
             cudaStream_t s);
// x += d, then out = rmsnorm(x) (one launch where rows fit the fast kernel).
void add_rmsnorm(float* x, const float* d, const float* w, float* out, int64_t rows, int64_t dim,
                 float eps, cudaStream_t s);
// x [n, n_heads, head_dim] rotated by the table rows cos/sin [n, head_dim/2].
void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const float* cos,
          const float* sin, bool neox, cudaStream_t s);
void swiglu(const float* gate, const float* up, float* out, int64_t n, cudaStream_t s);
void add(const float* a, const float* b, float* out, int64_t n, cudaStream_t s);
void scale(float* x, float f, int64_t n, cudaStream_t s);

// ---- products (cuda_matmul.cu)
// out[rows, cols] f32 = W [rows, cols] of type t, decoded as dequantize_row does.
void dequantize(DType t, const void* W, int64_t rows, int64_t cols, float* out, cudaStream_t s);
// out[rows, cols] f16 bits = the same decoded values rounded to f16.
void dequantize_f16(DType t, const void* W, int64_t rows, int64_t cols, uint16_t* out,
                    cudaStream_t s);
// out[n] = x[n] rounded to bf16 (bf16) or f16 bits, to nearest even.
void round_to_half(const float* x, int64_t n, uint16_t* out, bool bf16, cudaStream_t s);
// y[n, rows] = x[n, cols] · Wᵀ (+ bias[rows]) for a few rows of x (decode):
// W is read once, decoded in registers, accumulated in f32.
void matvec(DType t, const void* W, int64_t rows, int64_t cols, const float* x, int64_t n,
            float* y, const float* bias, cudaStream_t s);
// The products of one x [n, cols] by up to kMaxJobs 16-bit weights of the
// same type (f16, or bf16 as bf16 says) in one launch per 8 rows of x:
// y_j[n, rows_j] = x · W_jᵀ (+ bias_j), rows_j = first[j + 1] - first[j].
// Where matvec16_fits (cols % 8 == 0, W and x 16-byte aligned); the same
// sums as matvec's.
constexpr int kMaxJobs = 4;
struct Matvec16Jobs {
  const void* w[kMaxJobs] = {};
  float* y[kMaxJobs] = {};
  const float* bias[kMaxJobs] = {};
  int64_t first[kMaxJobs + 1] = {};  // first[0] = 0
  int n = 0;
};
bool matvec16_fits(DType t, const void* W, int64_t cols, const float* x);
void matvec16_many(bool bf16, const Matvec16Jobs& jobs, int64_t cols, const float* x, int64_t n,
                   cudaStream_t s);
// y[n, rows] += bias[rows].
void add_bias(float* y, const float* bias, int64_t n, int64_t rows, cudaStream_t s);

// ---- one layer of the KV store on the device (kv/kv_store.h's layout)
struct KvDev {
  DType type = DType::F32;
  const void* k = nullptr;      // [n_stored, capacity, head_dim]
  const void* v = nullptr;      // [n_stored, capacity, head_dim]
  const int32_t* pos = nullptr; // [n_stored, capacity]
  const int64_t* rows = nullptr;  // [n_stored] (device copy of the counts), or null: inline
  int64_t n_stored = 0, capacity = 0, head_dim = 0, repeat = 1;
  // Small arrays passed inside the kernel parameters, so that a decode step
  // copies nothing to the device per layer (each copy is a stream operation
  // of its own, and the step has a few hundred): the counts when rows is
  // null (n_stored <= kInlineHeads), and the queries' positions for kernels
  // given a null q_pos (n <= kInlineQueries).
  static constexpr int kInlineHeads = 64, kInlineQueries = 8;
  int64_t rows_inline[kInlineHeads] = {};
  int32_t q_pos_inline[kInlineQueries] = {};
};

// ---- attention (cuda_attention.cu)
// Causal attention of n queries q [n, n_head, head_dim] (positions q_pos [n])
// over the store's rows with pos <= q_pos[t]: out [n, n_head, head_dim]. The
// rows are split into n_split chunks (attention_splits) whose partial softmax
// states (scratch: n·n_head·n_split·(head_dim + 2) floats) are merged in a
// second kernel. A warp takes all the query heads of a stored head where
// head_dim is 64 or 128, so K and V are read once per group.
// m_out, l_out [n, n_head] (or null) receive each query's softmax maximum and
// sum of exponentials of the scaled scores, for attention_colsums.
int64_t attention_splits(const KvDev& kv, int64_t n, int64_t n_head, int64_t max_rows);
void attention(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n, int64_t n_head,
               float* out, float* m_out, float* l_out, int64_t n_split, float* scratch,
               cudaStream_t s);
// Adds up n_split partial softmax states per item (part: [items, n_split,
// head_dim + 2], each m in natural units, l, unnormalised output) into out
// [items, head_dim], and m_out, l_out [items] when given.
void attention_merge(const float* part, int64_t items, int64_t n_split, int64_t hd, float* out,
                     float* m_out, float* l_out, cudaStream_t s);
// The same on the tensor cores (cuda_flash_attention.cu) for a batch of
// queries over a 16-bit cache: queries and probabilities rounded to the
// cache's type, f32 accumulation. For F16 and BF16 caches with head_dim 64
// or 128 (flash_attention_fits). A batch of few queries over many rows (a
// Judge Q soft pass) splits the rows n_split ways (flash_splits), each
// block's state going to part [n·n_head, n_split, head_dim + 2], merged after.
bool flash_attention_fits(DType type, int64_t head_dim);
int64_t flash_splits(int64_t n, int64_t n_head, int64_t max_rows);
void flash_attention(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n,
                     int64_t n_head, float* out, float* m_out, float* l_out, int64_t n_split,
                     float* part, cudaStream_t s);
// H2O's record: colsum[h, j] += p(t, h, j) for t in batch order, and
// colcount[h, j] += 1 for every query that saw row j; p recomputed from the
// keys and the queries' m and l.
void attention_colsums(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n,
                       int64_t n_head, const float* m, const float* l, float* colsum,
                       float* colcount, int64_t ld, cudaStream_t s);
// Probe attention (Backend::probe_attention): rows of probabilities into
// p [n_probe, n_head, p_ld] (p_ld >= the largest head's rows + n_probe):
// p[t, h, j] for the rows j the probe sees, its own keys at [rows[s] + i]
// for i <= t (own_k [n_probe, n_kv, head_dim] or null), 0 elsewhere.
void probe_probs(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                 int64_t n_head, const float* own_k, float* p, int64_t p_ld, cudaStream_t s);
// out[h, j] (ld apart) = reduce over t of p[t, h, j], j < rows of h's head
// (how: 0 sum, 1 mean, 2 max with 0 as the start).
void probe_reduce(const float* p, int64_t n_probe, int64_t n_head, int64_t p_ld,
                  const int64_t* rows, int64_t group, int how, float* out, int64_t ld,
                  cudaStream_t s);
// The same probabilities and reduction as probe_probs + probe_reduce (bit for
// bit), computed in tiles of keys shared by 64 query rows
// (cuda_probe_tiles.cu); for head_dim 64 or 128 (probe_tiles_apply). p as
// probe_probs' (its final contents only when write_probs); max_rows: the
// layer's most rows; scratch: probe_tiles_scratch floats.
bool probe_tiles_apply(const KvDev& kv);
int64_t probe_tiles_scratch(int64_t n_probe, int64_t n_head, int64_t max_rows);
void probe_tiles(const KvDev& kv, const float* q, const int32_t* q_pos, int64_t n_probe,
                 int64_t n_head, const float* own_k, float* p, int64_t p_ld, bool write_probs,
                 float* out, int64_t ld, int how, int64_t max_rows, float* scratch,
                 cudaStream_t s);

// ---- the rows a cut keeps (cuda_select.cu)
struct SelectHeads {
  const int64_t* rows = nullptr;    // [n_heads] rows of each head
  const int64_t* budget = nullptr;  // [n_heads] rows to keep (>= the protected ones, or >= rows)
  const int64_t* off = nullptr;     // [n_heads + 1] where each head's indices go in out
};
// Backend::select_rows: per head h of scores [n_heads, ld], the increasing
// indices of the rows kept (the first sinks and last window rows, then the
// best scores; ties: the earlier row; NaN last) at out[off[h] ..].
void select_rows(const float* scores, int64_t n_heads, int64_t ld, const SelectHeads& heads,
                 int64_t sinks, int64_t window, int64_t* out, cudaStream_t s);
// Backend::adakv_split, kvpress's rule, one block per layer, for layers of
// at most kMaxAdaKvHeads heads: out[l, h] = rows head h of layer l keeps. The
// arrays are on the device, [n_layers] each (rows [n_layers, n_heads]); safe
// = int(keep * floor); the host has checked that the protected rows fit.
constexpr int64_t kMaxAdaKvHeads = 32;
struct AdaKvLayers {
  const float* const* scores = nullptr;
  const int64_t *ld = nullptr, *keep = nullptr, *safe = nullptr, *rows = nullptr;
};
void adakv_split(const AdaKvLayers& layers, int64_t n_layers, int64_t n_heads, int64_t sinks,
                 int64_t window, int64_t* out, cudaStream_t s);

// ---- the KV store and the eviction pipeline (cuda_kv_ops.cu)
// k, v [n, n_head_kv, head_dim] f32 into rows rows[s] .. of every stored head.
// And their positions (pos [n], or kv.q_pos_inline when null) into kv.pos.
void kv_append(const KvDev& kv, void* k_dst, void* v_dst, const float* k, const float* v,
               const int32_t* pos, int64_t n, int64_t n_head_kv, cudaStream_t s);
// dst[h, j] = src[h / src_div, idx[off[h / sel_div] + j]] (rows of row_bytes).
void gather(const void* src, void* dst, int64_t n_heads, int64_t src_div, int64_t sel_div,
            int64_t ld_src, int64_t ld_dst, size_t row_bytes, const int64_t* idx,
            const int64_t* off, int64_t max_count, cudaStream_t s);
// out [n, n_kv, head_dim] f32 = keys first .. first + n of stored heads g·repeat.
void read_keys(const KvDev& kv, int64_t first, int64_t n, float* out, cudaStream_t s);
// out[s, j] = ||k_j|| for j < rows[s].
void key_norms(const KvDev& kv, float* out, int64_t ld, cudaStream_t s);
// Pooling along rows (Backend::pool); kind 0 none, 1 max, 2 avg.
void pool(const float* in, float* out, int64_t n_heads, int64_t ld, const int64_t* len,
          const int64_t* rows, int64_t kernel, int kind, int64_t max_rows, cudaStream_t s);
// out[g, j] = reduce over the group's heads (how: 0 sum, 1 mean, 2 max).
void reduce_groups(const float* in, float* out, int64_t n_out, int64_t group, int64_t ld,
                   const int64_t* rows, int how, int64_t max_rows, cudaStream_t s);

}  // namespace kvsieve::cuda
