// requester::request: one send and one bounded receive.
#include <fabric/req_rep.hpp>

namespace fabric {

result<message> requester::request(message&& request, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (auto sent = send(std::move(request), timeout); !sent) return sent.error();
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  message reply;
  if (left.count() <= 0) {
    if (auto r = try_recv(reply); !r) return r.is(errc::would_block) ? errc::timeout : r.error();
    return reply;
  }
  if (auto r = recv(reply, left); !r) return r.error();
  return reply;
}

}  // namespace fabric
