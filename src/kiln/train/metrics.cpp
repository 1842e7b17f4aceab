// EpochMetrics as one line of metrics.jsonl, and back.
#include <nlohmann/json.hpp>

#include <cmath>

#include "kiln/train/trainer.h"

namespace kiln {

std::string EpochMetrics::to_json() const {
  nlohmann::ordered_json j;
  j["epoch"] = epoch;
  j["train_loss"] = train_loss;
  j["train_acc"] = train_acc;
  if (evaluated) {
    j["test_loss"] = test_loss;
    j["test_acc"] = test_acc;
    if (!test_class_acc.empty()) j["test_class_acc"] = test_class_acc;  // NaN is written as null
  }
  if (!std::isnan(student_labeled_loss)) {
    j["student_labeled_loss"] = student_labeled_loss;
    j["student_pseudo_loss"] = student_pseudo_loss;
  }
  j["lr"] = lr;
  j["epoch_seconds"] = epoch_seconds;
  j["eval_seconds"] = eval_seconds;
  j["images_per_s"] = images_per_s;
  j["train_seconds"] = train_seconds;
  j["live_allocations"] = live_allocations;
  j["live_bytes"] = live_bytes;
  return j.dump();
}

EpochMetrics EpochMetrics::from_json(const std::string& line) {
  auto e = nlohmann::json::parse(line);
  EpochMetrics m;
  m.epoch = e["epoch"];
  m.train_loss = e["train_loss"];
  m.train_acc = e["train_acc"];
  m.evaluated = e.contains("test_acc");
  if (m.evaluated) m.test_loss = e["test_loss"], m.test_acc = e["test_acc"];
  if (e.contains("test_class_acc"))
    for (auto& a : e["test_class_acc"]) m.test_class_acc.push_back(a.is_null() ? std::nan("") : a.get<double>());
  if (e.contains("student_labeled_loss"))
    m.student_labeled_loss = e["student_labeled_loss"], m.student_pseudo_loss = e["student_pseudo_loss"];
  m.lr = e["lr"];
  m.epoch_seconds = e["epoch_seconds"];
  m.eval_seconds = e["eval_seconds"];
  m.images_per_s = e["images_per_s"];
  m.train_seconds = e["train_seconds"];
  m.live_allocations = e.value("live_allocations", int64_t{0});
  m.live_bytes = e.value("live_bytes", int64_t{0});
  return m;
}

}  // namespace kiln
