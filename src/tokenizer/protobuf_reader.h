// The protobuf wire format, reading side only, for SentencePiece's
// tokenizer.model: varints, 32/64-bit fixed fields and length-delimited
// fields. Every length is checked against the bytes left; errors name the file.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"

namespace kvsieve {

class ProtoReader {
 public:
  enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

  ProtoReader(std::string_view data, const std::string& what) : d_(data), what_(what) {}

  bool done() const { return pos_ >= d_.size(); }
  size_t pos() const { return pos_; }

  // Reads a field key; returns false at the end of the message.
  bool next(uint32_t& field, Wire& wire) {
    if (done()) return false;
    const size_t at = pos_;
    const uint64_t key = varint();
    field = uint32_t(key >> 3);
    wire = Wire(key & 7);
    check(field != 0 && key >> 3 <= 0x1FFFFFFF, "{}: bad protobuf field key at byte {}", what_, at);
    check(wire == kVarint || wire == kFixed64 || wire == kBytes || wire == kFixed32,
          "{}: unsupported protobuf wire type {} at byte {}", what_, uint32_t(wire), at);
    return true;
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      check(pos_ < d_.size(), "{}: truncated (varint runs past the end at byte {})", what_, pos_);
      const uint8_t b = uint8_t(d_[pos_++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("{}: varint longer than 10 bytes at byte {}", what_, pos_);
  }

  std::string_view bytes() {
    const size_t at = pos_;
    const uint64_t n = varint();
    check(n <= d_.size() - pos_, "{}: truncated (a field at byte {} claims {} bytes, {} are left)",
          what_, at, n, d_.size() - pos_);
    const std::string_view s = d_.substr(pos_, size_t(n));
    pos_ += size_t(n);
    return s;
  }

  float fixed32_float() {
    check(d_.size() - pos_ >= 4, "{}: truncated (float at byte {})", what_, pos_);
    float f;
    std::memcpy(&f, d_.data() + pos_, 4);  // little-endian on every platform we build for
    pos_ += 4;
    return f;
  }

  void skip(Wire wire) {
    switch (wire) {
      case kVarint: varint(); break;
      case kBytes: bytes(); break;
      case kFixed32:
        check(d_.size() - pos_ >= 4, "{}: truncated at byte {}", what_, pos_);
        pos_ += 4;
        break;
      case kFixed64:
        check(d_.size() - pos_ >= 8, "{}: truncated at byte {}", what_, pos_);
        pos_ += 8;
        break;
    }
  }

  // Reads a field's value checking its wire type.
  void expect(Wire got, Wire want, uint32_t field) const {
    check(got == want, "{}: field {} has wire type {} (expected {})", what_, field, uint32_t(got),
          uint32_t(want));
  }

 private:
  std::string_view d_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace kvsieve
