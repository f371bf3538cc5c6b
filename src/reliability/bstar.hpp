// The FBS/1 (fabric Binary Star, docs/ha.md) wire codec: a builder and a strict parser for each
// command, with no sockets and no clocks, so that the node's and the witness's machines stay
// pure. This file is the code of the grammar in section 4:
//
//   HEADER = "FBS01"
//   state  = HEADER %x01 role status term seq echo expiry-ms   ; node -> peer (PUB -> SUB)
//   lease  = HEADER %x11 role term seq duration-ms               ; node -> witness (DEALER -> ROUTER)
//   grant  = HEADER %x21 term seq duration-ms                    ; witness -> node
//   deny   = HEADER %x22 seq holder holder-term                  ; witness -> node
//
//   role = 1 octet, 1 (primary) or 2 (backup)   status = 1 octet, 1 .. 4
//   holder = 1 octet, 0 (none), 1 or 2   term, holder-term, echo = 8 octets   seq = 8 octets >= 1
//   expiry-ms, duration-ms = 4 octets, 1 .. 3,600,000
//
// One token is one frame. The grammar is canonical: what the parser accepts is exactly what the
// builder writes for the values parsed. The parser checks the header, the command byte, the
// frame count, then each frame left to right, its width before its value; the first fault found
// is the one reported. A ROUTER's routing-id frame is not part of the grammar: the witness strips
// it before parsing and puts it back before sending.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>

#include <cstdint>
#include <string_view>
#include <variant>

namespace fabric::bstar {

inline constexpr std::string_view header = "FBS01";
inline constexpr std::uint32_t max_interval_ms = 3'600'000;

/// A node's configured role. Wire values: must not change.
enum class role : std::uint8_t { primary = 1, backup = 2 };
/// A node's state. Wire values (those of the Binary Star pattern): must not change.
enum class status : std::uint8_t { primary = 1, backup = 2, active = 3, passive = 4 };

/// The command byte. Wire values: must not change.
enum class command : std::uint8_t { state = 0x01, lease = 0x11, grant = 0x21, deny = 0x22 };

/// Why a message breaks the grammar, one value for each way.
enum class fault : std::uint8_t {
  none = 0,
  no_header,       ///< no frame at all
  unknown_header,  ///< the first frame is not "FBS01"
  bad_command,     ///< the command frame is missing, not one octet, or no command
  truncated,       ///< fewer frames than the command takes
  extra_frames,    ///< more frames than the command takes
  bad_width,       ///< an integer frame that is not exactly its width
  bad_role,        ///< a role other than 1 or 2 (a holder other than 0, 1 or 2)
  bad_status,      ///< a status outside 1 .. 4
  zero_sequence,   ///< a seq of 0
  bad_interval,    ///< expiry-ms or duration-ms outside 1 .. 3,600,000
};

/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;
std::string_view to_string(role r) noexcept;
std::string_view to_string(status s) noexcept;

struct state_fields {
  role from = role::primary;
  status state = status::primary;
  std::uint64_t term = 0;
  std::uint64_t seq = 1;
  std::uint64_t echo = 0;  ///< the last seq the sender heard from its peer; 0 for none
  std::uint32_t expiry_ms = 2000;  ///< the sender's expiry E
  bool operator==(const state_fields&) const = default;
};

struct lease_fields {
  role from = role::primary;
  std::uint64_t term = 0;
  std::uint64_t seq = 1;
  std::uint32_t duration_ms = 1000;
  bool operator==(const lease_fields&) const = default;
};

struct grant_fields {
  std::uint64_t term = 0;
  std::uint64_t seq = 1;
  std::uint32_t duration_ms = 1000;
  bool operator==(const grant_fields&) const = default;
};

/// `holder` is 0 when no node holds the witness's lease.
struct deny_fields {
  std::uint64_t seq = 1;
  std::uint8_t holder = 0;
  std::uint64_t holder_term = 0;
  bool operator==(const deny_fields&) const = default;
};

/// Builders. Throws: fabric::error(invalid_argument) for a value the grammar forbids (a bug in
/// the caller).
message build(const state_fields& f);
message build(const lease_fields& f);
message build(const grant_fields& f);
message build(const deny_fields& f);

/// What parse() found: one command's fields, or the fault.
using parsed = std::variant<fault, state_fields, lease_fields, grant_fields, deny_fields>;

/// Parses the frames of `m` from frame `first` (1 when a ROUTER's routing id comes first).
parsed parse(const message& m, std::size_t first = 0) noexcept;

}  // namespace fabric::bstar
