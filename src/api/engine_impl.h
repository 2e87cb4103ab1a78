// What the public Engine and Session hold (include/kvsieve/engine.h,
// session.h): the loaded model, the device sessions run on, and each
// session's backend, context and compressor.
#pragma once
#include <memory>

#include "backend/backend.h"
#include "engine/compressor.h"
#include "engine/context.h"
#include "kvsieve/engine.h"
#include "model/model.h"

namespace kvsieve {

struct Engine::Impl {
  EngineOptions opts;
  ModelInfo info;
  DeviceKind device = DeviceKind::kCpu;
  GpuMath math = GpuMath::kTensor;
  std::unique_ptr<Model> model;          // null when vocab_only
  std::unique_ptr<Tokenizer> vocab_tok;  // the tokenizer when vocab_only
  const Tokenizer* tok() const { return model ? model->tokenizer() : vocab_tok.get(); }
  const Tokenizer& need_tok() const;
  const Model& need_model() const;
  // A backend for one session or job (CPU threads: `threads`, else the engine's).
  std::unique_ptr<Backend> make_backend(int threads) const;
};

}  // namespace kvsieve
