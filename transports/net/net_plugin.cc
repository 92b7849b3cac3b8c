#include "transports/net/net_plugin.h"

#include <dlfcn.h>

#include <cstdarg>
#include <mutex>

#include "core/env.h"
#include "core/logging.h"
#include "core/socket.h"

namespace weft {

void netPluginLog(weftNetLogLevel_t level, const char* fmt, ...) {
  LogLevel ours = level == WEFT_NET_LOG_WARN   ? LogLevel::Warn
                  : level == WEFT_NET_LOG_INFO ? LogLevel::Info
                                               : LogLevel::Trace;
  if (!logEnabled(ours, kLogNet)) return;
  char text[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(text, sizeof(text), fmt, args);
  va_end(args);
  logMessage(ours, kLogNet, __FILE__, __LINE__, "%s", text);
}

namespace {

Result<NetPluginChoice> initPlugin(const weftNet_v1_t* plugin) {
  weftResult_t rc = plugin->init(netPluginLog);
  if (rc != weftSuccess) return WEFT_ERROR(rc, "net plugin %s failed to initialise", plugin->name);
  NetPluginChoice choice;
  choice.plugin = plugin;
  rc = plugin->devices(&choice.nDevices);
  if (rc != weftSuccess) return WEFT_ERROR(rc, "net plugin %s cannot list its devices", plugin->name);
  return choice;
}

Result<NetPluginChoice> choose() {
  if (envIsSet(EnvParam::NetPlugin)) {
    std::string path = envString(EnvParam::NetPlugin);
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
      return WEFT_ERROR(weftSystemError, "WEFT_NET_PLUGIN=%s cannot be loaded: %s", path.c_str(), dlerror());
    auto* plugin = static_cast<const weftNet_v1_t*>(dlsym(library, "weftNetPlugin_v1"));
    if (plugin == nullptr)
      return WEFT_ERROR(weftSystemError, "WEFT_NET_PLUGIN=%s has no symbol weftNetPlugin_v1 (interface version %d)",
                        path.c_str(), WEFT_NET_PLUGIN_VERSION);
    Result<NetPluginChoice> choice = initPlugin(plugin);
    if (choice.isOk()) WEFT_INFO(kLogNet | kLogInit, "net plugin %s loaded from %s", plugin->name, path.c_str());
    return choice;
  }
  std::string forced = envString(EnvParam::Net);
  if (!forced.empty() && forced != "Socket" && forced != "IB")
    return WEFT_ERROR(weftInvalidArgument, "WEFT_NET=%s: expected Socket or IB", forced.c_str());
  if (forced != "Socket") {
    const weftNet_v1_t* ib = ibNetPlugin();
    if (ib == nullptr && forced == "IB")
      return WEFT_ERROR(weftInvalidArgument,
                        "WEFT_NET=IB, but this build of weft has no verbs support (libibverbs was not found)");
    if (ib != nullptr) {
      Result<NetPluginChoice> choice = initPlugin(ib);
      if (choice.isOk() && choice.value().nDevices > 0) return choice;
      if (forced == "IB")
        return WEFT_ERROR(weftSystemError,
                          "WEFT_NET=IB, but no usable InfiniBand/RoCE device was found (see WEFT_IB_HCA)");
      // The IB plugin logged why (one INFO line); sockets take over.
    }
  }
  Result<NetPluginChoice> sockets = initPlugin(socketNetPlugin());
  if (!sockets.isOk())
    return WEFT_ERROR(
        sockets.status().code(),
        "no interface for the socket net plugin matches WEFT_SOCKET_IFNAME='%s'%s; interfaces that are up: %s",
        envString(EnvParam::SocketIfname).c_str(),
        envIsSet(EnvParam::SocketFamily) ? (" with WEFT_SOCKET_FAMILY=" + envString(EnvParam::SocketFamily)).c_str()
                                         : "",
        describeAllInterfaces().c_str());
  return sockets;
}

}  // namespace

Result<NetPluginChoice> chooseNetPlugin() {
  static std::mutex mutex;
  static bool done = false;
  static Result<NetPluginChoice> result = NetPluginChoice{};
  std::lock_guard<std::mutex> lock(mutex);
  if (!done) {
    result = choose();
    done = true;
    if (result.isOk())
      WEFT_INFO(kLogNet | kLogInit, "net: using the %s plugin, %d device(s)", result.value().plugin->name,
                result.value().nDevices);
  }
  return result;
}

}  // namespace weft
