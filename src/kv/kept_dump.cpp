#include "kv/kept_dump.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kvsieve {

std::string kept_to_json(const Evictor& ev, const EvictionReport& r) {
  using nlohmann::json;
  const EvictionConfig& c = ev.config();
  json j;
  j["method"] = ev.policy().spec;
  j["preset"] = c.preset;
  j["granularity"] = granularity_name(c.granularity);
  j["budget"] = c.budget.by_ratio() ? json{{"ratio", c.budget.ratio}} : json{{"tokens", c.budget.tokens}};
  j["prompt_tokens"] = r.n_rows_before;
  j["n_layer"] = r.kept.n_layer;
  j["n_heads"] = r.kept.n_heads;
  json layers = json::array();
  for (int64_t l = 0; l < r.kept.n_layer; ++l) {
    json heads = json::array();
    for (int64_t s = 0; s < r.kept.n_heads; ++s)
      heads.push_back({{"head", s},
                       {"budget", r.budget[size_t(l * r.kept.n_heads + s)]},
                       {"kept", std::vector<int32_t>(r.kept.at(l, s).begin(), r.kept.at(l, s).end())}});
    layers.push_back({{"layer", l}, {"heads", heads}});
  }
  j["layers"] = layers;
  return j.dump() + "\n";
}

KeepSets kept_from_json(const std::string& text) {
  using nlohmann::json;
  KeepSets ks;
  try {
    const json j = json::parse(text);
    ks.n_layer = j.at("n_layer").get<int64_t>();
    ks.n_heads = j.at("n_heads").get<int64_t>();
    check(ks.n_layer > 0 && ks.n_heads > 0 && ks.n_layer * ks.n_heads < (int64_t(1) << 24),
          "keep sets: bad shape {} x {}", ks.n_layer, ks.n_heads);
    std::vector<std::vector<int32_t>> lists(size_t(ks.n_layer * ks.n_heads));
    const json& layers = j.at("layers");
    check(int64_t(layers.size()) == ks.n_layer, "keep sets: {} layers listed, {} declared",
          layers.size(), ks.n_layer);
    for (const json& L : layers) {
      const int64_t l = L.at("layer").get<int64_t>();
      check(l >= 0 && l < ks.n_layer, "keep sets: layer {} out of range", l);
      for (const json& H : L.at("heads")) {
        const int64_t s = H.at("head").get<int64_t>();
        check(s >= 0 && s < ks.n_heads, "keep sets: head {} out of range", s);
        lists[size_t(l * ks.n_heads + s)] = H.at("kept").get<std::vector<int32_t>>();
      }
    }
    ks = KeepSets::from_lists(ks.n_layer, ks.n_heads, lists);
  } catch (const json::exception& e) {
    fail("keep sets: not a kvsieve --dump-kept file: {}", e.what());
  }
  return ks;
}

}  // namespace kvsieve
