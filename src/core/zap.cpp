// The authenticator: the ZAP handler, whose request and reply frames follow RFC 27/ZAP version
// 1.0, and the handshake watch, which reads libzmq's monitor events of CURVE server sockets.
#include "core/zap.hpp"

#include <fabric/reactor.hpp>

#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace fabric::detail {
namespace {

constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";

std::atomic<bool> fault_empty_user_id{false};

std::string printable(std::string_view bytes) {
  std::string out;
  for (char c : bytes.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// "; 12 more like it since the last line" when lines were held back.
std::string held_back(std::uint64_t held) {
  if (held == 0) return {};
  return " (" + std::to_string(held) + " more since the last line like it)";
}

}  // namespace

std::optional<std::uint64_t> log_limiter::admit(std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < interval_) {
    ++held_;
    return std::nullopt;
  }
  last_ = now;
  return std::exchange(held_, 0);
}

bool zap_policy::permits(const std::string& domain, const std::string& z85_key) {
  std::lock_guard lock(mutex);
  if (allow_any || allowed.count(z85_key) != 0) return true;
  const auto it = directories.find(domain);
  if (it == directories.end()) return false;
  for (const auto& [dir, keys] : it->second)
    if (keys.count(z85_key) != 0) return true;
  return false;
}

void zap_policy::write(log_level level, const std::string& line) {
  log_fn fn;
  {
    std::lock_guard lock(mutex);
    if (!log || level < min_level) return;
    fn = log;
  }
  try {
    fn(level, line);
  } catch (...) {  // a broken log hook must not take authentication down with it
  }
}

zap_handler::zap_handler(context& ctx, std::shared_ptr<zap_policy> policy)
    : policy_(std::move(policy)),
      rep_(ctx, zmq::socket_type::rep, {.linger = std::chrono::milliseconds(0)}),
      driver_(ctx, "zap handler") {
  rep_.bind(zap_endpoint);
  // Any request that is not a well-formed CURVE request for a permitted key is refused.
  driver_.watch(rep_, [this](message&& request, time_point) {
    // version, request id, domain, address, routing id, mechanism, credentials...
    std::string status = "400";
    std::string text = "refused";
    std::string user_id;
    std::string request_id;
    if (request.size() >= 6) request_id = std::string(request.view(1));
    const bool well_formed = request.size() >= 7 && request.view(0) == "1.0";
    std::string key;
    if (well_formed && request.view(5) == "CURVE" && request[6].size() == 32) {
      std::array<char, 41> z85{};
      zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(request[6].data()), 32);
      key.assign(z85.data(), 40);
      if (policy_->permits(std::string(request.view(2)), key)) {
        status = "200";
        text = "OK";
        if (!fault_empty_user_id.load(std::memory_order_relaxed)) user_id = key;
      }
    }
    (status == "200" ? policy_->allowed_count : policy_->denied_count).fetch_add(1, std::memory_order_relaxed);
    if (status != "200") {
      if (const auto held = limiter_.admit(std::chrono::steady_clock::now())) {
        std::string line = "refused a CURVE client";
        if (!key.empty()) line += " with key " + key + " (not allowed in this domain)";
        else line += " with a malformed authentication request";
        if (request.size() >= 4)
          line += " from " + printable(request.view(3)) + " in ZAP domain '" + printable(request.view(2)) + "'";
        policy_->write(log_level::warning, line + held_back(*held));
      }
    }
    auto reply = make_message("1.0", request_id, status, text, user_id, "");
    (void)rep_.send(std::move(reply));  // the requester is libzmq itself, in-process; it is there
  }, 1);
  driver_.start();
}

std::unique_ptr<zap_handler> start_zap_handler(context& ctx, std::shared_ptr<zap_policy> policy) {
  return std::make_unique<zap_handler>(ctx, std::move(policy));
}

handshake_watch::handshake_watch(context& ctx, std::shared_ptr<zap_policy> policy)
    : ctx_(ctx), policy_(std::move(policy)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw error(errc::io_error, "cannot create an eventfd for the handshake watch");
  thread_ = std::thread([this] { run(); });
}

handshake_watch::~handshake_watch() {
  stop_.store(true);
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  pending_.clear();
  ::close(wake_fd_);
}

void handshake_watch::add(void* target) {
  const std::string endpoint = "inproc://fabric.handshake-watch." +
                               std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "." +
                               std::to_string(next_id_.fetch_add(1));
  zmq::socket_t pair(ctx_.native(), zmq::socket_type::pair);
  pair.set(zmq::sockopt::linger, 0);
  pair.connect(endpoint);
  // ZAP refusals are counted by the handler itself. A handshake that ends without detail is
  // counted too: when a NULL or PLAIN peer and the server see the mismatch at once, the side
  // that is second sees only the connection end.
  constexpr int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                         ZMQ_EVENT_MONITOR_STOPPED;
  if (zmq_socket_monitor(target, endpoint.c_str(), events) != 0)
    throw_zmq_error(zmq_errno(), "cannot watch the handshakes of a CURVE server socket");
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(pair));
  }
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void handshake_watch::on_event(std::uint16_t event, std::uint32_t value, const std::string& endpoint) {
  if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) return;
  policy_->refused_handshakes.fetch_add(1, std::memory_order_relaxed);
  const bool ended = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  const bool mechanism = !ended && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
  log_limiter& limiter = ended ? ended_limiter_ : mechanism ? mechanism_limiter_ : curve_limiter_;
  const auto held = limiter.admit(std::chrono::steady_clock::now());
  if (!held) return;
  std::string line = "refused a peer on " + endpoint;
  if (ended) {
    // The value is an errno here.
    line += ": its handshake ended early (" + std::string(std::strerror(static_cast<int>(value))) +
            "; a peer without CURVE, a handshake timeout or a reset)";
  } else if (mechanism) {
    line += ": it does not speak CURVE (a NULL or PLAIN peer)";
  } else {
    char code[16];
    std::snprintf(code, sizeof code, "0x%08x", value);
    line += ": its CURVE handshake failed (libzmq protocol error " + std::string(code) +
            "; a client with the wrong server key?)";
  }
  policy_->write(log_level::warning, line + held_back(*held));
}

void handshake_watch::run() {
  // On the shared reactor: the eventfd brings new feeds (and the stop), each feed's PAIR is
  // watched until its MONITOR_STOPPED. Sockets are held by pointer so the handlers' references
  // stay valid as feeds come and go; a finished feed is closed on the next wake or at the end.
  reactor r;
  std::vector<std::unique_ptr<zmq::socket_t>> feeds;
  std::vector<std::unique_ptr<zmq::socket_t>> finished;
  const auto drain = [&](zmq::socket_t* feed) {
    for (;;) {
      zmq::message_t head;
      zmq::message_t endpoint;
      try {
        if (!feed->recv(head, zmq::recv_flags::dontwait)) return;
        if (head.more()) (void)feed->recv(endpoint, zmq::recv_flags::dontwait);
      } catch (const zmq::error_t&) {
        return;
      }
      if (head.size() < 6) continue;
      std::uint16_t event = 0;
      std::uint32_t value = 0;
      std::memcpy(&event, head.data(), 2);
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
      if (event == ZMQ_EVENT_MONITOR_STOPPED) {
        r.remove(zmq::socket_ref(zmq::from_handle, feed->handle()));
        const auto it = std::find_if(feeds.begin(), feeds.end(), [feed](const auto& f) { return f.get() == feed; });
        finished.push_back(std::move(*it));
        feeds.erase(it);
        return;
      }
      on_event(event, value, endpoint.to_string());
    }
  };
  r.add_fd(wake_fd_, [&] {
    std::uint64_t count = 0;
    (void)!::read(wake_fd_, &count, sizeof count);
    finished.clear();
    if (stop_.load()) {
      r.stop();
      return;
    }
    std::lock_guard lock(mutex_);
    for (auto& pair : pending_) {
      feeds.push_back(std::make_unique<zmq::socket_t>(std::move(pair)));
      zmq::socket_t* feed = feeds.back().get();
      r.add(zmq::socket_ref(zmq::from_handle, feed->handle()), [&drain, feed] { drain(feed); });
    }
    pending_.clear();
  });
  // Returns on stop, or with errc::closed when the context shuts down; either way the feeds are
  // closed here (linger 0) so the context can end.
  try {
    (void)r.run();
  } catch (const std::exception& e) {  // a poll failure other than a shutdown: say so, and end
    policy_->write(log_level::error, std::string("handshake watch stopped: ") + e.what());
  }
}

}  // namespace fabric::detail

namespace fabric::detail::zap_faults {
void set_empty_user_id(bool on) noexcept { fault_empty_user_id.store(on); }
bool empty_user_id() noexcept { return fault_empty_user_id.load(); }
}  // namespace fabric::detail::zap_faults
