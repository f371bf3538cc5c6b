// Message ids: 128 bits that name one message of one producer, across restarts.
//
// Thread safety: message_id is a value; an id_generator is used from one thread.
#pragma once

#include <fabric/result.hpp>

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace fabric {

/// A 128-bit message id, unique per producer across restarts.
struct message_id {
  std::array<std::uint8_t, 16> bytes{};

  /// 32 lowercase hex characters.
  std::string to_string() const;
  /// Parses 32 hex characters. Returns errc::malformed otherwise.
  static result<message_id> parse(std::string_view hex) noexcept;
  bool is_zero() const noexcept;

  friend auto operator<=>(const message_id&, const message_id&) = default;
  friend bool operator==(const message_id&, const message_id&) = default;
};

/// Generates message ids: 64 random bits chosen at construction followed by a 64-bit counter,
/// so ids never repeat within a generator and collide across restarts with probability ~2^-64.
class id_generator {
 public:
  id_generator();
  message_id next() noexcept;

 private:
  std::uint64_t prefix_;
  std::uint64_t counter_ = 0;
};

}  // namespace fabric
