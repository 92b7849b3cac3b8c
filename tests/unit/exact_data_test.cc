// The exact test data: a block shifted by any distance, a multiple of the
// table length included, no longer matches; and the sums stay exact.
#include <gtest/gtest.h>

#include <vector>

#include "exact_data.h"

namespace weft::test {
namespace {

TEST(ExactData, NoShiftOfABlockGoesUnseen) {
  for (weftDataType_t type : {weftFloat32, weftInt8, weftFloat8e4m3, weftBfloat16}) {
    for (weftRedOp_t op : {weftSum, weftProd, weftMax, weftAvg}) {
      size_t tb = weftTypeSize(type);
      std::vector<char> expected = expectedPeriod(type, op, 3);
      const size_t count = 4 * kPeriod;
      std::vector<char> data(count * tb);
      fillFromPeriod(data.data(), count, 0, expected, tb);
      ASSERT_EQ(countMismatches(data.data(), count, 0, expected, tb), 0u);
      for (size_t shift : {size_t{1}, size_t{21}, kRotation, kPeriod, 2 * kPeriod, kPeriod + 1}) {
        // The block read as if it started `shift` elements later.
        size_t wrong = countMismatches(data.data(), kPeriod, shift, expected, tb);
        // fp8 sums take few values, so some elements agree by chance.
        EXPECT_GT(wrong, kPeriod / 4) << "type " << type << " op " << op << " shift " << shift;
      }
    }
  }
}

TEST(ExactData, EveryRanksInputDiffersAndSumsStayInRange) {
  for (int nranks : {2, 5, 8}) {
    for (size_t t = 0; t < kPeriod; ++t) {
      int64_t sum = expectedValue(weftInt8, weftSum, nranks, t);
      ASSERT_LE(sum, 10 * nranks);
      ASSERT_GE(sum, -10 * nranks);
      ASSERT_LE(expectedValue(weftFloat8e4m3, weftSum, nranks, t), nranks);
    }
  }
  size_t same = 0;
  for (size_t t = 0; t < kPeriod; ++t)
    same += inputValue(weftFloat32, weftSum, 4, 0, t) == inputValue(weftFloat32, weftSum, 4, 1, t);
  EXPECT_LT(same, kPeriod / 10) << "ranks 0 and 1 share most inputs";
}

}  // namespace
}  // namespace weft::test
