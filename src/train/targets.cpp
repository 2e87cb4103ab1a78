#include "train/targets.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "backend/host_access.h"
#include "engine/context.h"
#include "engine/generate.h"

namespace kvsieve {

JudgeTarget compute_target(const Model& m, Backend& be, const std::vector<int32_t>& prompt,
                           int64_t n_scored, int64_t max_response) {
  const ModelConfig& c = m.config();
  check(!prompt.empty() && n_scored > 0 && n_scored <= int64_t(prompt.size()),
        "target: bad prompt split ({} of {} tokens)", n_scored, prompt.size());
  JudgeTarget t;
  t.maps.reset(c.n_layer, c.n_head, n_scored);
  // Greedy response with the full cache.
  {
    Context s(m, be);
    DecodeParams dp;
    dp.max_tokens = max_response;
    t.response = decode_tokens(s, s.prefill(prompt, 256), dp);
  }
  if (t.response.empty()) return t;
  // Teacher-force it after a fresh prefill of the prompt, recording each
  // response token's queries; each then attends (causally, by position) over
  // the prompt and the response tokens before it, as it did while decoding.
  const int64_t R = int64_t(t.response.size());
  Context f(m, be);
  f.prefill(prompt, 256);
  f.record(RecordSpec{R, false});
  for (int32_t id : t.response) f.decode(id);
  f.pause_recording(true);
  const KvStore& st = f.store();
  const int64_t H = c.n_head;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const ProbeBlock q = f.recorder()->window(l);
    const int64_t ld = st.max_rows(l);
    DeviceArray<float> probs(be, R * H * ld);
    ProbeAttentionArgs a;
    a.kv = st.layer(l);
    a.q = q.q.data();
    a.q_pos = q.pos.data();
    a.n_probe = R;
    a.n_head = H;
    a.probs = probs.data();
    a.probs_ld = ld;
    be.probe_attention(a);
    const HostRead<float> p(be, probs.data(), probs.size());
    for (int64_t r = 0; r < R; ++r)  // summed in the order the tokens were decoded
      for (int64_t h = 0; h < H; ++h) {
        const float* row = p.data() + (r * H + h) * ld;
        for (int64_t j = 0; j < n_scored; ++j) t.maps.at(l, h, j) += double(row[j]) / double(R);
      }
  }
  return t;
}

std::string target_cache_key(const std::string& fp, const std::vector<int32_t>& prompt,
                             int64_t n_scored, int64_t max_response) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  };
  mix(fp.data(), fp.size());
  mix(prompt.data(), prompt.size() * sizeof(int32_t));
  mix(&n_scored, sizeof n_scored);
  mix(&max_response, sizeof max_response);
  return fmt::format("{:016x}", h);
}

// File: "KVSJQT1\n", then int64 L, H, n, R, the R response ids (int32) and
// the L·H·n maps (f64).
void save_target(const std::string& path, const JudgeTarget& t) {
  std::string b = "KVSJQT1\n";
  auto put = [&b](const void* p, size_t n) { b.append(static_cast<const char*>(p), n); };
  const int64_t hdr[4] = {t.maps.L, t.maps.H, t.maps.n, int64_t(t.response.size())};
  put(hdr, sizeof hdr);
  put(t.response.data(), t.response.size() * sizeof(int32_t));
  put(t.maps.a.data(), t.maps.a.size() * sizeof(double));
  write_file_atomic(path, b);
}

bool load_target(const std::string& path, JudgeTarget& t) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 8 + 32 || b.compare(0, 8, "KVSJQT1\n") != 0) return false;
  int64_t hdr[4];
  std::memcpy(hdr, b.data() + 8, sizeof hdr);
  if (hdr[0] <= 0 || hdr[1] <= 0 || hdr[2] <= 0 || hdr[3] < 0 || hdr[0] > 4096 || hdr[1] > 4096 ||
      hdr[2] > (int64_t(1) << 26) || hdr[3] > (int64_t(1) << 20))
    return false;
  const size_t need = 8 + sizeof hdr + size_t(hdr[3]) * 4 + size_t(hdr[0] * hdr[1] * hdr[2]) * 8;
  if (b.size() != need) return false;  // a cut file is recomputed
  t.response.resize(size_t(hdr[3]));
  std::memcpy(t.response.data(), b.data() + 8 + sizeof hdr, t.response.size() * 4);
  t.maps.reset(hdr[0], hdr[1], hdr[2]);
  std::memcpy(t.maps.a.data(), b.data() + 8 + sizeof hdr + t.response.size() * 4, t.maps.a.size() * 8);
  return true;
}

}  // namespace kvsieve
