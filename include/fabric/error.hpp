// fabric's error model: exceptions for setup and misuse, error codes for hot-path outcomes.
//
// Thread safety: everything here is immutable or stateless and safe from any thread.
#pragma once

#include <string>
#include <system_error>

namespace fabric {

/// Conditions fabric reports. The numeric values are stable; 0 is never an error.
enum class errc {
  timeout = 1,        ///< a bounded wait ran out
  would_block,        ///< a non-blocking call could not proceed now
  back_pressure,      ///< the peer's queue is full (HWM reached) or no peer can take the message
  peer_unreachable,   ///< a routed message names a peer that is not connected (ROUTER_MANDATORY)
  closed,             ///< the socket or its context has been closed or shut down
  malformed,          ///< input from the wire or disk failed validation
  too_large,          ///< input exceeds a configured bound (frames, bytes, depth)
  invalid_argument,   ///< the caller passed a value fabric cannot use
  invalid_state,      ///< the call is not allowed in the object's current state
  not_supported,      ///< the operation or transport is not available in this build
  protocol_error,     ///< a peer broke the protocol
  io_error,           ///< an operating-system level failure
  interrupted,        ///< a signal interrupted a blocking call (EINTR); check your shutdown flag
  refused,            ///< the peer refused the request for good (e.g. a reliable channel's REFUSE)
};

/// The category for fabric::errc codes; its name() is "fabric".
const std::error_category& fabric_category() noexcept;

/// The category for raw libzmq errno values, with zmq_strerror messages; its name() is "zmq".
const std::error_category& zmq_category() noexcept;

/// Makes an error_code in fabric_category(); found by ADL so `std::error_code ec = errc::timeout;` works.
std::error_code make_error_code(errc e) noexcept;

/// The exception fabric throws for setup failures and misuse (bad endpoint, bad option, wrong
/// state). Hot-path outcomes such as timeouts never throw; they come back as values.
class error : public std::system_error {
 public:
  using std::system_error::system_error;
  /// Creates an error in fabric_category() with a message that says what to do.
  error(errc code, const std::string& what);
  error(errc code, const char* what);
};

/// Throws fabric::error for the libzmq errno `zmq_errno`, prefixed with `what`.
[[noreturn]] void throw_zmq_error(int zmq_errno, const std::string& what);

}  // namespace fabric

template <>
struct std::is_error_code_enum<fabric::errc> : std::true_type {};
