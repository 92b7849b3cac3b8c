// Status and Result<T>: how errors travel inside weft. At the C boundary a
// Status becomes a weftResult_t plus a message stored as the last error.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "weft/weft.h"

namespace weft {

// An ok Status is a code and a null pointer: hot paths pass many of them,
// so only an error pays for its message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(weftResult_t code, std::string message)
      : code_(code), message_(code == weftSuccess ? nullptr : std::make_unique<std::string>(std::move(message))) {}
  Status(const Status& other)
      : code_(other.code_), message_(other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) {
      code_ = other.code_;
      message_ = other.message_ ? std::make_unique<std::string>(*other.message_) : nullptr;
    }
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok() { return Status(); }
  bool isOk() const { return code_ == weftSuccess; }
  explicit operator bool() const { return isOk(); }
  weftResult_t code() const { return code_; }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

 private:
  weftResult_t code_ = weftSuccess;
  std::unique_ptr<std::string> message_;
};

// Formats like printf into a std::string.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#define WEFT_ERROR(code, ...) ::weft::Status((code), ::weft::format(__VA_ARGS__))

// Propagates a non-ok Status to the caller.
#define WEFT_CHECK(expr)                         \
  do {                                           \
    ::weft::Status weftStatus_ = (expr);         \
    if (!weftStatus_.isOk()) return weftStatus_; \
  } while (0)

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit on purpose
  Result(Status status) : value_(std::move(status)) {}  // NOLINT
  bool isOk() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status okStatus;
    return isOk() ? okStatus : std::get<Status>(value_);
  }
  T& value() { return std::get<T>(value_); }
  const T& value() const { return std::get<T>(value_); }
  T take() { return std::move(std::get<T>(value_)); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace weft
