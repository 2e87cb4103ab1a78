// Helpers for the kernel tests (tests/test_ops*.cpp): random data, buffers
// offset by one float so SIMD loads are misaligned, and the error bound of f32
// sums that the tolerances are built from.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace kvsieve::testing {

// Unit roundoff of f32.
constexpr double kU = 1.0 / (1 << 24);

// n values, uniform in [lo, hi), stored one float past a 16-byte aligned
// start so that kernels see a misaligned pointer (data() + 1).
class Misaligned {
 public:
  Misaligned(int64_t n) : buf_(size_t(n) + 1 + 16, 0.0f) {}
  float* data() { return buf_.data() + 1; }
  const float* data() const { return buf_.data() + 1; }
  float& operator[](int64_t i) { return data()[i]; }
  float operator[](int64_t i) const { return data()[i]; }
  // Values after the n used ones, to check that nothing writes past the end.
  float* guard(int64_t n) { return data() + n; }

 private:
  std::vector<float> buf_;
};

inline void fill_uniform(float* p, int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < n; ++i) p[i] = u(rng);
}

}  // namespace kvsieve::testing
