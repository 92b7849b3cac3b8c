// POSIX shared memory segments that cannot leak: the creator unlinks the name
// as soon as every rank of the node has mapped it, so a crash afterwards
// leaves nothing in /dev/shm; an error before that unlinks it too. Every page
// is reserved at creation, so a full /dev/shm is an error there, not a SIGBUS
// at the first touch.
#pragma once

#include <string>

#include "core/status.h"

namespace weft {

class ShmSegment {
 public:
  ShmSegment() = default;
  ~ShmSegment();
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  static Result<ShmSegment> create(const std::string& name, size_t bytes);
  static Result<ShmSegment> open(const std::string& name, size_t bytes);
  // Anonymous memory of the same shape, for a rank with no node peers: no name.
  static Result<ShmSegment> createPrivate(size_t bytes);

  void* data() const { return data_; }
  size_t size() const { return bytes_; }
  const std::string& name() const { return name_; }
  // Removes the name; the mapping stays valid.
  void unlink();
  // Removes a segment's name that another process may have created (no
  // error when there is none).
  static void unlinkName(const std::string& name);

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::string name_;
  bool owner_ = false;
};

}  // namespace weft
