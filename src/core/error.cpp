// The fabric and zmq error categories.
#include <fabric/error.hpp>

#include <zmq.h>

namespace fabric {
namespace {

class fabric_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fabric"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::timeout: return "timed out";
      case errc::would_block: return "operation would block";
      case errc::back_pressure: return "back-pressure: the peer queue is full or no peer is ready";
      case errc::peer_unreachable: return "peer unreachable: no connected peer has that routing id";
      case errc::closed: return "closed: the socket or its context was shut down";
      case errc::malformed: return "malformed input";
      case errc::too_large: return "input exceeds a configured bound";
      case errc::invalid_argument: return "invalid argument";
      case errc::invalid_state: return "operation not allowed in the current state";
      case errc::not_supported: return "not supported";
      case errc::protocol_error: return "protocol error";
      case errc::io_error: return "I/O error";
      case errc::interrupted: return "interrupted by a signal";
      case errc::refused: return "refused by the peer";
    }
    return "unknown fabric error " + std::to_string(value);
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::timeout: return std::errc::timed_out;
      case errc::would_block: return std::errc::operation_would_block;
      case errc::invalid_argument: return std::errc::invalid_argument;
      case errc::not_supported: return std::errc::not_supported;
      case errc::too_large: return std::errc::message_size;
      case errc::peer_unreachable: return std::errc::host_unreachable;
      case errc::interrupted: return std::errc::interrupted;
      default: return {value, *this};
    }
  }
};

class zmq_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "zmq"; }
  std::string message(int value) const override { return zmq_strerror(value); }
  std::error_condition default_error_condition(int value) const noexcept override {
    // libzmq errno values below its private range are plain POSIX errno values.
    if (value < ZMQ_HAUSNUMERO) return std::generic_category().default_error_condition(value);
    return {value, *this};
  }
};

}  // namespace

const std::error_category& fabric_category() noexcept {
  static const fabric_category_impl instance;
  return instance;
}

const std::error_category& zmq_category() noexcept {
  static const zmq_category_impl instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), fabric_category()};
}

error::error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
error::error(errc code, const char* what) : std::system_error(make_error_code(code), what) {}

void throw_zmq_error(int zmq_errno, const std::string& what) {
  throw error(std::error_code(zmq_errno, zmq_category()), what);
}

}  // namespace fabric
