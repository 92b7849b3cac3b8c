#include "transports/shm/shm_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace weft {

ShmSegment::~ShmSegment() {
  if (owner_) unlink();
  if (data_ != nullptr) munmap(data_, bytes_);
}

ShmSegment::ShmSegment(ShmSegment&& other) noexcept { *this = std::move(other); }

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    if (owner_) unlink();
    if (data_ != nullptr) munmap(data_, bytes_);
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
    return WEFT_ERROR(weftSystemError, "mmap of shared memory %s (%zu bytes): %s", name.c_str(),
                      bytes, strerror(errno));
  return data;
}

Result<ShmSegment> ShmSegment::create(const std::string& name, size_t bytes) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0)
    return WEFT_ERROR(weftSystemError, "shm_open(%s): %s", name.c_str(), strerror(errno));
  ShmSegment segment;
  segment.name_ = name;
  segment.owner_ = true;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    ::close(fd);
    return WEFT_ERROR(weftSystemError,
                      "cannot size shared memory %s to %zu bytes: %s (is /dev/shm large enough?)",
                      name.c_str(), bytes, strerror(err));
  }
  Result<void*> data = mapFd(fd, bytes, name);
  ::close(fd);
  if (!data.isOk()) return data.status();
  segment.data_ = data.value();
  segment.bytes_ = bytes;
  return segment;
}

Result<ShmSegment> ShmSegment::open(const std::string& name, size_t bytes) {
  int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0)
    return WEFT_ERROR(weftSystemError, "shm_open(%s) of a peer's segment: %s", name.c_str(),
                      strerror(errno));
  struct stat info;
  if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) < bytes) {
    ::close(fd);
    return WEFT_ERROR(weftSystemError, "shared memory %s is smaller than %zu bytes", name.c_str(),
                      bytes);
  }
  Result<void*> data = mapFd(fd, bytes, name);
  ::close(fd);
  if (!data.isOk()) return data.status();
  ShmSegment segment;
  segment.name_ = name;
  segment.data_ = data.value();
  segment.bytes_ = bytes;
  return segment;
}

void ShmSegment::unlink() {
  if (!name_.empty() && owner_) shm_unlink(name_.c_str());
  owner_ = false;
}

}  // namespace weft
