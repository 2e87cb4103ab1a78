// SentencePiece tokenizer.model (a serialized ModelProto) -> VocabSpec.
// Only the fields a BPE vocabulary needs are read:
//   ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
//                    NormalizerSpec normalizer_spec = 3; }
//   SentencePiece  { string piece = 1; float score = 2; Type type = 3 (NORMAL=1 UNKNOWN=2
//                    CONTROL=3 USER_DEFINED=4 UNUSED=5 BYTE=6, numbered as GGUF's types) }
//   TrainerSpec    { ModelType model_type = 3 (UNIGRAM=1 BPE=2 WORD=3 CHAR=4);
//                    bool byte_fallback = 35; int32 unk_id = 40, bos_id = 41, eos_id = 42,
//                    pad_id = 43 }
//   NormalizerSpec { string name = 1; bool add_dummy_prefix = 3; bool remove_extra_whitespaces = 4 }
// Everything else is skipped by wire type. The normalizer's rules are not
// applied: Llama 2, Mistral and llama2.c's models use "identity" with
// remove_extra_whitespaces off, which is what the tokenizer does.
#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/protobuf_reader.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

struct Trainer {
  int64_t model_type = 1;  // protobuf default: UNIGRAM
  bool byte_fallback = false;
  int64_t unk = 0, bos = 1, eos = 2, pad = -1;  // protobuf defaults
};

struct Normalizer {
  std::string name;
  bool add_dummy_prefix = true;
};

// Varints of int32 fields carry negative values as 64-bit two's complement.
int64_t as_int32(uint64_t v) { return int64_t(int32_t(uint32_t(v))); }

}  // namespace

VocabSpec vocab_from_sentencepiece(const std::string& path) {
  const std::string data = read_text_file(path);
  check(!data.empty(), "'{}': SentencePiece model is empty", path);
  ProtoReader r(data, fmt::format("'{}' (SentencePiece model)", path));
  VocabSpec v;
  v.model = "llama";
  Trainer t;
  Normalizer norm;
  bool have_trainer = false;
  uint32_t field;
  ProtoReader::Wire wire;
  while (r.next(field, wire)) {
    if (field == 1) {
      r.expect(wire, ProtoReader::kBytes, field);
      const size_t index = v.tokens.size();
      ProtoReader p(r.bytes(), fmt::format("'{}' (SentencePiece piece {})", path, index));
      std::string piece;
      float score = 0;
      int64_t type = 1;  // NORMAL
      uint32_t f;
      ProtoReader::Wire w;
      while (p.next(f, w)) {
        if (f == 1) {
          p.expect(w, ProtoReader::kBytes, f);
          piece = std::string(p.bytes());
        } else if (f == 2) {
          p.expect(w, ProtoReader::kFixed32, f);
          score = p.fixed32_float();
        } else if (f == 3) {
          p.expect(w, ProtoReader::kVarint, f);
          type = as_int32(p.varint());
        } else {
          p.skip(w);
        }
      }
      check(!piece.empty(), "'{}': SentencePiece piece {} is empty", path, index);
      check(type >= 1 && type <= 6, "'{}': SentencePiece piece {} has type {} (1..6 are known)", path,
            index, type);
      v.tokens.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(TokenType(type));
    } else if (field == 2) {
      r.expect(wire, ProtoReader::kBytes, field);
      have_trainer = true;
      ProtoReader p(r.bytes(), fmt::format("'{}' (SentencePiece trainer_spec)", path));
      uint32_t f;
      ProtoReader::Wire w;
      while (p.next(f, w)) {
        if (w != ProtoReader::kVarint || (f != 3 && f != 35 && (f < 40 || f > 43))) {
          p.skip(w);
          continue;
        }
        const uint64_t x = p.varint();
        switch (f) {
          case 3: t.model_type = as_int32(x); break;
          case 35: t.byte_fallback = x != 0; break;
          case 40: t.unk = as_int32(x); break;
          case 41: t.bos = as_int32(x); break;
          case 42: t.eos = as_int32(x); break;
          case 43: t.pad = as_int32(x); break;
        }
      }
    } else if (field == 3) {
      r.expect(wire, ProtoReader::kBytes, field);
      ProtoReader p(r.bytes(), fmt::format("'{}' (SentencePiece normalizer_spec)", path));
      uint32_t f;
      ProtoReader::Wire w;
      while (p.next(f, w)) {
        if (f == 1 && w == ProtoReader::kBytes) norm.name = std::string(p.bytes());
        else if (f == 3 && w == ProtoReader::kVarint) norm.add_dummy_prefix = p.varint() != 0;
        else p.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  const size_t n = v.tokens.size();
  check(n > 0, "'{}': SentencePiece model has no pieces (is this a tokenizer.model?)", path);
  check(have_trainer, "'{}': SentencePiece model has no trainer_spec", path);
  static const char* kTypes[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
  check(t.model_type == 2,
        "'{}': SentencePiece model type {} is not supported (only BPE, as Llama 2 and Mistral use)",
        path, t.model_type >= 1 && t.model_type <= 4 ? kTypes[t.model_type] : "unknown");
  auto id = [&](int64_t x, const char* what) -> int32_t {
    if (x < 0) return -1;
    check(x < int64_t(n), "'{}': SentencePiece {} id {} is out of range ({} pieces)", path, what, x, n);
    return int32_t(x);
  };
  v.unk = id(t.unk, "unk");
  v.bos = id(t.bos, "bos");
  v.eos = id(t.eos, "eos");
  v.pad = id(t.pad, "pad");
  v.add_bos = v.bos >= 0;
  v.add_space_prefix = norm.add_dummy_prefix;
  if (t.byte_fallback) {
    size_t n_bytes = 0;
    for (TokenType ty : v.types) n_bytes += ty == TokenType::kByte;
    check(n_bytes == 256, "'{}': byte_fallback is set but the model has {} byte pieces (need 256)",
          path, n_bytes);
  }
  try {
    v.validate();
  } catch (const Error& e) {
    fail("'{}': {}", path, e.what());
  }
  return v;
}

}  // namespace kvsieve
