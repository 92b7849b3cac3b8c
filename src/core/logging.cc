#include "core/logging.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "core/clock.h"
#include "core/env.h"

namespace weft {
namespace {

struct LogConfig {
  LogLevel level = LogLevel::Warn;
  uint32_t subsys = kLogAll;
};

uint32_t subsysBit(const std::string& name) {
  static const struct {
    const char* name;
    uint32_t bit;
  } kNames[] = {{"INIT", kLogInit}, {"COLL", kLogColl},   {"P2P", kLogP2p}, {"SHM", kLogShm},       {"BOOT", kLogBoot},
                {"TUNE", kLogTune}, {"GRAPH", kLogGraph}, {"NET", kLogNet}, {"BUCKET", kLogBucket}, {"ALL", kLogAll}};
  for (const auto& entry : kNames)
    if (strcasecmp(entry.name, name.c_str()) == 0) return entry.bit;
  return 0;
}

LogConfig readConfig() {
  LogConfig config;
  std::string level = envString(EnvParam::Debug);
  if (strcasecmp(level.c_str(), "NONE") == 0)
    config.level = LogLevel::None;
  else if (strcasecmp(level.c_str(), "INFO") == 0)
    config.level = LogLevel::Info;
  else if (strcasecmp(level.c_str(), "TRACE") == 0)
    config.level = LogLevel::Trace;
  std::string list = envString(EnvParam::DebugSubsys);
  if (!list.empty()) {
    bool exclude = list[0] == '^';
    uint32_t mask = 0;
    size_t start = exclude ? 1 : 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      mask |= subsysBit(list.substr(start, comma - start));
      start = comma + 1;
    }
    config.subsys = exclude ? ~mask : mask;
  }
  return config;
}

const LogConfig& config() {
  static const LogConfig kConfig = readConfig();
  return kConfig;
}

}  // namespace

bool logEnabled(LogLevel level, uint32_t subsys) {
  const LogConfig& c = config();
  if (level > c.level) return false;
  return level == LogLevel::Warn || (c.subsys & subsys) != 0;
}

void logMessage(LogLevel level, uint32_t /*subsys*/, const char* file, int line, const char* fmt, ...) {
  static std::mutex mutex;
  static const char* kLevelNames[] = {"", "WARN", "INFO", "TRACE"};
  char host[64] = {0};
  gethostname(host, sizeof(host) - 1);
  char body[2048];
  va_list args;
  va_start(args, fmt);
  vsnprintf(body, sizeof(body), fmt, args);
  va_end(args);
  const char* base = strrchr(file, '/');
  std::lock_guard<std::mutex> lock(mutex);
  fprintf(stderr, "%s:%d:%ld [%.3f] weft %s %s:%d %s\n", host, getpid(), (long)gettid(), monotonicSeconds(),
          kLevelNames[static_cast<int>(level)], base ? base + 1 : file, line, body);
}

}  // namespace weft
