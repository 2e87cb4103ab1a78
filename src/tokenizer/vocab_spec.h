// Everything needed to build a tokenizer, in the shape of GGUF's
// tokenizer.ggml.* metadata. Each source format (GGUF, tokenizer.json,
// SentencePiece tokenizer.model, tiktoken tokenizer.model, llama2.c
// tokenizer.bin) is converted into a VocabSpec; the GGUF writer stores one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kvsieve {

// Token types, numbered as in GGUF / llama.cpp.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,       // special tokens: <s>, </s>, <|eot_id|>
  kUserDefined = 4,   // added tokens matched verbatim in the input
  kUnused = 5,
  kByte = 6,          // SentencePiece byte fallback <0xNN>
};

struct VocabSpec {
  // "llama": SentencePiece-style BPE on scores; "gpt2": byte-level BPE on merges.
  std::string model = "llama";
  // Pre-tokenizer for byte-level BPE: "gpt2", "llama3" (alias "llama-bpe"),
  // "qwen2"; "default" means gpt2.
  std::string pre = "default";
  std::vector<std::string> tokens;  // token text as stored (SPM uses U+2581 for space,
                                    // byte-level BPE its byte-to-unicode map)
  std::vector<float> scores;        // SPM merge priority; may be empty for BPE
  std::vector<TokenType> types;     // empty = all normal
  std::vector<std::string> merges;  // BPE only: "left right", rank = index
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;     // SPM dummy prefix
  // Where the SPM dummy prefix goes, when add_space_prefix is set:
  //  ""       SentencePiece / llama.cpp: before the text and after every special token;
  //  "always" Hugging Face Metaspace(prepend_scheme="always"): the same, except where the
  //           run of text already starts with a space;
  //  "first"  Metaspace(prepend_scheme="first"): only at the very start of the input,
  //           and not when it starts with a space.
  // GGUF has no key for it: written as kvsieve.tokenizer.prefix_scheme when not "".
  std::string prefix_scheme;
  std::string chat_template;        // Jinja text if the source had one

  // Throws Error when ids are out of range, sizes disagree, etc.
  void validate() const;
};

}  // namespace kvsieve
