// The CUDA device, seen from the rest of kvsieve. A build without CUDA
// (KVSIEVE_CUDA off) links cuda_stub.cpp instead of the real device: it
// reports no GPU and refuses to make a backend with a clear message, so no
// code outside src/backend/cuda needs an #ifdef.
#pragma once
#include <memory>

#include "backend/backend.h"

namespace kvsieve {

// Whether this build has the CUDA device compiled in.
bool cuda_built();
// Frees the device copies of the weight at host (backend.h).
void cuda_forget_weights(const void* host);
// Whether this build has CUDA and a GPU answered.
bool cuda_device_present();
// A backend on GPU 0 (a stream of its own) computing as `math` says. Throws
// Error when CUDA was not compiled in or no GPU is usable.
std::unique_ptr<Backend> make_cuda_backend(GpuMath math);

}  // namespace kvsieve
