// What the power-loss journal workload writes, shared by the workload (which appends it) and the
// checker (which expects it back): record payloads derived from (stream, seq), and the completion
// marks the workload logs through the shim.
//
// mark = "o"                            ; journal::open() returned: the journal exists
//      / "a " stream " " seq " " hash   ; append `seq` of `stream` completed; hash of its payload
//      / "c " cursor " " value          ; a transaction setting `cursor` to `value` completed
#pragma once

#include <fabric_support/byte_order.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::testing::powerloss {

/// The name of stream `index` of the workload.
inline std::string workload_stream(unsigned index) { return "s" + std::to_string(index); }
/// The name of the cursor the workload's transactions move along stream `index`.
inline std::string workload_cursor(unsigned index) { return "c" + std::to_string(index); }

/// 64-bit FNV-1a: what a mark says a payload hashes to.
inline std::uint64_t payload_hash(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The payload of record `seq` of stream `index`: mostly small, one in ten longer than a page
/// (so overflow pages are written too), its bytes a function of (index, seq).
inline std::string workload_payload(unsigned index, std::uint64_t seq) {
  std::uint64_t state = (std::uint64_t{index} << 40) ^ seq ^ 0x9e3779b97f4a7c15ull;
  auto next = [&state] {  // splitmix64
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  const std::uint64_t pick = next();
  const std::size_t size = pick % 10 == 0 ? 4200 + pick % 6000 : 16 + pick % 700;
  std::string out;
  out.reserve(size);
  while (out.size() < size) {
    char word[8];
    fabric::support::store_le(next(), word);
    out.append(word, std::min(sizeof word, size - out.size()));
  }
  return out;
}

inline constexpr std::string_view opened_mark = "o";

inline std::string append_mark(unsigned index, std::uint64_t seq, std::uint64_t hash) {
  return "a " + workload_stream(index) + " " + std::to_string(seq) + " " + std::to_string(hash);
}

inline std::string cursor_mark(unsigned index, std::uint64_t value) {
  return "c " + workload_cursor(index) + " " + std::to_string(value);
}

/// A mark read back.
struct workload_mark {
  char kind = 'a';     ///< 'o' opened, 'a' append, 'c' cursor
  std::string name;    ///< stream or cursor
  std::uint64_t value = 0;  ///< seq or cursor value
  std::uint64_t hash = 0;   ///< appends only
};

/// Parses a mark; nullopt when it is not one of the workload's.
inline std::optional<workload_mark> parse_mark(std::string_view text) {
  workload_mark m;
  auto word = [&text]() -> std::string_view {
    const auto space = text.find(' ');
    const std::string_view w = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    return w;
  };
  auto number = [](std::string_view w, std::uint64_t& out) {
    const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), out);
    return ec == std::errc{} && end == w.data() + w.size() && !w.empty();
  };
  const std::string_view kind = word();
  if (kind == opened_mark && text.empty()) {
    m.kind = 'o';
    return m;
  }
  if (kind != "a" && kind != "c") return std::nullopt;
  m.kind = kind[0];
  m.name = std::string(word());
  if (m.name.empty() || !number(word(), m.value)) return std::nullopt;
  if (m.kind == 'a' && !number(word(), m.hash)) return std::nullopt;
  if (!text.empty()) return std::nullopt;
  return m;
}

}  // namespace fabric::testing::powerloss
