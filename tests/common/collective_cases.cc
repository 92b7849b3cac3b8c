#include "collective_cases.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "exact_data.h"

namespace weft::test {

namespace {

const char* collName(Coll c) {
  static const char* kNames[] = {"AllReduce", "ReduceScatter", "AllGather", "Broadcast",
                                 "Reduce",    "AllToAll",      "Gather",    "Scatter"};
  return kNames[static_cast<int>(c)];
}
bool reduces(Coll c) { return c == Coll::AllReduce || c == Coll::ReduceScatter || c == Coll::Reduce; }

const BufferSpace* bufferSpace = nullptr;

// A case's buffer, in the chosen space, zeroed.
class Store {
 public:
  explicit Store(size_t bytes) { assign(bytes); }
  ~Store() { drop(); }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  void assign(size_t bytes) {
    drop();
    bytes_ = bytes;
    if (bufferSpace != nullptr) {
      data_ = static_cast<char*>(bufferSpace->allocate(bytes));
      if (data_ != nullptr) memset(data_, 0, bytes);
    } else {
      host_.assign(bytes, 0);
      data_ = host_.data();
    }
  }
  char* data() { return data_; }
  size_t size() const { return bytes_; }

 private:
  void drop() {
    if (bufferSpace != nullptr && data_ != nullptr) bufferSpace->release(data_);
    data_ = nullptr;
  }
  std::vector<char> host_;
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace

void setBufferSpace(const BufferSpace* space) { bufferSpace = space; }

std::string describe(const Case& c) {
  char text[160];
  snprintf(text, sizeof(text), "%s type=%d op=%d %s count=%zu root=%d", collName(c.coll), c.type, c.op,
           c.inPlace ? "in-place" : "out-of-place", c.count, c.root);
  return text;
}

std::vector<Case> allCases(int nranks, const std::vector<size_t>& counts) {
  std::vector<Case> cases;
  int rootCycle = 0;
  for (Coll coll : {Coll::AllReduce, Coll::ReduceScatter, Coll::AllGather, Coll::Broadcast, Coll::Reduce,
                    Coll::AllToAll, Coll::Gather, Coll::Scatter})
    for (int type = 0; type < weftNumTypes; ++type)
      for (int op = 0; op < (reduces(coll) ? weftNumOps : 1); ++op)
        for (bool inPlace : {false, true})
          for (size_t count : counts)
            cases.push_back({coll, static_cast<weftDataType_t>(type), static_cast<weftRedOp_t>(op), inPlace, count,
                             (rootCycle++) % nranks});
  return cases;
}

// Runs one case on this rank; "" when the output is exactly right.
std::string runCase(weftComm_t comm, int rank, int n, const Case& c) {
  size_t tb = weftTypeSize(c.type);
  size_t count = c.count;
  bool manySend = c.coll == Coll::ReduceScatter || c.coll == Coll::AllToAll || c.coll == Coll::Scatter;
  bool manyRecv = c.coll == Coll::AllGather || c.coll == Coll::AllToAll || c.coll == Coll::Gather;
  size_t sendCount = manySend ? count * n : count;
  size_t recvCount = manyRecv ? count * n : count;
  if (c.inPlace && c.coll == Coll::Scatter) recvCount = sendCount;  // the root's slice of its send buffer
  Store sendStore(std::max<size_t>(sendCount, 1) * tb), recvStore(std::max<size_t>(recvCount, 1) * tb);
  if (sendStore.data() == nullptr || recvStore.data() == nullptr) return describe(c) + ": cannot allocate buffers";
  char* send = sendStore.data();
  char* recv = recvStore.data();
  // Poison the output so stale data cannot pass.
  memset(recv, 0x5a, recvStore.size());
  std::vector<char> in = reduces(c.coll) ? inputPeriod(c.type, c.op, n, rank) : patternPeriod(c.type, rank);
  weftResult_t result = weftSuccess;
  switch (c.coll) {
    case Coll::AllReduce:
      if (c.inPlace) send = recv;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftAllReduce(send, recv, count, c.type, c.op, comm, nullptr);
      break;
    case Coll::ReduceScatter:
      if (c.inPlace) {
        send = recv = recvStore.data();
        recvStore.assign(std::max<size_t>(sendCount, 1) * tb);
        send = recvStore.data();
        recv = send + static_cast<size_t>(rank) * count * tb;
      }
      fillFromPeriod(send, sendCount, 0, in, tb);
      result = weftReduceScatter(send, recv, count, c.type, c.op, comm, nullptr);
      break;
    case Coll::AllGather:
      if (c.inPlace) send = recv + static_cast<size_t>(rank) * count * tb;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftAllGather(send, recv, count, c.type, comm, nullptr);
      break;
    case Coll::Broadcast:
      if (c.inPlace) send = recv;
      if (rank == c.root) fillFromPeriod(send, count, 0, in, tb);
      result = weftBroadcast(send, recv, count, c.type, c.root, comm, nullptr);
      break;
    case Coll::Reduce:
      if (c.inPlace) send = recv;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftReduce(send, recv, count, c.type, c.op, c.root, comm, nullptr);
      break;
    case Coll::AllToAll:
      // Block j of rank r's input is elements j*count.. of r's pattern.
      if (c.inPlace) send = recv;
      fillFromPeriod(send, sendCount, 0, in, tb);
      result = weftAllToAll(send, recv, count, c.type, comm, nullptr);
      break;
    case Coll::Gather:
      if (c.inPlace && rank == c.root) send = recv + static_cast<size_t>(rank) * count * tb;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftGather(send, rank == c.root ? recv : nullptr, count, c.type, c.root, comm, nullptr);
      break;
    case Coll::Scatter:
      // The root's block j is elements j*count.. of its pattern.
      if (c.inPlace) {
        send = recv;
        recv = send + static_cast<size_t>(rank) * count * tb;
      }
      if (rank == c.root) fillFromPeriod(send, sendCount, 0, in, tb);
      result = weftScatter(rank == c.root ? send : nullptr, recv, count, c.type, c.root, comm, nullptr);
      break;
  }
  if (result == weftSuccess) result = weftCommSynchronize(comm);
  if (result != weftSuccess) return describe(c) + ": " + weftGetErrorString(result) + ": " + weftGetLastError(comm);

  long long bad = -1;
  switch (c.coll) {
    case Coll::AllReduce: bad = firstMismatch(recv, count, 0, expectedPeriod(c.type, c.op, n), tb); break;
    case Coll::ReduceScatter:
      bad = firstMismatch(recv, count, static_cast<size_t>(rank) * count, expectedPeriod(c.type, c.op, n), tb);
      break;
    case Coll::AllGather:
      for (int j = 0; j < n && bad < 0; ++j) {
        bad = firstMismatch(recv + static_cast<size_t>(j) * count * tb, count, 0, patternPeriod(c.type, j), tb);
        if (bad >= 0) bad += static_cast<long long>(j * count);
      }
      break;
    case Coll::Broadcast: bad = firstMismatch(recv, count, 0, patternPeriod(c.type, c.root), tb); break;
    case Coll::Reduce:
      if (rank == c.root) bad = firstMismatch(recv, count, 0, expectedPeriod(c.type, c.op, n), tb);
      break;
    case Coll::AllToAll:
    case Coll::Gather:
      // Block j came from rank j: its block for this rank (all-to-all), its only one (gather).
      if (c.coll == Coll::Gather && rank != c.root) break;
      for (int j = 0; j < n && bad < 0; ++j) {
        size_t first = c.coll == Coll::AllToAll ? static_cast<size_t>(rank) * count : 0;
        bad = firstMismatch(recv + static_cast<size_t>(j) * count * tb, count, first, patternPeriod(c.type, j), tb);
        if (bad >= 0) bad += static_cast<long long>(j * count);
      }
      break;
    case Coll::Scatter:
      bad = firstMismatch(recv, count, static_cast<size_t>(rank) * count, patternPeriod(c.type, c.root), tb);
      break;
  }
  if (bad >= 0) return describe(c) + ": wrong value at element " + std::to_string(bad);
  return "";
}

std::string runCases(weftComm_t comm, int rank, int n, const std::vector<Case>& cases) {
  std::string errors;
  int failed = 0;
  for (const Case& c : cases) {
    std::string error = runCase(comm, rank, n, c);
    if (!error.empty()) {
      errors += error + "; ";
      if (++failed >= 5) break;
      weftResult_t async = weftSuccess;
      weftCommGetAsyncError(comm, &async);
      if (async != weftSuccess) break;  // the communicator is gone; stop here
    }
  }
  return errors;
}

}  // namespace weft::test
