// Every environment variable weft reads is declared once, in the table in
// env.cc, with its default and a sentence. weft-info prints that table.
#pragma once

#include <cstdint>
#include <string>

namespace weft {

enum class EnvParam {
  Debug,
  DebugSubsys,
  CommId,
  SocketIfname,
  SocketFamily,
  Timeout,
  Nchannels,
  Algo,
  VerifyPlans,
  TuneFile,
  DeviceTuneFile,
  TraceFile,
  BufferSize,
  SiteBufferSize,
  Nslots,
  ZeroCopy,
  ZeroCopyThreshold,
  ZeroCopyMax,
  Cma,
  CmaThreshold,
  CmaMax,
  CmaSlice,
  SpinCount,
  HostId,
  SiteId,
  TopoFile,
  TopoDumpFile,
  Rank,
  Nranks,
  NetPlugin,
  Net,
  SocketNthreads,
  NsocksPerThread,
  IbHca,
  IbGidIndex,
  IbQpsPerConnection,
  AllowSharedGpu,
  FaultInject,
  Device,
  DeviceProtocol,
  LlThreshold,
  P2pDisable,
  NetGdr,
  Count  // number of parameters; not a parameter
};

struct EnvParamInfo {
  EnvParam param;
  const char* name;
  const char* defaultValue;
  const char* description;
};

// The table, in declaration order; EnvParam::Count entries.
const EnvParamInfo* envParamTable();
const EnvParamInfo& envParamInfo(EnvParam param);

// Value from the environment, or the table's default when unset or empty.
std::string envString(EnvParam param);
// Parsed integer (decimal; K, M, G suffixes are powers of 1024); the default
// when unset. A malformed value logs a warning and falls back to the default.
int64_t envInt(EnvParam param);
// An integer as the variables take it: decimal, 0x hex or 0 octal, with an
// optional k/m/g suffix (2^10, 2^20, 2^30); false for anything else,
// overflow included.
bool parseEnvInt(const std::string& text, int64_t* out);
bool envIsSet(EnvParam param);
// The variable that sizes the FIFO slots of a communicator over nSites
// sites: WEFT_SITE_BUFFSIZE across sites unless WEFT_BUFFSIZE is set, else
// WEFT_BUFFSIZE.
EnvParam slotBytesParam(int nSites);

}  // namespace weft
