// A TCP proxy that tests put between two peers to break the path on command: cut every
// connection (RST), refuse new ones, stall (a black hole: nothing moves either way, and nothing
// is lost, as when a network partition heals before TCP gives up), delay every byte, or
// throttle to a byte rate. The machines fabric is tested on have no netem qdisc, so delay and
// loss come from here, on loopback or between network namespaces.
//
//   fault_proxy proxy("127.0.0.1", upstream_port);
//   dealer.connect(proxy.endpoint());
//   proxy.stall(true);   // heartbeats stop arriving; each side should declare the other dead
//   proxy.cut();         // every connection reset; ZeroMQ reconnects through the proxy
//
// Connections are forwarded by one thread that owns every file descriptor; the controls are
// safe from any thread and take effect within one loop turn. The destructor closes everything.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace fabric::testing {

class fault_proxy {
 public:
  struct stats {
    std::uint64_t accepted = 0;        ///< connections accepted from the downstream side
    std::uint64_t refused = 0;         ///< of which reset at once (refuse, or upstream down)
    std::uint64_t cut = 0;             ///< connections reset by cut()
    std::uint64_t bytes_upstream = 0;  ///< forwarded from the connecting side to the upstream
    std::uint64_t bytes_downstream = 0;
  };

  /// Listens on `listen_host`, port chosen by the system, and forwards each connection to
  /// upstream_host:upstream_port. Throws std::system_error when it cannot listen.
  fault_proxy(std::string upstream_host, std::uint16_t upstream_port,
              std::string listen_host = "127.0.0.1");
  ~fault_proxy();
  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// "tcp://<listen_host>:<port>", for ZeroMQ's connect.
  std::string endpoint() const;

  /// Resets every open connection now (SO_LINGER 0, so each peer sees ECONNRESET).
  void cut();
  /// While on, each new connection is reset as soon as it is accepted.
  void refuse(bool on);
  /// While on, nothing is read or written on any connection: the peers' kernels buffer what
  /// they send, and all of it moves, in order, once the stall ends.
  void stall(bool on);
  /// Holds every byte this long before forwarding it (applies to bytes read from now on).
  void delay(std::chrono::milliseconds d);
  /// Forwards at most this many bytes per second in each direction; 0 = no limit.
  void throttle(std::size_t bytes_per_second);

  stats counters() const;
  /// Connections open now.
  std::size_t connections() const noexcept { return open_.load(); }

 private:
  struct state;
  void run();
  void wake() noexcept;

  std::string upstream_host_;
  std::uint16_t upstream_port_;
  std::string listen_host_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: controls wake the loop
  std::atomic<bool> stop_{false};
  std::atomic<bool> refuse_{false};
  std::atomic<bool> stall_{false};
  std::atomic<std::uint64_t> cut_requests_{0};
  std::atomic<std::int64_t> delay_ms_{0};
  std::atomic<std::size_t> rate_{0};
  std::atomic<std::size_t> open_{0};
  std::unique_ptr<state> state_;  // owned by the loop thread while it runs
  mutable std::mutex stats_mu_;
  stats stats_;
  std::thread thread_;
};

}  // namespace fabric::testing
