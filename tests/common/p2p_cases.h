// Send/receive patterns every multi-rank test runs, with values that name
// sender, receiver, element and message, checked exactly. Each returns ""
// when right, else what went wrong.
#pragma once

#include <string>

#include "weft/weft.h"

namespace weft::test {

// Each rank sends to the next and receives from the previous, 0..1M+3
// elements, with the receive posted before and after the send.
std::string ringExchange(weftComm_t comm, int rank, int n);
// Every rank sends count elements to every rank, itself included, in one
// group, receives posted in the reverse order of the sends.
std::string allToAll(weftComm_t comm, int rank, int n, size_t count);
// Rank 0 sends five messages to rank 1 in one group; they arrive in order.
// Other ranks take no part.
std::string orderedMessages(weftComm_t comm, int rank, int n);

}  // namespace weft::test
