// The pieces both reliable-channel classes use: see channel_support.hpp.
#include "reliability/channel_support.hpp"

#include "core/byte_order.hpp"

#include <fabric/error.hpp>

#include <chrono>
#include <random>

namespace fabric::detail {
namespace {

constexpr std::string_view identity_table = "frc.identity";
constexpr std::string_view identity_key = "incarnation";

}  // namespace

std::uint64_t draw_incarnation() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return v;
}

std::string be64(std::uint64_t v) {
  std::string bytes(8, '\0');
  store_be(v, bytes.data());
  return bytes;
}

std::uint64_t from_be64(std::string_view bytes) noexcept {
  return bytes.size() == 8 ? load_be<std::uint64_t>(bytes.data()) : 0;
}

std::uint64_t journal_incarnation(journal& j) {
  std::uint64_t inc = 0;
  auto done = j.transact([&](journal_txn& t) {
    inc = 0;
    auto have = t.get(identity_table, identity_key);
    if (!have) return;  // the transaction fails with the read
    if (*have && (inc = from_be64(**have)) != 0) return;
    inc = draw_incarnation();
    t.put(identity_table, identity_key, be64(inc));
  });
  if (!done)
    throw error(errc::io_error, "reliable channel: cannot read or create the journal's incarnation: " +
                                    done.error().message());
  return inc;
}

std::int64_t wall_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace fabric::detail
