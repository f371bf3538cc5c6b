// The Freelance server machine (flp_server.hpp).
#include "reliability/flp_server.hpp"

#include "reliability/flp.hpp"

#include <fabric/error.hpp>

#include <utility>

namespace fabric::flp {

namespace {
constexpr std::size_t largest_control_bound = 65536;
}

server_machine::server_machine(detail::machine_sink& out, std::size_t max_control,
                               freelance::server::handler on_request)
    : out_(out), max_control_(max_control), on_request_(std::move(on_request)) {
  if (max_control_ > largest_control_bound)
    throw error(errc::invalid_argument, "freelance::server: options.max_control_size must be at most 65536");
}

bool server_machine::accept(message&& m, freelance::request& out) {
  const at_server p = parse_at_server(m, max_control_);
  switch (p.what) {
    case at_server::kind::ping: {
      auto sent = out_.send(pong_to(std::move(m[0])));
      if (sent) {
        pings_.add();
      } else if (sent.is(errc::peer_unreachable)) {
        unroutable_.add();
      } else if (!sent.is(errc::closed)) {
        back_pressure_.add();
      }
      return false;
    }
    case at_server::kind::malformed:
      malformed_.add();
      return false;
    case at_server::kind::request:
      break;
  }
  requests_.add();
  auto& frames = m.frames();
  out.client = std::move(frames[0]);
  out.control = std::move(frames[1]);
  frames.erase(frames.begin(), frames.begin() + 2);
  out.body = std::move(m);
  return true;
}

result<void> server_machine::reply(freelance::request& r, message& body) {
  message out;
  out.reserve(body.size() + 2);
  out.push_back(std::move(r.client));
  out.push_back(std::move(r.control));
  if (body.empty()) {
    out.push_back(std::string_view());  // 10/FLP: a reply has at least one frame
  } else {
    for (frame& f : body) out.push_back(std::move(f));
  }
  auto sent = out_.send(std::move(out));
  if (sent) {
    replies_.add();
    body.clear();
    return sent;
  }
  // Give everything back, as it was.
  r.client = std::move(out[0]);
  r.control = std::move(out[1]);
  if (!body.empty())
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = std::move(out[i + 2]);
  if (sent.is(errc::peer_unreachable)) {
    unroutable_.add();
  } else if (!sent.is(errc::closed)) {
    back_pressure_.add();
  }
  return sent;
}

void server_machine::on_message(message&& m, detail::time_point) {
  if (!accept(std::move(m), in_)) return;
  message answer;
  try {
    answer = on_request_(std::move(in_.body));
  } catch (...) {
    // Whatever it threw, the client's retry on another server is the recovery.
    handler_failures_.add();
    return;
  }
  (void)reply(in_, answer);  // a client gone or full is counted; it retries elsewhere
}

freelance::server_stats server_machine::stats() const noexcept {
  return {.pings = pings_.get(),
          .requests = requests_.get(),
          .replies = replies_.get(),
          .malformed = malformed_.get(),
          .unroutable = unroutable_.get(),
          .back_pressure = back_pressure_.get(),
          .handler_failures = handler_failures_.get()};
}

}  // namespace fabric::flp
