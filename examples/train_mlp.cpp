// Data-parallel training of a multi-layer perceptron on host memory, with
// gradients all-reduced through weft::Bucketer while backward still runs.
//
// Every rank holds the same model (same seed) and its own synthetic
// regression data: targets from a fixed random "teacher" network, inputs
// drawn per rank. Forward and backward are OpenBLAS sgemm calls; the
// optimizer is plain SGD on the averaged gradients. Backward computes the
// last layer first and marks each gradient ready as soon as it is written,
// so the bucket holding the last layers is on the wire while the first
// layers are still being differentiated.
//
//   train_mlp --ranks 2                        2 processes on this host
//   WEFT_RANK=r WEFT_NRANKS=n WEFT_COMM_ID=host:port train_mlp ...   any launcher
//   train_mlp --ranks 2 --no-overlap            one all-reduce after backward
//
// Per step it prints the loss and the bucketer's figures (DDP's definitions:
// backward compute = first to last markReady; communication = first bucket
// launch to last completion; exposed = last markReady to last completion);
// at the end the averages, and whether every rank holds identical weights
// (a digest of every weight's bits, all-gathered): exit status 1 if not.
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "weft/bucket.hpp"

namespace {

struct Options {
  int ranks = 0;  // 0: from WEFT_RANK/WEFT_NRANKS, or one rank
  int steps = 20;
  int warmup = 2;  // steps left out of the averages
  int batch = 256;
  int input = 64;
  int hidden = 1000;
  int layers = 3;  // hidden layers
  int output = 16;
  float learningRate = 0.05f;
  size_t firstBucketKiB = 1024;
  size_t bucketCapKiB = 25 * 1024;
  bool copyIn = false;
  bool noOverlap = false;
  bool quiet = false;
  bool timeline = false;
  int computeNice = 0;
  int blasThreads = 1;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void usage() {
  printf(
      "train_mlp: data-parallel MLP training with weft's gradient bucketer\n"
      "  --ranks N          start N processes on this host (default: WEFT_RANK/WEFT_NRANKS/WEFT_COMM_ID, or 1)\n"
      "  --steps S          training steps (20); --warmup W: steps left out of the averages (2)\n"
      "  --batch B          samples per rank and step (256)\n"
      "  --input I --hidden H --layers L --output O   layer widths (64, 1000, 3 hidden, 16)\n"
      "  --first-bucket-kb K, --bucket-cap-kb K       bucket sizes (1024, 25600)\n"
      "  --copy-in          gradients in the program's buffers, copied in and out (default: bucket views)\n"
      "  --no-overlap       one all-reduce of every gradient after backward, for comparison\n"
      "  --lr X             learning rate (0.05); --blas-threads T (1); --quiet: averages only\n"
      "  --timeline         after each step, when each bucket was launched and seen complete\n"
      "  --compute-nice N   run forward/backward at nice N (weft's threads keep theirs: with every core\n"
      "                     computing, communication then still runs when its data arrives)\n");
}

bool parse(int argc, char** argv, Options& o) {
  static const option kLong[] = {{"ranks", 1, nullptr, 'n'},
                                 {"steps", 1, nullptr, 's'},
                                 {"warmup", 1, nullptr, 'w'},
                                 {"batch", 1, nullptr, 'b'},
                                 {"input", 1, nullptr, 'i'},
                                 {"hidden", 1, nullptr, 'H'},
                                 {"layers", 1, nullptr, 'L'},
                                 {"output", 1, nullptr, 'o'},
                                 {"lr", 1, nullptr, 'r'},
                                 {"first-bucket-kb", 1, nullptr, 'f'},
                                 {"bucket-cap-kb", 1, nullptr, 'c'},
                                 {"copy-in", 0, nullptr, 'C'},
                                 {"no-overlap", 0, nullptr, 'N'},
                                 {"quiet", 0, nullptr, 'q'},
                                 {"timeline", 0, nullptr, 'T'},
                                 {"compute-nice", 1, nullptr, 'P'},
                                 {"blas-threads", 1, nullptr, 't'},
                                 {"help", 0, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    switch (c) {
      case 'n': o.ranks = atoi(optarg); break;
      case 's': o.steps = atoi(optarg); break;
      case 'w': o.warmup = atoi(optarg); break;
      case 'b': o.batch = atoi(optarg); break;
      case 'i': o.input = atoi(optarg); break;
      case 'H': o.hidden = atoi(optarg); break;
      case 'L': o.layers = atoi(optarg); break;
      case 'o': o.output = atoi(optarg); break;
      case 'r': o.learningRate = static_cast<float>(atof(optarg)); break;
      case 'f': o.firstBucketKiB = strtoull(optarg, nullptr, 10); break;
      case 'c': o.bucketCapKiB = strtoull(optarg, nullptr, 10); break;
      case 'C': o.copyIn = true; break;
      case 'N': o.noOverlap = true; break;
      case 'q': o.quiet = true; break;
      case 'T': o.timeline = true; break;
      case 'P': o.computeNice = atoi(optarg); break;
      case 't': o.blasThreads = atoi(optarg); break;
      default: usage(); return false;
    }
  }
  if (o.steps < 1 || o.batch < 1 || o.input < 1 || o.hidden < 1 || o.layers < 0 || o.output < 1 || o.warmup < 0 ||
      o.firstBucketKiB < 1 || o.bucketCapKiB < 1) {
    fprintf(stderr, "train_mlp: sizes and counts must be positive\n");
    return false;
  }
  return true;
}

// One fully connected layer: y = x W^T + b, W is out x in (row major).
struct Layer {
  int in, out;
  std::vector<float> weight, bias;
  float* gradWeight = nullptr;  // where backward writes (a bucket view, or own)
  float* gradBias = nullptr;
  std::vector<float> ownWeight, ownBias;  // copy-in and no-overlap modes
  int weightIndex = -1, biasIndex = -1;   // in the bucketer
};

class Mlp {
 public:
  Mlp(const Options& o, unsigned seed) {
    std::vector<int> widths = {o.input};
    for (int l = 0; l < o.layers; ++l) widths.push_back(o.hidden);
    widths.push_back(o.output);
    std::mt19937 rng(seed);
    for (size_t l = 0; l + 1 < widths.size(); ++l) {
      Layer layer{widths[l], widths[l + 1], {}, {}};
      std::normal_distribution<float> init(0.0f, std::sqrt(2.0f / static_cast<float>(layer.in)));
      layer.weight.resize(static_cast<size_t>(layer.in) * layer.out);
      for (float& w : layer.weight) w = init(rng);
      layer.bias.assign(static_cast<size_t>(layer.out), 0.0f);
      layers_.push_back(std::move(layer));
    }
    activations_.resize(layers_.size() + 1);
  }
  std::vector<Layer>& layers() { return layers_; }
  size_t parameters() const {
    size_t n = 0;
    for (const Layer& l : layers_) n += l.weight.size() + l.bias.size();
    return n;
  }

  // Forward: activations_[l] is layer l's input; ReLU between layers.
  const std::vector<float>& forward(const std::vector<float>& x, int batch) {
    activations_[0] = x;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      std::vector<float>& y = activations_[l + 1];
      y.resize(static_cast<size_t>(batch) * layer.out);
      for (int r = 0; r < batch; ++r) std::copy(layer.bias.begin(), layer.bias.end(), y.begin() + r * layer.out);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, layer.out, layer.in, 1.0f, activations_[l].data(),
                  layer.in, layer.weight.data(), layer.in, 1.0f, y.data(), layer.out);
      if (l + 1 < layers_.size())
        for (float& v : y) v = std::max(v, 0.0f);
    }
    return activations_.back();
  }

  // Backward from dLoss/dOutput, last layer first; ready(layer) runs as soon
  // as that layer's gradients are written, before the delta for the layer
  // below is computed.
  template <typename Ready>
  void backward(std::vector<float> delta, int batch, Ready&& ready) {
    std::vector<float> previous;
    for (size_t l = layers_.size(); l-- > 0;) {
      Layer& layer = layers_[l];
      std::fill(layer.gradBias, layer.gradBias + layer.out, 0.0f);
      for (int r = 0; r < batch; ++r)
        for (int j = 0; j < layer.out; ++j) layer.gradBias[j] += delta[static_cast<size_t>(r) * layer.out + j];
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, layer.out, layer.in, batch, 1.0f, delta.data(), layer.out,
                  activations_[l].data(), layer.in, 0.0f, layer.gradWeight, layer.in);
      // The layer's gradients are final: on the wire while the delta for
      // the layer below is computed (as autograd marks a gradient ready).
      ready(l);
      if (l > 0) {  // delta for the layer below, through its ReLU
        previous.resize(static_cast<size_t>(batch) * layer.in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, layer.in, layer.out, 1.0f, delta.data(),
                    layer.out, layer.weight.data(), layer.in, 0.0f, previous.data(), layer.in);
        const std::vector<float>& input = activations_[l];
        for (size_t k = 0; k < previous.size(); ++k)
          if (input[k] <= 0.0f) previous[k] = 0.0f;
      }
      if (l > 0) delta.swap(previous);
    }
  }

  void sgd(float rate) {
    for (Layer& layer : layers_) {
      cblas_saxpy(static_cast<int>(layer.weight.size()), -rate, layer.gradWeight, 1, layer.weight.data(), 1);
      cblas_saxpy(layer.out, -rate, layer.gradBias, 1, layer.bias.data(), 1);
    }
  }

  // FNV-1a over every weight's bits.
  uint64_t digest() const {
    uint64_t h = 1469598103934665603ull;
    for (const Layer& layer : layers_)
      for (const std::vector<float>* v : {&layer.weight, &layer.bias})
        for (float f : *v) {
          uint32_t bits;
          memcpy(&bits, &f, sizeof(bits));
          for (int b = 0; b < 4; ++b) h = (h ^ ((bits >> (8 * b)) & 0xff)) * 1099511628211ull;
        }
    return h;
  }

 private:
  std::vector<Layer> layers_;
  std::vector<std::vector<float>> activations_;
};

struct Averages {
  double iteration = 0, forward = 0, backwardPhase = 0, backwardCompute = 0, communication = 0, exposed = 0;
  int steps = 0;
};

int train(const Options& o, int rank, int nranks) {
  if (o.blasThreads > 0) openblas_set_num_threads(o.blasThreads);
  weft::UniqueId id = weft::UniqueId::create();  // with WEFT_COMM_ID every rank derives the same one
  weft::Communicator comm(nranks, id, rank);
  // weft's threads (the communicator's worker, the net proxies) were made
  // above and keep their priority; lowering this thread's lets them run as
  // soon as a peer's data arrives when compute keeps every core busy.
  if (o.computeNice != 0 && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), o.computeNice) != 0)
    fprintf(stderr, "train_mlp rank %d: setpriority(%d): %s\n", rank, o.computeNice, strerror(errno));
  Mlp model(o, 1234), teacher(o, 99);
  std::vector<Layer>& layers = model.layers();

  // Gradient buffers: bucket views (no copies), or the program's own.
  std::unique_ptr<weft::Bucketer> bucketer;
  if (!o.noOverlap) {
    bucketer = std::make_unique<weft::Bucketer>(comm, weft::BucketerOptions{}
                                                          .firstBucket(o.firstBucketKiB << 10)
                                                          .cap(o.bucketCapKiB << 10)
                                                          .mode(o.copyIn ? weftBucketCopyIn : weftBucketView)
                                                          .op(weftAvg));
  }
  std::vector<float> flat;  // --no-overlap: every gradient, contiguous
  size_t flatAt = 0;
  if (o.noOverlap) flat.resize(model.parameters());
  for (size_t l = 0; l < layers.size(); ++l) {
    Layer& layer = layers[l];
    std::string name = "layer" + std::to_string(l);
    if (o.noOverlap) {
      layer.gradWeight = &flat[flatAt];
      flatAt += layer.weight.size();
      layer.gradBias = &flat[flatAt];
      flatAt += layer.bias.size();
    } else if (o.copyIn) {
      layer.ownWeight.resize(layer.weight.size());
      layer.ownBias.resize(layer.bias.size());
      layer.gradWeight = layer.ownWeight.data();
      layer.gradBias = layer.ownBias.data();
      layer.weightIndex = bucketer->addParam<float>(name + ".weight", std::span<float>(layer.ownWeight));
      layer.biasIndex = bucketer->addParam<float>(name + ".bias", std::span<float>(layer.ownBias));
    } else {
      layer.weightIndex = bucketer->addParam<float>(name + ".weight", layer.weight.size());
      layer.biasIndex = bucketer->addParam<float>(name + ".bias", layer.bias.size());
    }
  }
  auto bindViews = [&] {
    if (!bucketer || o.copyIn) return;
    for (Layer& layer : layers) {
      layer.gradWeight = static_cast<float*>(bucketer->gradient(layer.weightIndex));
      layer.gradBias = static_cast<float*>(bucketer->gradient(layer.biasIndex));
    }
  };
  if (bucketer) {
    bucketer->finalize();
    bindViews();
  }
  if (rank == 0) {
    printf("# train_mlp: %d rank(s), %zu parameters (%.1f MB of gradients), batch %d per rank, compute nice %d, %s\n",
           nranks, model.parameters(), model.parameters() * 4.0 / 1e6, o.batch, o.computeNice,
           o.noOverlap ? "one all-reduce after backward (--no-overlap)"
                       : (o.copyIn ? "bucketer, copy-in" : "bucketer, bucket views"));
    if (bucketer) {
      printf("# %d buckets (first %zu KiB, cap %zu KiB):", bucketer->bucketCount(), o.firstBucketKiB, o.bucketCapKiB);
      for (int b = 0; b < bucketer->bucketCount(); ++b) printf(" %.2f MB", bucketer->bucket(b).bytes / 1e6);
      printf("\n");
    }
    if (!o.quiet)
      printf("# %4s %12s %10s %10s %10s %10s %10s %10s %7s\n", "step", "loss", "iter_ms", "fwd_ms", "bwdphase_ms",
             "bwd_ms", "comm_ms", "exposed_ms", "exp/comm");
  }

  std::mt19937 data(1000u + static_cast<unsigned>(rank));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(o.batch) * o.input);
  Averages avg;
  for (int step = 0; step < o.steps; ++step) {
    for (float& v : x) v = uniform(data);
    std::vector<float> target = teacher.forward(x, o.batch);
    double t0 = now();
    const std::vector<float>& y = model.forward(x, o.batch);
    double t1 = now();
    // Mean squared error and its gradient.
    double loss = 0;
    std::vector<float> delta(y.size());
    float scale = 2.0f / static_cast<float>(y.size());
    for (size_t k = 0; k < y.size(); ++k) {
      float diff = y[k] - target[k];
      loss += static_cast<double>(diff) * diff;
      delta[k] = scale * diff;
    }
    loss /= static_cast<double>(y.size());
    model.backward(std::move(delta), o.batch, [&](size_t l) {
      if (!bucketer) return;
      bucketer->markReady(layers[l].biasIndex);
      bucketer->markReady(layers[l].weightIndex);
    });
    double backwardDone = now(), commStart = backwardDone;
    weftBucketStats_t s{};
    if (bucketer) {
      bucketer->finish();
      s = bucketer->stats();
    } else {
      weft::check(weftAllReduce(flat.data(), flat.data(), flat.size(), weftFloat32, weftAvg, comm.handle(), nullptr),
                  comm.handle());
      comm.synchronize();
    }
    double t2 = now();
    if (!bucketer) {
      s.backwardCompute = backwardDone - t1;
      s.communication = s.exposed = t2 - commStart;
    }
    bindViews();  // the views move once, after the first step's rebuild
    model.sgd(o.learningRate);
    double t3 = now();
    // The loss averaged over ranks, outside the timed part.
    double meanLoss = loss;
    weft::check(weftAllReduce(&meanLoss, &meanLoss, 1, weftFloat64, weftAvg, comm.handle(), nullptr), comm.handle());
    comm.synchronize();
    if (step >= o.warmup) {
      avg.iteration += t3 - t0;
      avg.forward += t1 - t0;
      avg.backwardPhase += t2 - t1;
      avg.backwardCompute += s.backwardCompute;
      avg.communication += s.communication;
      avg.exposed += s.exposed;
      ++avg.steps;
    }
    if (rank == 0 && o.timeline && bucketer) {
      printf("# step %d buckets (ms after the first markReady; backward compute ends at %.2f):", step,
             s.backwardCompute * 1e3);
      for (int b = 0; b < bucketer->bucketCount(); ++b) {
        weftBucketInfo_t info = bucketer->bucket(b);
        printf(" [%d: %.2f MB %.2f-%.2f]", b, info.bytes / 1e6, info.launchedAt * 1e3, info.completedAt * 1e3);
      }
      printf("\n");
    }
    if (rank == 0 && !o.quiet)
      printf("  %4d %12.6f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %6.0f%%\n", step, meanLoss, (t3 - t0) * 1e3,
             (t1 - t0) * 1e3, (t2 - t1) * 1e3, s.backwardCompute * 1e3, s.communication * 1e3, s.exposed * 1e3,
             s.communication > 0 ? 100 * s.exposed / s.communication : 0.0);
  }

  // Every rank must hold the same weights.
  uint64_t mine = model.digest();
  std::vector<uint64_t> all(static_cast<size_t>(nranks));
  weft::check(weftAllGather(&mine, all.data(), 1, weftUint64, comm.handle(), nullptr), comm.handle());
  comm.synchronize();
  int differing = 0;
  for (int r = 0; r < nranks; ++r)
    if (all[r] != all[0]) {
      if (rank == 0) fprintf(stderr, "train_mlp: rank %d's weights differ from rank 0's\n", r);
      ++differing;
    }
  if (rank == 0) {
    if (avg.steps > 0) {
      double n = avg.steps;
      double bound = std::max(avg.backwardCompute, avg.communication) / n;
      printf(
          "# averages over %d steps: iteration %.2f ms, forward %.2f ms, backward phase %.2f ms "
          "(backward to finish), backward compute %.2f ms, communication %.2f ms, exposed %.2f ms "
          "(%.1f%% of communication), overlap %.2f ms; backward phase / max(backward compute, "
          "communication) = %.3f\n",
          avg.steps, avg.iteration / n * 1e3, avg.forward / n * 1e3, avg.backwardPhase / n * 1e3,
          avg.backwardCompute / n * 1e3, avg.communication / n * 1e3, avg.exposed / n * 1e3,
          avg.communication > 0 ? 100 * avg.exposed / avg.communication : 0.0,
          (avg.communication - avg.exposed) / n * 1e3, bound > 0 ? avg.backwardPhase / n / bound : 0.0);
    }
    printf("# weights %s on all %d ranks: digest %016" PRIx64 "\n", differing == 0 ? "identical" : "DIFFER", nranks,
           mine);
  }
  return differing == 0 ? 0 : 1;
}

// --ranks N: N processes on this host, meeting at a loopback port.
int launch(const Options& o) {
  std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  std::string address = "127.0.0.1:" + std::to_string(20000 + rng() % 20000);
  std::vector<pid_t> children;
  for (int r = 0; r < o.ranks; ++r) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      setenv("WEFT_COMM_ID", address.c_str(), 1);
      setenv("WEFT_RANK", std::to_string(r).c_str(), 1);
      setenv("WEFT_NRANKS", std::to_string(o.ranks).c_str(), 1);
      setenv("WEFT_SOCKET_IFNAME", "lo", 0);
      int code = 1;
      try {
        code = train(o, r, o.ranks);
      } catch (const std::exception& e) {
        fprintf(stderr, "train_mlp rank %d: %s\n", r, e.what());
      }
      fflush(nullptr);
      _exit(code);
    }
    children.push_back(pid);
  }
  int worst = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    worst = std::max(worst, code);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  if (o.ranks > 0) return launch(o);
  const char* rank = getenv("WEFT_RANK");
  const char* nranks = getenv("WEFT_NRANKS");
  if ((rank == nullptr) != (nranks == nullptr) || (nranks != nullptr && getenv("WEFT_COMM_ID") == nullptr)) {
    fprintf(stderr, "train_mlp: WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID go together (or use --ranks N)\n");
    return 2;
  }
  try {
    return train(o, rank ? atoi(rank) : 0, nranks ? atoi(nranks) : 1);
  } catch (const std::exception& e) {
    fprintf(stderr, "train_mlp: %s\n", e.what());
    return 1;
  }
}
