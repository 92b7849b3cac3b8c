#include "sim/kv_cache.h"

#include <algorithm>
#include <cstdlib>
#include <strings.h>

namespace weft::sim {

const std::vector<KvModel>& kvModels() {
  static const std::vector<KvModel> models = {
      {"llama3-8b", 32, 8, 128},
      {"llama3-70b", 80, 8, 128},
      {"llama3-405b", 126, 8, 128},
  };
  return models;
}

std::optional<KvModel> findKvModel(const std::string& name) {
  for (const KvModel& model : kvModels())
    if (strcasecmp(model.name.c_str(), name.c_str()) == 0) return model;
  return std::nullopt;
}

double kvBytesPerTokenLayer(const KvModel& model, int elementBytes) {
  return 2.0 * model.kvHeads * model.headDim * elementBytes;
}

double kvBytes(const KvModel& model, double tokens, double requests, int elementBytes) {
  return kvBytesPerTokenLayer(model, elementBytes) * model.layers * tokens * requests;
}

double transferSeconds(double bytes, double gbitPerSecond, double latencySeconds) {
  return latencySeconds + bytes * 8 / (gbitPerSecond * 1e9);
}

double exposedSecondsPipelined(const KvModel& model, double bytes, double gbitPerSecond, double prefillSecondsPerLayer,
                               double latencySeconds) {
  double perLayer = bytes / model.layers * 8 / (gbitPerSecond * 1e9);
  // The link finishes layer l at max(its compute end, the previous layer's
  // transfer end) + perLayer; the prefill ends at layers x prefill.
  double linkFree = 0;
  for (int l = 1; l <= model.layers; ++l) linkFree = std::max(linkFree, l * prefillSecondsPerLayer) + perLayer;
  return linkFree - model.layers * prefillSecondsPerLayer + latencySeconds;
}

std::optional<double> parseLinkGbps(const std::string& text) {
  char* end = nullptr;
  double value = strtod(text.c_str(), &end);
  if (end == text.c_str() || value <= 0) return std::nullopt;
  std::string unit(end);
  double scale = 1;
  if (unit.empty() || strcasecmp(unit.c_str(), "G") == 0 || strcasecmp(unit.c_str(), "Gbps") == 0 ||
      strcasecmp(unit.c_str(), "Gbit/s") == 0)
    scale = 1;
  else if (strcasecmp(unit.c_str(), "T") == 0 || strcasecmp(unit.c_str(), "Tbps") == 0)
    scale = 1000;
  else if (strcasecmp(unit.c_str(), "M") == 0 || strcasecmp(unit.c_str(), "Mbps") == 0)
    scale = 1e-3;
  else
    return std::nullopt;
  return value * scale;
}

}  // namespace weft::sim
