#include "train/loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvsieve {

JudgeLoss judge_loss_from_name(const std::string& s) {
  if (s == "mse") return JudgeLoss::kMse;
  if (s == "kl") return JudgeLoss::kKl;
  fail("unknown loss '{}' (mse, kl)", s);
}

double judge_loss(JudgeLoss kind, const AttentionMaps& pred, const AttentionMaps& target,
                  const std::vector<int64_t>& layers, AttentionMaps* grad) {
  check(pred.L == target.L && pred.H == target.H && pred.n == target.n,
        "loss: prediction [{} {} {}] and target [{} {} {}] differ in shape", pred.L, pred.H,
        pred.n, target.L, target.H, target.n);
  std::vector<int64_t> ls = layers;
  if (ls.empty())
    for (int64_t l = 0; l < pred.L; ++l) ls.push_back(l);
  for (int64_t l : ls) check(l >= 0 && l < pred.L, "loss: layer {} out of range", l);
  if (grad) grad->reset(pred.L, pred.H, pred.n);
  double loss = 0;
  if (kind == JudgeLoss::kMse) {
    const double count = double(ls.size()) * double(pred.H) * double(pred.n);
    for (int64_t l : ls)
      for (int64_t h = 0; h < pred.H; ++h)
        for (int64_t j = 0; j < pred.n; ++j) {
          const double e = pred.at(l, h, j) - target.at(l, h, j);
          loss += e * e / count;
          if (grad) grad->at(l, h, j) = 2 * e / count;
        }
    return loss;
  }
  // KL(t || p) with p = pred / Σ pred, t = target / Σ target, per (l, h).
  const double rows = double(ls.size()) * double(pred.H), tiny = 1e-30;
  for (int64_t l : ls)
    for (int64_t h = 0; h < pred.H; ++h) {
      double sp = 0, st = 0;
      for (int64_t j = 0; j < pred.n; ++j) sp += pred.at(l, h, j), st += target.at(l, h, j);
      check(sp > 0 && st > 0, "loss: an all-zero attention row (layer {}, head {})", l, h);
      double dot = 0;  // Σ t_j (for the normalisation's gradient)
      for (int64_t j = 0; j < pred.n; ++j) {
        const double t = target.at(l, h, j) / st, p = pred.at(l, h, j) / sp;
        if (t > 0) loss += t * (std::log(t) - std::log(std::max(p, tiny))) / rows;
        dot += t;
      }
      if (!grad) continue;
      // d/dA_j of −Σ t log(A_j / S) = −t_j / A_j + (Σ t) / S
      for (int64_t j = 0; j < pred.n; ++j) {
        const double t = target.at(l, h, j) / st;
        grad->at(l, h, j) = (-t / std::max(pred.at(l, h, j), tiny) + dot / sp) / rows;
      }
    }
  return loss;
}

}  // namespace kvsieve
