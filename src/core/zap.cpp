// The ZAP handler: the context's authenticator, on the protocol driver. Request and reply frames
// follow RFC 27/ZAP version 1.0.
#include "core/zap.hpp"

#include <zmq.h>

#include <utility>

#include <array>

namespace fabric::detail {
namespace {

constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";

// Answers one request on `rep`. Any request that is not a well-formed CURVE request for a
// permitted key is refused.
void answer(any_socket& rep, message& request, zap_policy& policy) {
  // version, request id, domain, address, routing id, mechanism, credentials...
  std::string status = "400";
  std::string text = "refused";
  std::string user_id;
  std::string request_id;
  if (request.size() >= 6) request_id = std::string(request.view(1));
  const bool well_formed = request.size() >= 7 && request.view(0) == "1.0";
  if (well_formed && request.view(5) == "CURVE" && request[6].size() == 32) {
    std::array<char, 41> z85{};
    zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(request[6].data()), 32);
    std::string key(z85.data(), 40);
    if (policy.permits(key)) {
      status = "200";
      text = "OK";
      user_id = std::move(key);
    }
  }
  (status == "200" ? policy.allowed_count : policy.denied_count)
      .fetch_add(1, std::memory_order_relaxed);
  auto reply = make_message("1.0", request_id, status, text, user_id, "");
  (void)rep.send(std::move(reply));  // the requester is libzmq itself, in-process; it is there
}

}  // namespace

bool zap_policy::permits(const std::string& z85_key) {
  std::lock_guard lock(mutex);
  return allow_any || allowed.count(z85_key) != 0;
}

zap_handler::zap_handler(context& ctx, std::shared_ptr<zap_policy> policy)
    : policy_(std::move(policy)),
      rep_(ctx, zmq::socket_type::rep, {.linger = std::chrono::milliseconds(0)}),
      driver_(ctx, "zap handler") {
  rep_.bind(zap_endpoint);
  driver_.watch(rep_, [this](message&& m, time_point) { answer(rep_, m, *policy_); }, 1);
  driver_.start();
}

std::unique_ptr<zap_handler> start_zap_handler(context& ctx, std::shared_ptr<zap_policy> policy) {
  return std::make_unique<zap_handler>(ctx, std::move(policy));
}

}  // namespace fabric::detail
