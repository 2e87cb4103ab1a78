// The model's weights on the GPU. Models live in host memory (mapped files);
// the first op that reads a weight on the device uploads it once, and every
// session (backend) of the process reads that copy. Keyed by the host
// address and size of the weight, which stay fixed while its model is loaded.
//
// The owner of the host memory calls forget_weights() before freeing it
// (Model's destructor, through forget_device_weights of backend.h).
#pragma once
#include <cstddef>

namespace kvsieve::cuda {

// The device copy of bytes at host, uploaded on first use (thread-safe).
// Throws Error when the device is out of memory.
const void* device_weights(const void* host, size_t bytes);
// Frees every copy made of the weight at host (any size).
void forget_weights(const void* host);
// Bytes of weights held on the device.
size_t device_weight_bytes();

}  // namespace kvsieve::cuda
