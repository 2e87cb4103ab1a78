// Test helpers for the vocabulary loaders: a protobuf writer for hand-built
// SentencePiece models and an expect-Error-with-text check.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/error.h"

namespace kvsieve::testing {

// Runs fn; it must throw kvsieve::Error whose message contains `part`.
template <typename Fn>
void expect_error(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no Error thrown (expected one mentioning '" << part << "')";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << part;
  }
}

// Writes the protobuf wire format of a SentencePiece ModelProto.
class ProtoWriter {
 public:
  static void varint(std::string& o, uint64_t v) {
    while (v >= 0x80) {
      o += char(0x80 | (v & 0x7F));
      v >>= 7;
    }
    o += char(v);
  }
  static void key(std::string& o, uint32_t field, uint32_t wire) { varint(o, (uint64_t(field) << 3) | wire); }
  static void bytes_field(std::string& o, uint32_t field, const std::string& b) {
    key(o, field, 2);
    varint(o, b.size());
    o += b;
  }
  static void int_field(std::string& o, uint32_t field, int64_t v) {
    key(o, field, 0);
    varint(o, uint64_t(v));  // negatives as 10-byte two's complement, as protobuf does
  }

  ProtoWriter& piece(const std::string& text, float score, int type) {
    std::string p;
    bytes_field(p, 1, text);
    key(p, 2, 5);
    char f[4];
    std::memcpy(f, &score, 4);
    p.append(f, 4);
    int_field(p, 3, type);
    bytes_field(out_, 1, p);
    return *this;
  }
  ProtoWriter& trainer(int model_type, bool byte_fallback, int unk, int bos, int eos, int pad) {
    std::string t;
    bytes_field(t, 1, "corpus.txt");  // a field the loader skips
    int_field(t, 3, model_type);
    int_field(t, 35, byte_fallback);
    int_field(t, 40, unk);
    int_field(t, 41, bos);
    int_field(t, 42, eos);
    int_field(t, 43, pad);
    bytes_field(out_, 2, t);
    return *this;
  }
  ProtoWriter& normalizer(const std::string& name, bool add_dummy_prefix) {
    std::string n;
    bytes_field(n, 1, name);
    int_field(n, 3, add_dummy_prefix);
    bytes_field(out_, 3, n);
    return *this;
  }
  ProtoWriter& raw(const std::string& b) {
    out_ += b;
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

}  // namespace kvsieve::testing
