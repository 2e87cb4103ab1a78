// Model files: what a file holds, conversion to GGUF (optionally quantized),
// random-weight models of any shape, and the NumPy files the command line
// reads and writes. Every writer writes to a temporary file and renames it,
// so a failure leaves no partial output.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kvsieve {

// A readable description of a model file (format, hyper-parameters, RoPE,
// tensors, tokenizer) or of a Judge Q soft-token file, read through the same
// loaders the engine uses (so what the engine would refuse is refused here
// with the same message). all_tensors: list every tensor, not only the
// global ones and layer 0.
struct InspectOptions {
  std::string model;
  std::string tokenizer;  // a tokenizer file replacing the model's (llama2.c: its tokenizer.bin)
  bool llama2c = false;   // read `model` as a llama2.c checkpoint
  bool all_tensors = false;
};
std::string describe_model_file(const InspectOptions& o);

struct ConvertOptions {
  std::string model;      // a GGUF file or a Hugging Face folder, or
  std::string llama2c;    // a llama2.c checkpoint (.bin), with `tokenizer`
  std::string tokenizer;  // llama2.c: its tokenizer.bin; else a tokenizer file replacing the model's
  std::string out;        // the GGUF to write
  std::string type;       // type of 2-D weight matrices: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k,
                          // or the K-quant mixes q4_k_m, q5_k_m ("": keep)
  std::string name;       // general.name to write ("": keep)
};
// log receives one line per step (what is read, converted, written).
void convert_model(const ConvertOptions& o, const std::function<void(const std::string&)>& log);

struct RandomModelOptions {
  std::string out;
  std::string arch = "llama";  // llama or qwen2
  int64_t dim = 768, layers = 12, heads = 12, kv_heads = 4, ff = 2048;
  int64_t vocab_size = 0;      // 0: the vocabulary file's size
  int64_t ctx = 8192;
  std::string vocab;           // tokenizer file to embed
  std::string type = "f32";    // as ConvertOptions::type
  uint64_t seed = 1;
};
// Writes the model; returns its parameter count.
int64_t write_random_model(const RandomModelOptions& o);

// NumPy files: int32 token ids (1-D) and float32 arrays.
std::vector<int32_t> read_npy_ids(const std::string& path);
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// A text file's contents, checked to be UTF-8 (Error names the offset).
std::string read_text_file_utf8(const std::string& path);
// Throws Error naming the offset of the first invalid UTF-8 sequence.
void check_utf8(const std::string& text, const std::string& what);

// Writes bytes to path through a temporary file and a rename.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace kvsieve
