// Durations for command lines and log lines; see duration.hpp.
#include "fabric_support/duration.hpp"

#include <cctype>
#include <cstdint>
#include <limits>

namespace fabric::support {
namespace {

// Exact arithmetic for "a fraction of a unit in ms": 18 fraction digits times 60'000 needs
// more than 64 bits.
__extension__ using u128 = unsigned __int128;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

struct unit {
  std::string_view suffix;
  std::uint64_t ms;
};
constexpr unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}};

// More digits than this in either part of the number could overflow the arithmetic below; no
// real duration needs them.
constexpr std::size_t max_digits = 18;

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  text = trim(text);
  std::size_t i = 0;
  std::uint64_t whole = 0;
  std::size_t whole_digits = 0;
  for (; i < text.size() && is_digit(text[i]); ++i, ++whole_digits)
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
  std::uint64_t fraction = 0;
  std::uint64_t fraction_scale = 1;  // 10^(fraction digits)
  std::size_t fraction_digits = 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && is_digit(text[i]); ++i, ++fraction_digits) {
      fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
      fraction_scale *= 10;
    }
  }
  if (whole_digits + fraction_digits == 0 || whole_digits > max_digits || fraction_digits > max_digits)
    return std::nullopt;
  const std::string_view suffix = trim(text.substr(i));
  std::uint64_t per_unit = 1;
  if (!suffix.empty()) {
    per_unit = 0;
    for (const unit& u : units)
      if (suffix == u.suffix) per_unit = u.ms;
    if (per_unit == 0) return std::nullopt;
  }
  const u128 ms = u128{whole} * per_unit + u128{fraction} * per_unit / fraction_scale;
  if (ms > static_cast<u128>(std::numeric_limits<std::chrono::milliseconds::rep>::max())) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

std::string format_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms != 0) {
    for (const unit& u : {units[2], units[1]}) {
      const auto per_unit = static_cast<std::chrono::milliseconds::rep>(u.ms);
      if (ms % per_unit == 0) return std::to_string(ms / per_unit) + std::string(u.suffix);
    }
  }
  return std::to_string(ms) + "ms";
}

}  // namespace fabric::support
