// KV-cache transfers between prefill and decode workers: how many bytes a
// request's cache holds, from the model's shape, and what moving it costs
// over a link. A cache holds, per token and layer, one key and one value
// vector per KV head: 2 x KV heads x head dim x element bytes (2 at FP16).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace weft::sim {

struct KvModel {
  std::string name;
  int layers = 0;
  int kvHeads = 0;
  int headDim = 0;
};

// Llama 3 8B, 70B and 405B (grouped-query attention, 8 KV heads of 128).
const std::vector<KvModel>& kvModels();
std::optional<KvModel> findKvModel(const std::string& name);

// Bytes of the cache of one token in one layer, and of `tokens` tokens in
// every layer for `requests` requests.
double kvBytesPerTokenLayer(const KvModel& model, int elementBytes = 2);
double kvBytes(const KvModel& model, double tokens, double requests, int elementBytes = 2);

// Seconds to move `bytes` over a link of `gbitPerSecond` (10^9 bit/s)
// whose one-way latency is latencySeconds.
double transferSeconds(double bytes, double gbitPerSecond, double latencySeconds = 0);

// The transfer pipelined with the prefill, a layer at a time: layer l's
// cache leaves as soon as the prefill has computed it, so what the decode
// worker waits for after the prefill ends is what the link has not yet
// moved then (at least the last layer's transfer).
double exposedSecondsPipelined(const KvModel& model, double bytes, double gbitPerSecond, double prefillSecondsPerLayer,
                               double latencySeconds = 0);

// "100Gbps", "400G", "1.6Tbps", "800" (Gbit/s); nullopt when unreadable.
std::optional<double> parseLinkGbps(const std::string& text);

}  // namespace weft::sim
