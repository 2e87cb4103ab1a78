#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_device.h"
#include "core/error.h"

namespace kvsieve {

const char* device_name(DeviceKind d) { return d == DeviceKind::kCuda ? "cuda" : "cpu"; }

DeviceKind device_from_name(std::string_view name) {
  if (name == "cpu") return DeviceKind::kCpu;
  if (name == "cuda") return DeviceKind::kCuda;
  if (name == "auto") return cuda_available() ? DeviceKind::kCuda : DeviceKind::kCpu;
  fail("unknown device '{}' (cpu, cuda, auto)", name);
}

bool cuda_available() { return cuda_device_present(); }
bool cuda_built_in() { return cuda_built(); }
void forget_device_weights(const void* host) { cuda_forget_weights(host); }

const char* gpu_math_name(GpuMath m) { return m == GpuMath::kExact ? "exact" : "tensor"; }

GpuMath gpu_math_from_name(std::string_view name) {
  if (name == "exact") return GpuMath::kExact;
  if (name == "tensor") return GpuMath::kTensor;
  fail("unknown GPU math '{}' (tensor, exact)", name);
}

std::unique_ptr<Backend> make_backend(DeviceKind kind, int threads, GpuMath math) {
  if (kind == DeviceKind::kCuda) return make_cuda_backend(math);
  return std::make_unique<CpuBackend>(threads);
}

std::unique_ptr<Backend> make_cpu_backend(ThreadPool& pool) {
  return std::make_unique<CpuBackend>(pool);
}

}  // namespace kvsieve
