#include "support/netns.hpp"

#include "support/process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace fabric::testing {

namespace {

constexpr std::string_view prefix = "fabric-test-";

std::string ip_program() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

// Runs `ip <args...>`; returns its exit code and, on failure, what it printed.
std::pair<int, std::string> ip(const std::vector<std::string>& args) {
  std::vector<std::string> words{ip_program()};
  words.insert(words.end(), args.begin(), args.end());
  child_process p(words);
  const int rc = p.finish(std::chrono::seconds(10));
  return {rc, p.err + p.out};
}

void must(const std::vector<std::string>& args) {
  auto [rc, text] = ip(args);
  if (rc != 0) {
    std::string cmd = "ip";
    for (const auto& a : args) cmd += " " + a;
    throw std::runtime_error("netns_pair: '" + cmd + "' failed (" + std::to_string(rc) + "): " + text);
  }
}

// Namespaces named by this helper carry the pid that made them: those of processes that no
// longer exist were left by a test that was killed, and are deleted.
void sweep() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const pid_t pid = static_cast<pid_t>(std::strtol(rest.c_str(), nullptr, 10));
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) (void)ip({"netns", "del", name});
  }
}

std::atomic<unsigned> pairs_made{0};

}  // namespace

std::optional<std::string> netns_pair::unavailable() {
  if (::geteuid() != 0) return "network namespaces need root";
  if (ip_program().empty()) return "iproute2 ('ip') is not installed";
  const std::string probe = std::string(prefix) + std::to_string(::getpid()) + "-probe";
  if (auto [rc, text] = ip({"netns", "add", probe}); rc != 0) return "cannot create a network namespace: " + text;
  (void)ip({"netns", "del", probe});
  return std::nullopt;
}

netns_pair::netns_pair() {
  sweep();
  const unsigned n = pairs_made.fetch_add(1);
  const std::string base = std::string(prefix) + std::to_string(::getpid()) + "-" + std::to_string(n);
  a_ = base + "-a";
  b_ = base + "-b";
  // One /30 per pair, spread over 198.18.0.0/16 by pid and count so that concurrent test
  // processes do not share addresses (they are in separate namespaces anyway).
  const unsigned slot = (static_cast<unsigned>(::getpid()) * 7U + n) % (256U * 64U);
  const std::string net = "198.18." + std::to_string(slot / 64) + ".";
  addr_a_ = net + std::to_string((slot % 64) * 4 + 1);
  addr_b_ = net + std::to_string((slot % 64) * 4 + 2);
  // Interface names are at most 15 characters.
  const std::string veth_a = "fv" + std::to_string(::getpid() % 100000) + "x" + std::to_string(n % 100) + "a";
  const std::string veth_b = veth_a.substr(0, veth_a.size() - 1) + "b";
  try {
    must({"netns", "add", a_});
    must({"netns", "add", b_});
    must({"link", "add", veth_a, "netns", a_, "type", "veth", "peer", "name", veth_b, "netns", b_});
    must({"-n", a_, "addr", "add", addr_a_ + "/30", "dev", veth_a});
    must({"-n", b_, "addr", "add", addr_b_ + "/30", "dev", veth_b});
    for (const auto& [ns, dev] : {std::pair{a_, veth_a}, std::pair{b_, veth_b}}) {
      must({"-n", ns, "link", "set", "lo", "up"});
      must({"-n", ns, "link", "set", dev, "up"});
    }
  } catch (...) {
    (void)ip({"netns", "del", a_});
    (void)ip({"netns", "del", b_});
    throw;
  }
}

netns_pair::~netns_pair() {
  (void)ip({"netns", "del", a_});
  (void)ip({"netns", "del", b_});
}

void netns_pair::enter(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("netns_pair: cannot open " + path);
  const int rc = ::setns(fd, CLONE_NEWNET);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("netns_pair: setns into " + name + " failed");
}

}  // namespace fabric::testing
