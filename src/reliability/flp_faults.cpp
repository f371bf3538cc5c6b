// The Freelance client's fault injection points (flp_faults.hpp).
#include "reliability/flp_faults.hpp"

#include <atomic>

namespace fabric::flp::faults {

namespace {
std::atomic<bool> late{false};
std::atomic<bool> forget{false};
}  // namespace

void set_deliver_late_replies(bool on) noexcept { late = on; }
bool deliver_late_replies() noexcept { return late; }

void set_forget_lost_requests(bool on) noexcept { forget = on; }
bool forget_lost_requests() noexcept { return forget; }

}  // namespace fabric::flp::faults
