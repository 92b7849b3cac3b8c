// Inputs whose reductions are exact in every weft type, and the expected
// outputs, so that multi-rank tests compare bit for bit.
//
// Values come from a table of a prime length (4093 entries), which keeps
// generation a memcpy; each entry is a hash of its index and the rank, and
// each repetition of the table starts at another entry (rotated by 1019 per
// repetition), so element i's value depends on i itself: a block that lands
// at the wrong offset, by any distance, shows up.
// Sums use small integers (0/1 for fp8, whose mantissas are 2-3 bits), so
// every partial sum is representable whatever order the ranks add in;
// products use {1, 2} (and -1 for signed types); an average is made exact
// by giving rank 0 base + (n-1)k and every other rank base - k.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "weft/weft.h"

namespace weft::test {

constexpr size_t kPeriod = 4093;
constexpr size_t kRotation = 1019;  // prime to kPeriod

// The exact integer value of table entry t of rank r's input.
int64_t inputValue(weftDataType_t type, weftRedOp_t op, int nranks, int rank, size_t t);
int64_t expectedValue(weftDataType_t type, weftRedOp_t op, int nranks, size_t t);
// Element first+done.. of the sequence, in runs of the table: visit(done, t, run)
// for table entries t..t+run-1.
void forEachRun(size_t first, size_t count, const std::function<void(size_t done, size_t t, size_t run)>& visit);
// Stores an exactly representable integer in the type's encoding.
void storeValue(weftDataType_t type, int64_t value, void* dst);

// One period of a rank's input / the expected reduction, in the type's bytes.
std::vector<char> inputPeriod(weftDataType_t type, weftRedOp_t op, int nranks, int rank);
std::vector<char> expectedPeriod(weftDataType_t type, weftRedOp_t op, int nranks);
// Raw bytes for copies (broadcast, all-gather): any bit pattern, per rank.
std::vector<char> patternPeriod(weftDataType_t type, int rank);

// Fills count elements starting at element offset `first` of the periodic
// sequence; compares likewise and returns the first mismatching element or -1.
void fillFromPeriod(void* dst, size_t count, size_t first, const std::vector<char>& period, size_t typeBytes);
// Number of elements that differ from the periodic sequence.
size_t countMismatches(const void* data, size_t count, size_t first, const std::vector<char>& period, size_t typeBytes);
long long firstMismatch(const void* data, size_t count, size_t first, const std::vector<char>& period,
                        size_t typeBytes);

}  // namespace weft::test
