// Message ids: hex text and the per-producer generator.
#include <fabric/message_id.hpp>

#include <random>

namespace fabric {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string message_id::to_string() const {
  std::string s(32, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = hex_digits[bytes[i] >> 4];
    s[2 * i + 1] = hex_digits[bytes[i] & 0x0f];
  }
  return s;
}

result<message_id> message_id::parse(std::string_view hex) noexcept {
  if (hex.size() != 32) return errc::malformed;
  message_id id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return errc::malformed;
    id.bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return id;
}

bool message_id::is_zero() const noexcept {
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

id_generator::id_generator() {
  std::random_device rd;
  prefix_ = (std::uint64_t{rd()} << 32) ^ std::uint64_t{rd()};
}

message_id id_generator::next() noexcept {
  message_id id;
  const std::uint64_t counter = ++counter_;
  for (int i = 0; i < 8; ++i) {
    id.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(prefix_ >> (56 - 8 * i));
    id.bytes[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
  }
  return id;
}

}  // namespace fabric
