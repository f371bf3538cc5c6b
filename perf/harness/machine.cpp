// Facts about the machine a report was measured on: CPU, memory, kernel, library versions, build.
#include <sys/utsname.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <fabric/version.hpp>
#include <fstream>
#include <thread>

#include "harness/format.hpp"
#include "harness/output.hpp"

#ifndef FABRIC_PERF_BUILD_TYPE
#define FABRIC_PERF_BUILD_TYPE ""
#endif

namespace fabric::perf {

namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

// The first "key : value" line of a /proc file whose key is `key`.
std::string proc_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (trim(std::string_view(line).substr(0, colon)) == key) {
      return trim(std::string_view(line).substr(colon + 1));
    }
  }
  return {};
}

std::string cpu_model() {
  // x86 says "model name"; ARM kernels name the part under other keys, or not at all.
  for (const char* key : {"model name", "Hardware", "Processor", "cpu model", "uarch"}) {
    std::string v = proc_field("/proc/cpuinfo", key);
    if (!v.empty()) return v;
  }
  return "unknown";
}

std::int64_t memory_total_mib() {
  const std::string kib = proc_field("/proc/meminfo", "MemTotal");  // "16318464 kB"
  std::int64_t n = 0;
  std::from_chars(kib.data(), kib.data() + kib.size(), n);
  return n / 1024;
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown";
#endif
}

std::string default_build_type() {
  const std::string configured = FABRIC_PERF_BUILD_TYPE;
  if (!configured.empty()) return configured;
#ifdef NDEBUG
  return "optimised (NDEBUG)";
#else
  return "debug (assertions on)";
#endif
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

}  // namespace

std::vector<std::pair<std::string, value>> machine_info(std::string_view build_type) {
  utsname u{};
  const bool have_uname = uname(&u) == 0;
  int major = 0;
  int minor = 0;
  int patch = 0;
  zmq_version(&major, &minor, &patch);

  std::vector<std::pair<std::string, value>> facts;
  facts.emplace_back("hostname", have_uname ? std::string(u.nodename) : std::string("unknown"));
  facts.emplace_back("cpu_model", cpu_model());
  facts.emplace_back("logical_cores",
                     static_cast<std::int64_t>(std::thread::hardware_concurrency()));
  facts.emplace_back("memory_total_mib", memory_total_mib());
  facts.emplace_back("kernel", have_uname
                                   ? std::string(u.sysname) + ' ' + u.release + ' ' + u.machine
                                   : std::string("unknown"));
  facts.emplace_back("libzmq_version", std::to_string(major) + '.' + std::to_string(minor) + '.' +
                                           std::to_string(patch));
  facts.emplace_back("fabric_version", std::string(fabric::version_string));
  facts.emplace_back("compiler", compiler());
  facts.emplace_back("build_type",
                     build_type.empty() ? default_build_type() : std::string(build_type));
  facts.emplace_back("timestamp", utc_timestamp());
  return facts;
}

void print_machine(const report& r, std::ostream& out) {
  std::size_t width = 0;
  for (const auto& [k, v] : r.machine) width = std::max(width, k.size());
  for (const auto& [k, v] : r.machine) {
    out << k << ':' << std::string(width - k.size() + 1, ' ') << format::readable(v) << '\n';
  }
}

}  // namespace fabric::perf
