// main() of every GoogleTest binary: test traffic stays on loopback and no
// wait inside weft outlasts a minute, whoever starts the binary (CTest, a
// developer, a debugger). Values already in the environment win.
#include <gtest/gtest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  setenv("WEFT_SOCKET_IFNAME", "lo", 0);
  setenv("WEFT_TIMEOUT", "60", 0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
