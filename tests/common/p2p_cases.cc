#include "p2p_cases.h"

#include <vector>

namespace weft::test {
namespace {

int64_t value(int from, int to, size_t i, int message = 0) {
  return static_cast<int64_t>(from) * 1000003 + to * 7919 + static_cast<int64_t>(i) * 31 + message;
}

}  // namespace

std::string ringExchange(weftComm_t comm, int rank, int n) {
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{(1 << 20) + 3}}) {
    for (int receiveFirst = 0; receiveFirst < 2; ++receiveFirst) {
      int next = (rank + 1) % n, prev = (rank + n - 1) % n;
      std::vector<int64_t> out(count), in(count, -1);
      for (size_t i = 0; i < count; ++i) out[i] = value(rank, next, i);
      weftGroupStart();
      if (receiveFirst) weftRecv(in.data(), count, weftInt64, prev, comm, nullptr);
      weftSend(out.data(), count, weftInt64, next, comm, nullptr);
      if (!receiveFirst) weftRecv(in.data(), count, weftInt64, prev, comm, nullptr);
      weftGroupEnd();
      if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
      for (size_t i = 0; i < count; ++i)
        if (in[i] != value(prev, rank, i))
          return "count " + std::to_string(count) + ": wrong element " + std::to_string(i);
    }
  }
  return "";
}

std::string allToAll(weftComm_t comm, int rank, int n, size_t count) {
  std::vector<int64_t> out(count * n), in(count * n, -1);
  for (int to = 0; to < n; ++to)
    for (size_t i = 0; i < count; ++i) out[to * count + i] = value(rank, to, i);
  weftGroupStart();
  // Receives posted in reverse order of the sends, to show order does not matter.
  for (int p = n - 1; p >= 0; --p) weftRecv(in.data() + p * count, count, weftInt64, p, comm, nullptr);
  for (int p = 0; p < n; ++p) weftSend(out.data() + p * count, count, weftInt64, p, comm, nullptr);
  weftGroupEnd();
  if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
  for (int from = 0; from < n; ++from)
    for (size_t i = 0; i < count; ++i)
      if (in[from * count + i] != value(from, rank, i))
        return "from rank " + std::to_string(from) + ": wrong element " + std::to_string(i);
  return "";
}

std::string orderedMessages(weftComm_t comm, int rank, int) {
  if (rank > 1) return "";
  const int messages = 5;
  const size_t count = 50000;
  std::vector<std::vector<int64_t>> bufs(messages, std::vector<int64_t>(count));
  weftGroupStart();
  for (int m = 0; m < messages; ++m) {
    if (rank == 0) {
      for (size_t i = 0; i < count; ++i) bufs[m][i] = value(0, 1, i, m);
      weftSend(bufs[m].data(), count, weftInt64, 1, comm, nullptr);
    } else {
      weftRecv(bufs[m].data(), count, weftInt64, 0, comm, nullptr);
    }
  }
  weftGroupEnd();
  if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
  if (rank == 1)
    for (int m = 0; m < messages; ++m)
      for (size_t i = 0; i < count; ++i)
        if (bufs[m][i] != value(0, 1, i, m)) return "message " + std::to_string(m) + " out of order or wrong";
  return "";
}

}  // namespace weft::test
