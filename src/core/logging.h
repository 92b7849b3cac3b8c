// Logging: WEFT_DEBUG=WARN|INFO|TRACE sets the level, WEFT_DEBUG_SUBSYS a
// comma list of subsystems (INIT, COLL, P2P, SHM, BOOT, TUNE, GRAPH, NET,
// BUCKET, ALL; ^ excludes).
#pragma once

#include <cstdint>

namespace weft {

enum class LogLevel : int { None = 0, Warn = 1, Info = 2, Trace = 3 };

enum LogSubsys : uint32_t {
  kLogInit = 1u << 0,
  kLogColl = 1u << 1,
  kLogP2p = 1u << 2,
  kLogShm = 1u << 3,
  kLogBoot = 1u << 4,
  kLogTune = 1u << 5,
  kLogGraph = 1u << 6,
  kLogNet = 1u << 7,
  kLogBucket = 1u << 8,
  kLogAll = ~0u,
};

bool logEnabled(LogLevel level, uint32_t subsys);
void logMessage(LogLevel level, uint32_t subsys, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));

}  // namespace weft

#define WEFT_LOG(level, subsys, ...)                                                                                   \
  do {                                                                                                                 \
    if (::weft::logEnabled((level), (subsys))) ::weft::logMessage((level), (subsys), __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define WEFT_WARN(...) WEFT_LOG(::weft::LogLevel::Warn, ::weft::kLogAll, __VA_ARGS__)
#define WEFT_INFO(subsys, ...) WEFT_LOG(::weft::LogLevel::Info, (subsys), __VA_ARGS__)
#define WEFT_TRACE(subsys, ...) WEFT_LOG(::weft::LogLevel::Trace, (subsys), __VA_ARGS__)
