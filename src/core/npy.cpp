#include "core/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/mapped_file.h"

namespace kvsieve {

namespace {

// Finds `'key': value` in the header dict text; returns the value text.
std::string header_field(const std::string& h, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "'";
  const size_t p = h.find(k);
  if (p == std::string::npos) fail("'{}': .npy header has no '{}'", path, key);
  size_t v = h.find(':', p + k.size());
  if (v == std::string::npos) fail("'{}': malformed .npy header", path);
  ++v;
  while (v < h.size() && h[v] == ' ') ++v;
  if (v >= h.size()) fail("'{}': malformed .npy header", path);
  if (h[v] == '\'') {
    const size_t e = h.find('\'', v + 1);
    if (e == std::string::npos) fail("'{}': malformed .npy header", path);
    return h.substr(v + 1, e - v - 1);
  }
  if (h[v] == '(') {
    const size_t e = h.find(')', v);
    if (e == std::string::npos) fail("'{}': malformed .npy header", path);
    return h.substr(v + 1, e - v - 1);
  }
  size_t e = v;
  while (e < h.size() && h[e] != ',' && h[e] != '}') ++e;
  return h.substr(v, e - v);
}

size_t dtype_size(const std::string& d) {
  if (d == "<i4" || d == "<f4") return 4;
  if (d == "<i8" || d == "<f8") return 8;
  return 0;
}

void write_npy(const std::string& path, const char* descr, const void* data, size_t elem,
               const std::vector<int64_t>& shape) {
  std::string sh = "(";
  size_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    sh += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    n *= size_t(shape[i]);
  }
  sh += ")";
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " +
                       sh + ", }";
  // Pad so that magic(6)+version(2)+len(2)+header is a multiple of 64, ending in '\n'.
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create '{}': {}", tmp, std::strerror(errno));
  const uint8_t magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  const uint16_t hl = uint16_t(header.size());
  bool ok = std::fwrite(magic, 1, 8, f) == 8 && std::fwrite(&hl, 2, 1, f) == 1 &&
            std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            (n == 0 || std::fwrite(data, elem, n, f) == n);
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail("error writing '{}'", path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  }
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  MappedFile f(path);
  const uint8_t* p = f.data();
  const size_t n = f.size();
  if (n < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) fail("'{}' is not a .npy file", path);
  const int major = p[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = size_t(p[8]) | size_t(p[9]) << 8;
    off = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) fail("'{}': truncated .npy header", path);
    hlen = size_t(p[8]) | size_t(p[9]) << 8 | size_t(p[10]) << 16 | size_t(p[11]) << 24;
    off = 12;
  } else {
    fail("'{}': unsupported .npy version {}", path, major);
  }
  if (hlen > n - off) fail("'{}': truncated .npy header", path);
  const std::string h(reinterpret_cast<const char*>(p + off), hlen);
  NpyArray a;
  a.dtype = header_field(h, "descr", path);
  if (a.dtype == "|i1" || a.dtype == "|u1") fail("'{}': dtype {} not supported", path, a.dtype);
  const size_t es = dtype_size(a.dtype);
  if (!es) fail("'{}': dtype '{}' not supported (need <i4, <i8, <f4 or <f8)", path, a.dtype);
  if (header_field(h, "fortran_order", path).find("False") == std::string::npos)
    fail("'{}': Fortran-order arrays are not supported", path);
  const std::string sh = header_field(h, "shape", path);
  size_t count = 1;
  size_t i = 0;
  while (i < sh.size()) {
    while (i < sh.size() && (sh[i] == ' ' || sh[i] == ',')) ++i;
    if (i >= sh.size()) break;
    size_t j = i;
    while (j < sh.size() && sh[j] >= '0' && sh[j] <= '9') ++j;
    if (j == i || j - i > 12) fail("'{}': bad shape '({})' in .npy header", path, sh);
    const int64_t d = std::stoll(sh.substr(i, j - i));
    a.shape.push_back(d);
    if (d > 0 && count > (size_t(1) << 40) / size_t(d)) fail("'{}': absurd shape ({})", path, sh);
    count *= size_t(d);
    i = j;
  }
  const size_t bytes = count * es;
  if (bytes != n - off - hlen)
    fail("'{}': data size {} does not match shape ({}) of {} ({} bytes)", path, n - off - hlen, sh,
         a.dtype, bytes);
  a.data.assign(p + off + hlen, p + n);
  return a;
}

std::vector<int32_t> read_npy_ids(const std::string& path) {
  NpyArray a = read_npy(path);
  std::vector<int32_t> ids;
  if (a.dtype == "<i4") {
    ids.resize(a.data.size() / 4);
    std::memcpy(ids.data(), a.data.data(), a.data.size());
  } else if (a.dtype == "<i8") {
    const size_t n = a.data.size() / 8;
    ids.resize(n);
    for (size_t i = 0; i < n; ++i) {
      int64_t v;
      std::memcpy(&v, a.data.data() + 8 * i, 8);
      if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())
        fail("'{}': token id {} at index {} does not fit in int32", path, v, i);
      ids[i] = int32_t(v);
    }
  } else {
    fail("'{}': token ids must be an int32 array, found dtype {}", path, a.dtype);
  }
  return ids;
}

std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape) {
  NpyArray a = read_npy(path);
  std::vector<float> out;
  if (a.dtype == "<f4") {
    out.resize(a.data.size() / 4);
    std::memcpy(out.data(), a.data.data(), a.data.size());
  } else if (a.dtype == "<f8") {
    out.resize(a.data.size() / 8);
    for (size_t i = 0; i < out.size(); ++i) {
      double v;
      std::memcpy(&v, a.data.data() + 8 * i, 8);
      out[i] = float(v);
    }
  } else {
    fail("'{}': expected a float array, found dtype {}", path, a.dtype);
  }
  if (shape) *shape = a.shape;
  return out;
}

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<f4", data, 4, shape);
}
void write_npy_i32(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape) {
  write_npy(path, "<i4", data, 4, shape);
}

}  // namespace kvsieve
