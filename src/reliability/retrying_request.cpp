// The blocking half of the retrying request: attempts, waits and resends, as retry_machine says.
#include "reliability/retrying_request.hpp"

#include <fabric/error.hpp>

#include <utility>

namespace fabric::detail {

result<message> retry_blocking(const retry_machine::settings& s, retry_hooks& hooks,
                               const std::function<time_point()>& now) {
  retry_machine m(s);
  m.begin(now());
  for (;;) {
    auto sent = hooks.send(m.attempt());
    retry_machine::verdict v = retry_machine::verdict::wait;
    if (!sent) {
      if (sent.is(errc::closed) || sent.is(errc::interrupted)) return sent.error();
      v = m.on_lost(now());
    }
    while (v == retry_machine::verdict::wait) {
      const time_point t = now();
      v = m.on_wake(t);
      if (v != retry_machine::verdict::wait) break;
      // Rounded up, so that a wait never ends just short of the deadline and spins.
      auto got = hooks.wait(std::chrono::ceil<std::chrono::milliseconds>(m.remaining(t)));
      if (!got) return got.error();
      if (*got) return std::move(**got);
    }
    if (v == retry_machine::verdict::give_up) return errc::timeout;
  }
}

}  // namespace fabric::detail
