// The public Judge Q tools (include/kvsieve/judgeq.h).
#include <filesystem>
#include <fstream>

#include "api/engine_impl.h"
#include "core/error.h"
#include "engine/soft_tokens.h"
#include "io/gguf.h"
#include "train/overlap.h"
#include "train/trainer.h"

namespace kvsieve {

int64_t judgeq_init(const Engine& engine, std::vector<int32_t> ids, int64_t count,
                    const std::string& origin, const std::string& out) {
  check(!ids.empty(), "soft tokens: no token ids to start from");
  check(count >= 0 && count <= 4096, "soft tokens: count must be in [1, 4096]");
  if (count > 0) {  // repeat or cut to count rows
    std::vector<int32_t> r;
    for (int64_t i = 0; i < count; ++i) r.push_back(ids[size_t(i) % ids.size()]);
    ids.swap(r);
  }
  const SoftTokens s = soft_tokens_from_ids(engine.impl().need_model(), ids, origin);
  write_soft_tokens(out, s);
  return s.m;
}

SoftTokenInfo read_soft_token_info(const std::string& path) {
  SoftTokenInfo info;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return info;
  {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    if (!in.read(magic, 4) || std::string(magic, 4) != "GGUF") return info;
  }
  if (GgufFile(path).get_string("general.architecture").value_or("") != "judgeq") return info;
  const SoftTokens s = read_soft_tokens(path);
  info.ok = true;
  info.count = s.m;
  info.n_embd = s.n_embd;
  info.n_layer = s.n_layer;
  info.n_vocab = s.n_vocab;
  info.arch = s.arch;
  info.fingerprint = s.fingerprint;
  info.origin = s.origin;
  return info;
}

TrainResult train_judgeq(const Engine& engine, const TrainConfig& cfg) {
  const Engine::Impl& e = engine.impl();
  const Model& m = e.need_model();
  for (int64_t l : cfg.layers)
    check(l >= 0 && l < m.config().n_layer, "layers: {} is not a layer of this model", l);
  const auto be = make_backend(DeviceKind::kCpu, cfg.threads > 0 ? cfg.threads : e.opts.threads);
  return train_judgeq(m, *be, cfg);
}

std::vector<OverlapRow> keep_set_overlap(const Engine& engine, const std::string& data,
                                         const OverlapConfig& cfg) {
  const Engine::Impl& e = engine.impl();
  const auto be = e.make_backend(cfg.threads);
  return keep_set_overlap(e.need_model(), *be, data, cfg);
}

}  // namespace kvsieve
