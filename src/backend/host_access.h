// Host access to small pieces of device memory (scores, indices) for the
// steps of a cut that run on the host. On the CPU device these are the device
// memory itself (no copy); elsewhere they download and upload.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace kvsieve {

// A read-only host view of n elements at dev.
template <typename T>
class HostRead {
 public:
  HostRead(Backend& be, const T* dev, int64_t n) {
    if (be.host_memory() || n == 0) {
      p_ = dev;
      return;
    }
    copy_.resize(size_t(n));
    be.download(copy_.data(), dev, size_t(n) * sizeof(T));
    p_ = copy_.data();
  }
  const T* data() const { return p_; }
  const T& operator[](int64_t i) const { return p_[i]; }

 private:
  const T* p_ = nullptr;
  std::vector<T> copy_;
};

// A writable host view of n elements at dev (contents undefined at first);
// commit() puts what was written on the device.
template <typename T>
class HostWrite {
 public:
  HostWrite(Backend& be, T* dev, int64_t n) : be_(be), dev_(dev), n_(n) {
    if (be.host_memory()) {
      p_ = dev;
      return;
    }
    copy_.resize(size_t(n));
    p_ = copy_.data();
  }
  T* data() { return p_; }
  T& operator[](int64_t i) { return p_[i]; }
  void commit() {
    if (!be_.host_memory() && n_ > 0) be_.upload(dev_, copy_.data(), size_t(n_) * sizeof(T));
  }

 private:
  Backend& be_;
  T* dev_;
  int64_t n_;
  T* p_ = nullptr;
  std::vector<T> copy_;
};

}  // namespace kvsieve
