// The Titanic server's fault injection points (tsp_faults.hpp).
#include "reliability/tsp_faults.hpp"

#include <atomic>

namespace fabric::tsp::faults {

namespace {
std::atomic<bool> ignore{false};
std::atomic<std::uint64_t> to_drop{0};
}  // namespace

void set_ignore_keys(bool on) noexcept { ignore = on; }
bool ignore_keys() noexcept { return ignore; }

void set_drop_stored_answers(std::uint64_t n) noexcept { to_drop = n; }

bool take_dropped_answer() noexcept {
  std::uint64_t left = to_drop.load();
  while (left > 0) {
    if (to_drop.compare_exchange_weak(left, left - 1)) return true;
  }
  return false;
}

namespace {
std::atomic<bool> skip_apply{false};
}  // namespace

void set_replica_skips_apply(bool on) noexcept { skip_apply.store(on); }
bool replica_skips_apply() noexcept { return skip_apply.load(); }

}  // namespace fabric::tsp::faults
