// Every source of a tokenizer, converted into a VocabSpec. Each loader
// validates what it reads and throws Error naming the file and the problem.
#pragma once
#include <string>

#include "tokenizer/vocab_spec.h"

namespace kvsieve {

class GgufFile;
class GgufWriter;

// tokenizer.ggml.* metadata of a GGUF file. Throws if the file has none.
VocabSpec vocab_from_gguf(const GgufFile& f);
bool gguf_has_vocab(const GgufFile& f);
// Writes tokenizer.ggml.* metadata.
void vocab_to_gguf(const VocabSpec& v, GgufWriter& w);

// Hugging Face tokenizer.json (BPE models: SentencePiece-style with byte
// fallback, or byte-level), with tokenizer_config.json beside it when present
// (add_bos_token, chat_template, bos/eos).
VocabSpec vocab_from_tokenizer_json(const std::string& tokenizer_json_path);

// SentencePiece tokenizer.model (protobuf ModelProto), e.g. Llama 2's.
VocabSpec vocab_from_sentencepiece(const std::string& path);

// Meta's tiktoken-format tokenizer.model (Llama 3): "base64 rank" per line,
// plus Llama 3's 256 special tokens.
VocabSpec vocab_from_tiktoken(const std::string& path);

// llama2.c tokenizer.bin: i32 max_token_length, then per token f32 score,
// i32 length, bytes. n_vocab comes from the model header.
VocabSpec vocab_from_llama2c(const std::string& path, int64_t n_vocab);

// Looks at a tokenizer file's content and calls the matching loader
// (tokenizer.json, SentencePiece protobuf, tiktoken text, GGUF vocab).
VocabSpec load_vocab_file(const std::string& path);

}  // namespace kvsieve
