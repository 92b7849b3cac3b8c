// Prefill/decode disaggregation: a prefill worker (rank 0) hands a request's
// KV cache to a decode worker (rank 1) layer by layer, each layer sent with
// weftSend as soon as the prefill has "computed" it, so the transfer hides
// behind the prefill; the decode worker waits for each layer's receive in
// order. The decode worker checks every byte and prints the measured times
// beside weft-sim's prediction for the same model, link and prefill pace.
//
//   two nodes (network namespaces, the link shaped to 1 Gbit/s):
//     scripts/netns.sh up kv 2 && scripts/netns.sh shape kv 0 1gbit && scripts/netns.sh shape kv 1 1gbit
//     scripts/netns.sh run kv 2 1 -- build/examples/kv_transfer --link 1Gbps --prefill-ms-per-layer 5
//   any launcher: WEFT_RANK=0|1 WEFT_NRANKS=2 WEFT_COMM_ID=HOST:PORT build/examples/kv_transfer ...
#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "sim/kv_cache.h"
#include "weft/weft.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

#define CHECK(call)                                                                                  \
  do {                                                                                               \
    weftResult_t r_ = (call);                                                                        \
    if (r_ != weftSuccess) {                                                                         \
      fprintf(stderr, "%s failed: %s: %s\n", #call, weftGetErrorString(r_), weftGetLastError(comm)); \
      return 1;                                                                                      \
    }                                                                                                \
  } while (0)

// The word at index i of layer l (what the prefill writes, the decode checks).
uint32_t word(size_t layer, size_t i) { return static_cast<uint32_t>(layer * 0x9E3779B1u) ^ static_cast<uint32_t>(i); }

struct Options {
  std::string model = "llama3-8b";
  double tokens = 1024;
  double requests = 1;
  double prefillSecondsPerLayer = 0;
  double linkGbps = 1;
  double latencySeconds = 0;
  int repeats = 3;
};

void usage(const char* argv0) {
  fprintf(stderr,
          "usage: %s [--model llama3-8b|llama3-70b|llama3-405b] [--tokens T] [--requests R]\n"
          "          [--prefill-ms-per-layer MS] [--link RATE (the link's rate, for the prediction: 1Gbps)]\n"
          "          [--latency-us US] [--repeat N]\n"
          "Two ranks: WEFT_RANK, WEFT_NRANKS=2 and WEFT_COMM_ID (or scripts/netns.sh run).\n",
          argv0);
}

bool parse(int argc, char** argv, Options* o) {
  const option longOptions[] = {
      {"model", required_argument, nullptr, 'm'},    {"tokens", required_argument, nullptr, 't'},
      {"requests", required_argument, nullptr, 'r'}, {"prefill-ms-per-layer", required_argument, nullptr, 'p'},
      {"link", required_argument, nullptr, 'l'},     {"latency-us", required_argument, nullptr, 'u'},
      {"repeat", required_argument, nullptr, 'n'},   {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", longOptions, nullptr)) != -1) {
    switch (c) {
      case 'm': o->model = optarg; break;
      case 't': o->tokens = atof(optarg); break;
      case 'r': o->requests = atof(optarg); break;
      case 'p': o->prefillSecondsPerLayer = atof(optarg) * 1e-3; break;
      case 'l': {
        std::optional<double> gbps = weft::sim::parseLinkGbps(optarg);
        if (!gbps) {
          fprintf(stderr, "--link %s: not a rate (100Gbps, 400G, 1.6Tbps)\n", optarg);
          return false;
        }
        o->linkGbps = *gbps;
        break;
      }
      case 'u': o->latencySeconds = atof(optarg) * 1e-6; break;
      case 'n': o->repeats = std::max(1, atoi(optarg)); break;
      default: return false;
    }
  }
  return o->tokens > 0 && o->requests > 0 && o->prefillSecondsPerLayer >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  weftComm_t comm = nullptr;
  Options o;
  if (!parse(argc, argv, &o)) {
    usage(argv[0]);
    return 2;
  }
  std::optional<weft::sim::KvModel> model = weft::sim::findKvModel(o.model);
  if (!model) {
    fprintf(stderr, "unknown model %s\n", o.model.c_str());
    return 2;
  }
  const char* rankText = getenv("WEFT_RANK");
  const char* nranksText = getenv("WEFT_NRANKS");
  if (rankText == nullptr || nranksText == nullptr || atoi(nranksText) != 2 || getenv("WEFT_COMM_ID") == nullptr) {
    usage(argv[0]);
    return 2;
  }
  int rank = atoi(rankText);
  size_t layers = static_cast<size_t>(model->layers);
  auto totalBytes = static_cast<size_t>(weft::sim::kvBytes(*model, o.tokens, o.requests));
  size_t layerWords = totalBytes / layers / sizeof(uint32_t);
  size_t layerBytes = layerWords * sizeof(uint32_t);
  totalBytes = layerBytes * layers;

  weftUniqueId id;
  CHECK(weftGetUniqueId(&id));  // the same id in both processes, from WEFT_COMM_ID
  CHECK(weftCommInitRank(&comm, 2, id, rank));
  std::vector<uint32_t> cache(layerWords * layers);
  if (rank == 0)
    for (size_t l = 0; l < layers; ++l)
      for (size_t i = 0; i < layerWords; ++i) cache[l * layerWords + i] = word(l, i);

  std::vector<double> totals, exposed;
  size_t wrong = 0;
  for (int repeat = 0; repeat < o.repeats; ++repeat) {
    if (rank == 1) std::fill(cache.begin(), cache.end(), 0);
    int one = 1, both = 0;  // both workers start together
    CHECK(weftAllReduce(&one, &both, 1, weftInt32, weftSum, comm, nullptr));
    CHECK(weftCommSynchronize(comm));
    double start = now();
    if (rank == 0) {
      for (size_t l = 0; l < layers; ++l) {
        // The prefill computes layer l (here: waits for its share of the time).
        while (now() - start < static_cast<double>(l + 1) * o.prefillSecondsPerLayer) {
        }
        CHECK(weftSend(cache.data() + l * layerWords, layerBytes, weftUint8, 1, comm, nullptr));
      }
      CHECK(weftCommSynchronize(comm));
      continue;
    }
    std::vector<unsigned long long> seqs(layers);
    for (size_t l = 0; l < layers; ++l) {
      CHECK(weftRecv(cache.data() + l * layerWords, layerBytes, weftUint8, 0, comm, nullptr));
      CHECK(weftCommGetSeq(comm, &seqs[l]));
    }
    for (size_t l = 0; l < layers; ++l) CHECK(weftCommWaitSeq(comm, seqs[l]));
    double total = now() - start;
    totals.push_back(total);
    exposed.push_back(total - static_cast<double>(layers) * o.prefillSecondsPerLayer);
    for (size_t l = 0; l < layers; ++l)
      for (size_t i = 0; i < layerWords; ++i) wrong += cache[l * layerWords + i] != word(l, i) ? 1 : 0;
  }
  CHECK(weftCommDestroy(comm));
  if (rank != 1) return 0;

  std::sort(totals.begin(), totals.end());
  std::sort(exposed.begin(), exposed.end());
  double medianTotal = totals[totals.size() / 2], medianExposed = exposed[exposed.size() / 2];
  double predictedTransfer = weft::sim::transferSeconds(static_cast<double>(totalBytes), o.linkGbps, o.latencySeconds);
  double predictedExposed = weft::sim::exposedSecondsPipelined(*model, static_cast<double>(totalBytes), o.linkGbps,
                                                               o.prefillSecondsPerLayer, o.latencySeconds);
  double prefill = static_cast<double>(layers) * o.prefillSecondsPerLayer;
  printf("# kv_transfer: %s, %.0f token(s) x %.0f request(s): %zu layers x %zu bytes = %.3f GB\n", o.model.c_str(),
         o.tokens, o.requests, layers, layerBytes, static_cast<double>(totalBytes) * 1e-9);
  printf("# link %.3g Gbit/s, latency %.0f us, prefill %.3f ms per layer; median of %d run(s)\n", o.linkGbps,
         o.latencySeconds * 1e6, o.prefillSecondsPerLayer * 1e3, o.repeats);
  printf("%-34s %12s %12s %8s\n", "", "measured s", "predicted s", "ratio");
  printf("%-34s %12.4f %12.4f %8.2f\n", "prefill + transfer (to last layer)", medianTotal, prefill + predictedExposed,
         medianTotal / (prefill + predictedExposed));
  printf("%-34s %12.4f %12.4f %8.2f\n", "exposed after the prefill", medianExposed, predictedExposed,
         medianExposed / predictedExposed);
  printf("%-34s %12s %12.4f\n", "the whole cache at once", "", predictedTransfer);
  printf("wrong words: %zu of %zu\n", wrong, layerWords * layers * totals.size());
  return wrong == 0 ? 0 : 1;
}
