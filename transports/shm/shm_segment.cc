#include "transports/shm/shm_segment.h"

#include "core/logging.h"

#include <map>
#include <mutex>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace weft {

// Ranks that are threads of one process share one mapping of a segment: its
// atomics then have one address in the process, which is what the memory
// model (and ThreadSanitizer) reason about, and the process maps each
// segment once.
namespace {
struct Mapping {
  void* data;
  size_t bytes;
  int users;
};
std::mutex mappingsMutex;
std::map<std::string, Mapping>& mappings() {
  static std::map<std::string, Mapping> all;
  return all;
}

void* sharedMapping(const std::string& name, size_t bytes) {
  std::lock_guard<std::mutex> lock(mappingsMutex);
  auto it = mappings().find(name);
  if (it == mappings().end() || it->second.bytes < bytes) return nullptr;
  ++it->second.users;
  return it->second.data;
}

void addMapping(const std::string& name, void* data, size_t bytes) {
  std::lock_guard<std::mutex> lock(mappingsMutex);
  mappings()[name] = Mapping{data, bytes, 1};
}

void dropMapping(const std::string& name, void* data, size_t bytes) {
  if (!name.empty()) {
    std::lock_guard<std::mutex> lock(mappingsMutex);
    auto it = mappings().find(name);
    if (it != mappings().end() && it->second.data == data) {
      if (--it->second.users > 0) return;
      bytes = it->second.bytes;
      mappings().erase(it);
    }
  }
  munmap(data, bytes);
}
}  // namespace

ShmSegment::~ShmSegment() {
  if (owner_) unlink();
  if (data_ != nullptr) dropMapping(name_, data_, bytes_);
}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept { *this = std::move(other); }

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (owner_) unlink();
    if (data_ != nullptr) dropMapping(name_, data_, bytes_);
    data_ = other.data_;
    bytes_ = other.bytes_;
    name_ = std::move(other.name_);
    owner_ = other.owner_;
    other.data_ = nullptr;
    other.owner_ = false;
  }
  return *this;
}

static Result<void*> mapFd(int fd, size_t bytes, const std::string& name) {
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED)
    return WEFT_ERROR(weftSystemError, "mmap of shared memory %s (%zu bytes): %s", name.c_str(), bytes,
                      strerror(errno));
  return data;
}

Result<ShmSegment> ShmSegment::create(const std::string& name, size_t bytes) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) return WEFT_ERROR(weftSystemError, "shm_open(%s): %s", name.c_str(), strerror(errno));
  ShmSegment segment;
  segment.name_ = name;
  segment.owner_ = true;
  // ftruncate alone succeeds on a tmpfs too small to hold the segment, and
  // the first touch of a missing page is a SIGBUS: reserve every page now.
  int err = ftruncate(fd, static_cast<off_t>(bytes)) != 0 ? errno : posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (err != 0) {
    ::close(fd);
    shm_unlink(name.c_str());
    segment.owner_ = false;
    struct statvfs fs;
    std::string space = statvfs("/dev/shm", &fs) == 0
                            ? format("%.1f MB free of %.1f MB", 1e-6 * static_cast<double>(fs.f_bavail) * fs.f_frsize,
                                     1e-6 * static_cast<double>(fs.f_blocks) * fs.f_frsize)
                            : std::string("free space unknown");
    return WEFT_ERROR(weftSystemError, "cannot reserve %.1f MB of shared memory for %s in /dev/shm (%s): %s",
                      1e-6 * static_cast<double>(bytes), name.c_str(), space.c_str(), strerror(err));
  }
  Result<void*> data = mapFd(fd, bytes, name);
  ::close(fd);
  if (!data.isOk()) return data.status();
  segment.data_ = data.value();
  segment.bytes_ = bytes;
  addMapping(name, segment.data_, bytes);
  return segment;
}

Result<ShmSegment> ShmSegment::open(const std::string& name, size_t bytes) {
  if (void* shared = sharedMapping(name, bytes)) {
    ShmSegment segment;
    segment.name_ = name;
    segment.data_ = shared;
    segment.bytes_ = bytes;
    return segment;
  }
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return WEFT_ERROR(weftSystemError, "shm_open(%s) of a peer's segment: %s", name.c_str(), strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) < bytes) {
    ::close(fd);
    return WEFT_ERROR(weftSystemError, "shared memory %s is smaller than %zu bytes", name.c_str(), bytes);
  }
  Result<void*> data = mapFd(fd, bytes, name);
  ::close(fd);
  if (!data.isOk()) return data.status();
  ShmSegment segment;
  segment.name_ = name;
  segment.data_ = data.value();
  segment.bytes_ = bytes;
  addMapping(name, segment.data_, bytes);
  return segment;
}

Result<ShmSegment> ShmSegment::createPrivate(size_t bytes) {
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED)
    return WEFT_ERROR(weftSystemError, "mmap of %zu bytes of private memory: %s", bytes, strerror(errno));
  ShmSegment segment;
  segment.data_ = data;
  segment.bytes_ = bytes;
  return segment;
}

void ShmSegment::unlinkName(const std::string& name) { shm_unlink(name.c_str()); }

void ShmSegment::unlink() {
  if (!name_.empty() && owner_) shm_unlink(name_.c_str());
  owner_ = false;
}

}  // namespace weft
