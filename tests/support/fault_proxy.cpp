#include "support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace fabric::testing {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t max_queued = 4 * 1024 * 1024;  // per direction: beyond it, stop reading

[[noreturn]] void fail(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

sockaddr_in address_of(const std::string& host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
    throw std::invalid_argument("fault_proxy: not an IPv4 address: " + host);
  return a;
}

// Closes with SO_LINGER 0: the peer sees a reset, not an orderly end.
void reset_close(int fd) noexcept {
  linger l{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  (void)::close(fd);
}

void tune(int fd) noexcept {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct chunk {
  clock::time_point release;
  std::vector<char> bytes;
  std::size_t sent = 0;
};

// One direction of one connection: what was read from `from`, waiting to be written to `to`.
struct direction {
  std::deque<chunk> queue;
  std::size_t queued = 0;
  double tokens = 0;  // throttle budget, in bytes
  clock::time_point refilled = clock::now();
  std::uint64_t* counter = nullptr;

  bool ready(clock::time_point now) const { return !queue.empty() && queue.front().release <= now; }
};

struct connection {
  int down = -1;  // the side that connected to the proxy
  int up = -1;    // the proxy's connection to the upstream
  direction to_up;
  direction to_down;
  bool dead = false;
};

}  // namespace

struct fault_proxy::state {
  std::vector<std::unique_ptr<connection>> connections;
  std::uint64_t cuts_done = 0;
  stats local;  // the loop's counters, published to stats_ after each turn
};

fault_proxy::fault_proxy(std::string upstream_host, std::uint16_t upstream_port, std::string listen_host)
    : upstream_host_(std::move(upstream_host)),
      upstream_port_(upstream_port),
      listen_host_(std::move(listen_host)),
      state_(std::make_unique<state>()) {
  (void)address_of(upstream_host_, upstream_port_);  // checked now, not in the loop
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("fault_proxy: socket");
  int one = 1;
  (void)::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = address_of(listen_host_, 0);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0) {
    const int e = errno;
    ::close(listen_fd_);
    errno = e;
    fail("fault_proxy: bind/listen");
  }
  socklen_t len = sizeof a;
  (void)::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    ::close(listen_fd_);
    fail("fault_proxy: eventfd");
  }
  thread_ = std::thread([this] { run(); });
}

fault_proxy::~fault_proxy() {
  stop_ = true;
  wake();
  thread_.join();
  for (auto& c : state_->connections) {
    ::close(c->down);
    ::close(c->up);
  }
  ::close(listen_fd_);
  ::close(wake_fd_);
}

std::string fault_proxy::endpoint() const { return "tcp://" + listen_host_ + ":" + std::to_string(port_); }

void fault_proxy::wake() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void fault_proxy::cut() {
  ++cut_requests_;
  wake();
}
void fault_proxy::refuse(bool on) {
  refuse_ = on;
  wake();
}
void fault_proxy::stall(bool on) {
  stall_ = on;
  wake();
}
void fault_proxy::delay(std::chrono::milliseconds d) {
  delay_ms_ = d.count();
  wake();
}
void fault_proxy::throttle(std::size_t bytes_per_second) {
  rate_ = bytes_per_second;
  wake();
}

fault_proxy::stats fault_proxy::counters() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void fault_proxy::run() {
  state& st = *state_;
  const sockaddr_in upstream = address_of(upstream_host_, upstream_port_);

  auto accept_one = [&] {
    const int down = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (down < 0) return false;
    ++st.local.accepted;
    if (refuse_) {
      ++st.local.refused;
      reset_close(down);
      return true;
    }
    // A blocking connect, bounded by SO_SNDTIMEO: the upstream is on this host or one veth away.
    const int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{1, 0};
    if (up >= 0) (void)::setsockopt(up, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (up < 0 || ::connect(up, reinterpret_cast<const sockaddr*>(&upstream), sizeof upstream) != 0) {
      if (up >= 0) ::close(up);
      ++st.local.refused;
      reset_close(down);
      return true;
    }
    (void)::fcntl(up, F_SETFL, O_NONBLOCK);
    tune(down);
    tune(up);
    auto c = std::make_unique<connection>();
    c->down = down;
    c->up = up;
    c->to_up.counter = &st.local.bytes_upstream;
    c->to_down.counter = &st.local.bytes_downstream;
    st.connections.push_back(std::move(c));
    return true;
  };

  auto refill = [&](direction& d, clock::time_point now, std::size_t rate) {
    if (rate == 0) return;
    const double dt = std::chrono::duration<double>(now - d.refilled).count();
    d.refilled = now;
    const double cap = std::max<double>(static_cast<double>(rate) / 20, 1024);  // 50 ms of burst
    d.tokens = std::min(cap, d.tokens + dt * static_cast<double>(rate));
  };

  auto pump_in = [&](int from, direction& d, clock::time_point now) {
    chunk c;
    c.bytes.resize(read_size);
    const ssize_t n = ::read(from, c.bytes.data(), c.bytes.size());
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.bytes.resize(static_cast<std::size_t>(n));
    c.release = now + std::chrono::milliseconds(delay_ms_.load());
    d.queued += c.bytes.size();
    d.queue.push_back(std::move(c));
    return true;
  };

  auto pump_out = [&](int to, direction& d, clock::time_point now, std::size_t rate) {
    while (d.ready(now)) {
      chunk& c = d.queue.front();
      std::size_t want = c.bytes.size() - c.sent;
      if (rate != 0) want = std::min<std::size_t>(want, static_cast<std::size_t>(d.tokens));
      if (want == 0) return true;
      const ssize_t n = ::write(to, c.bytes.data() + c.sent, want);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c.sent += static_cast<std::size_t>(n);
      d.queued -= static_cast<std::size_t>(n);
      *d.counter += static_cast<std::uint64_t>(n);
      if (rate != 0) d.tokens -= static_cast<double>(n);
      if (c.sent < c.bytes.size()) return true;  // the socket is full
      d.queue.pop_front();
    }
    return true;
  };

  std::vector<pollfd> fds;
  while (!stop_) {
    const auto now = clock::now();
    const std::size_t rate = rate_;
    const bool stalled = stall_;

    if (const std::uint64_t wanted = cut_requests_; wanted != st.cuts_done) {
      st.cuts_done = wanted;
      for (auto& c : st.connections) {
        reset_close(c->down);
        reset_close(c->up);
        c->down = c->up = -1;
        ++st.local.cut;
      }
      st.connections.clear();
    }

    // What to wait for, and for how long.
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(stalled ? 0 : POLLIN), 0});
    auto next = now + std::chrono::milliseconds(100);
    for (auto& c : st.connections) {
      refill(c->to_up, now, rate);
      refill(c->to_down, now, rate);
      short down_events = 0;
      short up_events = 0;
      if (!stalled) {
        if (c->to_up.queued < max_queued) down_events |= POLLIN;
        if (c->to_down.queued < max_queued) up_events |= POLLIN;
        for (auto [d, events] : {std::pair{&c->to_up, &up_events}, std::pair{&c->to_down, &down_events}}) {
          if (d->queue.empty()) continue;
          if (d->queue.front().release > now) {
            next = std::min(next, d->queue.front().release);
          } else if (rate != 0 && d->tokens < 1) {
            next = std::min(next, now + std::chrono::milliseconds(5));
          } else {
            *events |= POLLOUT;
          }
        }
      }
      fds.push_back({c->down, down_events, 0});
      fds.push_back({c->up, up_events, 0});
    }
    const std::size_t polled = st.connections.size();  // accept_one() may add more below
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<std::int64_t>(0, wait_ms) + 1));
    if (ready < 0 && errno != EINTR) break;

    if ((fds[0].revents & POLLIN) != 0) {
      std::uint64_t ignored = 0;
      (void)!::read(wake_fd_, &ignored, sizeof ignored);
    }
    if ((fds[1].revents & POLLIN) != 0)
      while (accept_one()) {
      }

    const auto after = clock::now();
    for (std::size_t i = 0; i < polled; ++i) {
      connection& c = *st.connections[i];
      const pollfd& down = fds[2 + 2 * i];
      const pollfd& up = fds[3 + 2 * i];
      bool alive = true;
      if ((down.revents & POLLIN) != 0) alive = alive && pump_in(c.down, c.to_up, after);
      if ((up.revents & POLLIN) != 0) alive = alive && pump_in(c.up, c.to_down, after);
      if ((up.revents & POLLOUT) != 0) alive = alive && pump_out(c.up, c.to_up, after, rate);
      if ((down.revents & POLLOUT) != 0) alive = alive && pump_out(c.down, c.to_down, after, rate);
      if (((down.revents | up.revents) & (POLLERR | POLLNVAL)) != 0) alive = false;
      if ((down.revents & POLLHUP) != 0 && (down.revents & POLLIN) == 0) alive = false;
      if ((up.revents & POLLHUP) != 0 && (up.revents & POLLIN) == 0) alive = false;
      c.dead = !alive;
    }
    // A connection one side has ended or broken ends for the other side too.
    std::erase_if(st.connections, [](const std::unique_ptr<connection>& c) {
      if (!c->dead) return false;
      ::close(c->down);
      ::close(c->up);
      return true;
    });
    open_ = st.connections.size();
    std::lock_guard lock(stats_mu_);
    stats_ = st.local;
  }
}

}  // namespace fabric::testing
