#include "backend/cuda/cuda_weights.h"

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/error.h"

namespace kvsieve::cuda {
namespace {

struct Mirror {
  std::mutex mu;
  std::map<std::pair<const void*, size_t>, void*> copies;
  size_t bytes = 0;
};

Mirror& mirror() {
  static Mirror* m = new Mirror;  // never destroyed: copies outlive static destructors
  return *m;
}

}  // namespace

const void* device_weights(const void* host, size_t bytes) {
  Mirror& m = mirror();
  std::lock_guard<std::mutex> lock(m.mu);
  const auto key = std::make_pair(host, bytes);
  if (auto it = m.copies.find(key); it != m.copies.end()) return it->second;
  void* d = nullptr;
  cudaError_t e = cudaMalloc(&d, bytes ? bytes : 1);
  check(e == cudaSuccess, "CUDA: out of device memory for a weight of {} bytes ({})", bytes,
        cudaGetErrorString(e));
  e = cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice);
  if (e != cudaSuccess) {
    cudaFree(d);
    fail("CUDA: uploading a weight of {} bytes failed: {}", bytes, cudaGetErrorString(e));
  }
  m.copies.emplace(key, d);
  m.bytes += bytes;
  return d;
}

void forget_weights(const void* host) {
  Mirror& m = mirror();
  std::lock_guard<std::mutex> lock(m.mu);
  for (auto it = m.copies.lower_bound({host, 0}); it != m.copies.end() && it->first.first == host;) {
    cudaFree(it->second);
    m.bytes -= it->first.second;
    it = m.copies.erase(it);
  }
}

size_t device_weight_bytes() {
  Mirror& m = mirror();
  std::lock_guard<std::mutex> lock(m.mu);
  return m.bytes;
}

}  // namespace kvsieve::cuda
