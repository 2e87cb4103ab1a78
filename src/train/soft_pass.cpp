#include "train/soft_pass.h"

#include <algorithm>
#include <cmath>

#include <type_traits>

#include "backend/cpu/ops.h"
#include "core/rope.h"
#include "core/dtype.h"
#include "core/error.h"

namespace kvsieve {
namespace {

// y[m, out] = x[m, in] · Wᵀ (+ bias); W rows widened one at a time.
template <typename T>
void mm(const TensorView& W, const T* x, int64_t m, T* y, ThreadPool& pool,
        const float* bias = nullptr) {
  if constexpr (std::is_same_v<T, float>) {  // the inference kernels (SIMD)
    matmul(W, x, m, y, pool, bias);
    return;
  }
  const int64_t out = W.rows(), in = W.cols();
  pool.parallel_for(out, [&](int64_t b, int64_t e, int) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = b; o < e; ++o) {
      dequantize_row(W.type, W.row_ptr(o), row.data(), in);
      for (int64_t t = 0; t < m; ++t) {
        T acc = 0;
        const T* xt = x + t * in;
        for (int64_t i = 0; i < in; ++i) acc += xt[i] * T(row[size_t(i)]);
        y[t * out + o] = acc + (bias ? T(bias[o]) : T(0));
      }
    }
  });
}

// dx[m, in] += dy[m, out] · W.
template <typename T>
void mm_t(const TensorView& W, const T* dy, int64_t m, T* dx, ThreadPool& pool) {
  const int64_t out = W.rows(), in = W.cols();
  std::vector<std::vector<T>> acc(size_t(pool.size()));
  pool.parallel_for(out, [&](int64_t b, int64_t e, int thread) {
    auto& a = acc[size_t(thread)];
    a.assign(size_t(m * in), T(0));
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = b; o < e; ++o) {
      dequantize_row(W.type, W.row_ptr(o), row.data(), in);
      for (int64_t t = 0; t < m; ++t) {
        const T g = dy[t * out + o];
        if (g == T(0)) continue;
        T* at = a.data() + t * in;
        if constexpr (std::is_same_v<T, float>) {
          axpy_f32(g, row.data(), at, in);
        } else {
          for (int64_t i = 0; i < in; ++i) at[i] += g * T(row[size_t(i)]);
        }
      }
    }
  });
  for (const auto& a : acc)
    for (size_t i = 0; i < a.size(); ++i) dx[i] += a[i];
}

// out = x · r · w with r = 1/sqrt(mean(x²) + eps), per row of d.
template <typename T>
void rmsnorm_fwd(const T* x, const float* w, int64_t m, int64_t d, float eps, T* r, T* out) {
  for (int64_t t = 0; t < m; ++t) {
    T ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
    r[t] = T(1) / std::sqrt(ss / T(d) + T(eps));
    for (int64_t i = 0; i < d; ++i) out[t * d + i] = x[t * d + i] * r[t] * T(w[i]);
  }
}

// dx += d/dx of the above given dy: with g = dy ⊙ w, dx = r g − r³ x (x·g) / d.
template <typename T>
void rmsnorm_bwd(const T* x, const T* r, const float* w, const T* dy, int64_t m, int64_t d, T* dx) {
  for (int64_t t = 0; t < m; ++t) {
    T xg = 0;
    for (int64_t i = 0; i < d; ++i) xg += x[t * d + i] * dy[t * d + i] * T(w[i]);
    const T rt = r[t], c = rt * rt * rt * xg / T(d);
    for (int64_t i = 0; i < d; ++i)
      dx[t * d + i] += rt * dy[t * d + i] * T(w[i]) - c * x[t * d + i];
  }
}

// Rotates (or, with inverse, rotates back) every head of one row in place.
template <typename T>
void rope(T* x, int64_t heads, int64_t hd, const T* c, const T* s, RopeStyle style, bool inverse) {
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < heads; ++h) {
    T* v = x + h * hd;
    for (int64_t i = 0; i < half; ++i) {
      T& a = style == RopeStyle::kInterleaved ? v[2 * i] : v[i];
      T& b = style == RopeStyle::kInterleaved ? v[2 * i + 1] : v[i + half];
      const T sn = inverse ? -s[i] : s[i];
      const T a0 = a, b0 = b;
      a = a0 * c[i] - b0 * sn;
      b = b0 * c[i] + a0 * sn;
    }
  }
}

template <typename T>
T silu(T g) {
  return g / (T(1) + std::exp(-g));
}

}  // namespace

template <typename T>
SoftPass<T>::SoftPass(const Model& m, const KvStore& prompt, Backend& be)
    : model_(m), prompt_(prompt), be_(be), pool_(*[&] {
        check(be.host_memory() && be.host_pool() != nullptr,
              "the Judge Q soft pass runs on the CPU (its backend: {})", be.describe());
        return be.host_pool();
      }()) {
  const ModelConfig& c = m.config();
  check(prompt.geometry().repeat == 1 && prompt.geometry().n_head_kv == c.n_head_kv &&
            prompt.geometry().n_layer == c.n_layer,
        "soft pass: the prompt cache does not fit the model");
  n_ = prompt.rows(0, 0);
  for (int64_t l = 0; l < c.n_layer; ++l)
    for (int64_t g = 0; g < c.n_head_kv; ++g) {
      const auto pos = prompt.positions(l, g);
      check(int64_t(pos.size()) == n_ && (n_ == 0 || (pos[0] == 0 && pos[size_t(n_ - 1)] == n_ - 1)),
            "soft pass: the prompt cache must hold positions 0..n-1 in every head (no eviction)");
    }
  if constexpr (std::is_same_v<T, double>) {
    k64_.resize(size_t(c.n_layer * c.n_head_kv));
    v64_.resize(size_t(c.n_layer * c.n_head_kv));
    for (int64_t l = 0; l < c.n_layer; ++l)
      for (int64_t g = 0; g < c.n_head_kv; ++g)
        prompt.read_head(l, g, &k64_[size_t(l * c.n_head_kv + g)], &v64_[size_t(l * c.n_head_kv + g)]);
  }
}

template <typename T>
const void* SoftPass<T>::prompt_k(int64_t l, int64_t g) const {
  if constexpr (std::is_same_v<T, double>) return k64_[size_t(l * prompt_.geometry().n_head_kv + g)].data();
  const KvLayerView v = prompt_.layer(l);
  return static_cast<const uint8_t*>(v.k) + size_t(g * v.capacity * v.head_dim) * dtype_row_bytes(v.type, 1);
}

template <typename T>
const void* SoftPass<T>::prompt_v(int64_t l, int64_t g) const {
  if constexpr (std::is_same_v<T, double>) return v64_[size_t(l * prompt_.geometry().n_head_kv + g)].data();
  const KvLayerView v = prompt_.layer(l);
  return static_cast<const uint8_t*>(v.v) + size_t(g * v.capacity * v.head_dim) * dtype_row_bytes(v.type, 1);
}

template <typename T>
void SoftPass<T>::forward(const T* E, int64_t m, AttentionMaps& maps) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  const int64_t d = c.n_embd, H = c.n_head, KV = c.n_head_kv, hd = c.head_dim, F = c.n_ff;
  const int64_t group = H / KV, n = n_, width = n + m;
  check(m > 0, "soft pass: no soft tokens");
  m_ = m;
  // RoPE of positions n .. n+m-1, as the forward pass computes them.
  const RopeFreqs freqs = rope_freqs_for(c, w.rope_freqs);
  std::vector<float> cf(size_t(hd / 2)), sf(size_t(hd / 2));
  cos_.resize(size_t(m * hd / 2));
  sin_.resize(size_t(m * hd / 2));
  for (int64_t t = 0; t < m; ++t) {
    rope_cos_sin(freqs, n + t, cf.data(), sf.data());
    for (int64_t i = 0; i < hd / 2; ++i) cos_[size_t(t * hd / 2 + i)] = cf[size_t(i)], sin_[size_t(t * hd / 2 + i)] = sf[size_t(i)];
  }
  maps.reset(c.n_layer, H, n);
  layers_.resize(size_t(c.n_layer));
  std::vector<T> x(E, E + m * d);
  const T scale = T(1) / std::sqrt(T(hd));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    Layer& A = layers_[size_t(l)];
    A.x = x;
    A.r.resize(size_t(m));
    A.xn.resize(size_t(m * d));
    rmsnorm_fwd(A.x.data(), lw.attn_norm, m, d, c.rms_eps, A.r.data(), A.xn.data());
    A.q.resize(size_t(m * H * hd));
    A.k.resize(size_t(m * KV * hd));
    A.v.resize(size_t(m * KV * hd));
    mm(*lw.wq, A.xn.data(), m, A.q.data(), pool_, lw.bq);
    mm(*lw.wk, A.xn.data(), m, A.k.data(), pool_, lw.bk);
    mm(*lw.wv, A.xn.data(), m, A.v.data(), pool_, lw.bv);
    for (int64_t t = 0; t < m; ++t) {
      const T* cs = cos_.data() + t * hd / 2;
      const T* sn = sin_.data() + t * hd / 2;
      rope(A.q.data() + t * H * hd, H, hd, cs, sn, c.rope_style, false);
      rope(A.k.data() + t * KV * hd, KV, hd, cs, sn, c.rope_style, false);
    }
    // Attention of each soft row over the prompt and the soft rows up to itself.
    A.p.assign(size_t(m * H * width), T(0));
    A.o.assign(size_t(m * H * hd), T(0));
    if constexpr (std::is_same_v<T, float>) {  // the backend's probe attention
      std::vector<int32_t> qpos(static_cast<size_t>(m));
      for (int64_t t = 0; t < m; ++t) qpos[size_t(t)] = int32_t(n + t);
      ProbeAttentionArgs pa;
      pa.kv = prompt_.layer(l);
      pa.q = A.q.data();
      pa.q_pos = qpos.data();
      pa.n_probe = m;
      pa.n_head = H;
      pa.own_k = A.k.data();
      pa.probs = A.p.data();
      pa.probs_ld = width;
      be_.probe_attention(pa);
    }
    for (int64_t t = 0; t < m; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / group;
        const T* q = A.q.data() + (t * H + h) * hd;
        T* p = A.p.data() + (t * H + h) * width;
        if constexpr (!std::is_same_v<T, float>) {  // the reference, in T
          const float* pk = static_cast<const float*>(prompt_k(l, g));
          for (int64_t j = 0; j < n; ++j) {
            T sc = 0;
            for (int64_t i = 0; i < hd; ++i) sc += q[i] * T(pk[j * hd + i]);
            p[j] = sc;
          }
          for (int64_t j = n; j < n + t + 1; ++j) {
            const T* k = A.k.data() + ((j - n) * KV + g) * hd;
            T sc = 0;
            for (int64_t i = 0; i < hd; ++i) sc += q[i] * k[i];
            p[j] = sc;
          }
          T mx = -INFINITY;
          for (int64_t j = 0; j < n + t + 1; ++j) {
            p[j] *= scale;
            mx = std::max(mx, p[j]);
          }
          T sum = 0;
          for (int64_t j = 0; j < n + t + 1; ++j) sum += (p[j] = std::exp(p[j] - mx));
          for (int64_t j = 0; j < n + t + 1; ++j) p[j] /= sum;
        }
        for (int64_t j = 0; j < n; ++j) maps.at(l, h, j) += double(p[j]) / double(m);
        T* o = A.o.data() + (t * H + h) * hd;
        if constexpr (std::is_same_v<T, float>) {
          axpy_rows(prompt_.type(), p, prompt_v(l, g), n, hd, hd, o);
        } else {
          const float* pv = static_cast<const float*>(prompt_v(l, g));
          for (int64_t j = 0; j < n; ++j)
            for (int64_t i = 0; i < hd; ++i) o[i] += p[j] * T(pv[j * hd + i]);
        }
        for (int64_t j = n; j < n + t + 1; ++j) {
          const T* vs = A.v.data() + ((j - n) * KV + g) * hd;
          for (int64_t i = 0; i < hd; ++i) o[i] += p[j] * vs[i];
        }
      }
    A.x2 = A.x;
    std::vector<T> proj(size_t(m * d));
    mm(*lw.wo, A.o.data(), m, proj.data(), pool_);
    for (size_t i = 0; i < proj.size(); ++i) A.x2[i] += proj[i];
    A.r2.resize(size_t(m));
    A.xn2.resize(size_t(m * d));
    rmsnorm_fwd(A.x2.data(), lw.ffn_norm, m, d, c.rms_eps, A.r2.data(), A.xn2.data());
    A.gate.resize(size_t(m * F));
    A.up.resize(size_t(m * F));
    mm(*lw.w_gate, A.xn2.data(), m, A.gate.data(), pool_);
    mm(*lw.w_up, A.xn2.data(), m, A.up.data(), pool_);
    std::vector<T> act(size_t(m * F));
    for (size_t i = 0; i < act.size(); ++i) act[i] = silu(A.gate[i]) * A.up[i];
    mm(*lw.w_down, act.data(), m, proj.data(), pool_);
    for (size_t i = 0; i < proj.size(); ++i) x[i] = A.x2[i] + proj[i];
  }
}

template <typename T>
void SoftPass<T>::backward(const AttentionMaps& dmaps, T* dE) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  const int64_t d = c.n_embd, H = c.n_head, KV = c.n_head_kv, hd = c.head_dim, F = c.n_ff;
  const int64_t group = H / KV, n = n_, m = m_, width = n + m;
  check(!layers_.empty() && dmaps.L == c.n_layer && dmaps.H == H && dmaps.n == n,
        "soft pass: backward needs a forward of the same shape first");
  const T scale = T(1) / std::sqrt(T(hd));
  std::vector<T> dx(size_t(m * d), T(0));  // d loss / d (output of layer l)
  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    const Layer& A = layers_[size_t(l)];
    // Feed-forward: out = x2 + (silu(gate) ⊙ up) · Wdᵀ.
    std::vector<T> dx2 = dx, dact(size_t(m * F), T(0));
    mm_t(*lw.w_down, dx.data(), m, dact.data(), pool_);
    std::vector<T> dgate(size_t(m * F)), dup(size_t(m * F));
    for (size_t i = 0; i < dact.size(); ++i) {
      const T g = A.gate[i], sg = T(1) / (T(1) + std::exp(-g));
      dup[i] = dact[i] * g * sg;
      dgate[i] = dact[i] * A.up[i] * sg * (T(1) + g * (T(1) - sg));
    }
    std::vector<T> dxn2(size_t(m * d), T(0));
    mm_t(*lw.w_gate, dgate.data(), m, dxn2.data(), pool_);
    mm_t(*lw.w_up, dup.data(), m, dxn2.data(), pool_);
    rmsnorm_bwd(A.x2.data(), A.r2.data(), lw.ffn_norm, dxn2.data(), m, d, dx2.data());
    // Attention block: x2 = x + o · Woᵀ.
    std::vector<T> dxl = dx2, dout(size_t(m * H * hd), T(0));
    mm_t(*lw.wo, dx2.data(), m, dout.data(), pool_);
    std::vector<T> dq(size_t(m * H * hd), T(0)), dk(size_t(m * KV * hd), T(0)),
        dv(size_t(m * KV * hd), T(0)), dp(static_cast<size_t>(width));
    for (int64_t t = 0; t < m; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / group, len = n + t + 1;
        const T* p = A.p.data() + (t * H + h) * width;
        const T* q = A.q.data() + (t * H + h) * hd;
        const T* dov = dout.data() + (t * H + h) * hd;
        T pdp = 0;
        if constexpr (std::is_same_v<T, float>)
          dot_rows(prompt_.type(), dov, prompt_v(l, g), n, hd, hd, dp.data());
        for (int64_t j = 0; j < len; ++j) {
          T s = 0;
          if (j < n) {
            if constexpr (std::is_same_v<T, float>) {
              s = dp[size_t(j)];
            } else {
              const float* pv = static_cast<const float*>(prompt_v(l, g));
              for (int64_t i = 0; i < hd; ++i) s += dov[i] * T(pv[j * hd + i]);
            }
            s += T(dmaps.at(l, h, j)) / T(m);
          } else {
            const T* vs = A.v.data() + ((j - n) * KV + g) * hd;
            for (int64_t i = 0; i < hd; ++i) s += dov[i] * vs[i];
            T* dvs = dv.data() + ((j - n) * KV + g) * hd;
            for (int64_t i = 0; i < hd; ++i) dvs[i] += p[j] * dov[i];
          }
          dp[size_t(j)] = s;
          pdp += p[j] * s;
        }
        T* dqh = dq.data() + (t * H + h) * hd;
        for (int64_t j = 0; j < len; ++j) dp[size_t(j)] = p[j] * (dp[size_t(j)] - pdp) * scale;  // ds
        if constexpr (std::is_same_v<T, float>)
          axpy_rows(prompt_.type(), dp.data(), prompt_k(l, g), n, hd, hd, dqh);
        for (int64_t j = 0; j < len; ++j) {
          const T ds = dp[size_t(j)];
          if (j < n) {
            if constexpr (!std::is_same_v<T, float>)
              for (int64_t i = 0; i < hd; ++i)
                dqh[i] += ds * T(static_cast<const float*>(prompt_k(l, g))[j * hd + i]);
          } else {
            const T* ks = A.k.data() + ((j - n) * KV + g) * hd;
            T* dks = dk.data() + ((j - n) * KV + g) * hd;
            for (int64_t i = 0; i < hd; ++i) {
              dqh[i] += ds * ks[i];
              dks[i] += ds * q[i];
            }
          }
        }
      }
    for (int64_t t = 0; t < m; ++t) {  // back through RoPE
      const T* cs = cos_.data() + t * hd / 2;
      const T* sn = sin_.data() + t * hd / 2;
      rope(dq.data() + t * H * hd, H, hd, cs, sn, c.rope_style, true);
      rope(dk.data() + t * KV * hd, KV, hd, cs, sn, c.rope_style, true);
    }
    std::vector<T> dxn(size_t(m * d), T(0));
    mm_t(*lw.wq, dq.data(), m, dxn.data(), pool_);
    mm_t(*lw.wk, dk.data(), m, dxn.data(), pool_);
    mm_t(*lw.wv, dv.data(), m, dxn.data(), pool_);
    rmsnorm_bwd(A.x.data(), A.r.data(), lw.attn_norm, dxn.data(), m, d, dxl.data());
    dx.swap(dxl);
  }
  std::copy(dx.begin(), dx.end(), dE);
}

template class SoftPass<float>;
template class SoftPass<double>;

}  // namespace kvsieve
