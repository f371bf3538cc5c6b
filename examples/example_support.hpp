// The plumbing every fabric example shares (bounded waits, where to listen, the command line), kept
// apart so each example's own file shows only its pattern. Not part of fabric's API.
#pragma once

#include <fabric_support/endpoint.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace fabric_examples {

// Every wait is bounded by this, so a broken run fails instead of hanging.
inline constexpr std::chrono::seconds patience{5};

// Failures throw, so the example unwinds (closing its sockets) to the one place that reports them.
[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

inline void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

// The transports by name (parse_transport, to_string) and self-removing temporary directories
// come from fabric's internal support library, shared with the tests and benchmarks.
using fabric::support::parse_transport;
using fabric::support::transport;

inline const char* name_of(transport t) { return fabric::support::to_string(t).data(); }

// Where an example listens over one transport: inproc names, socket files in a private temporary
// directory (removed with the object), or loopback tcp on ports the OS picks. `example` keeps the
// inproc names and the directory apart from other programs'.
class endpoints {
 public:
  endpoints(std::string_view example, transport kind) : example_(example), kind_(kind) {
    if (kind_ == transport::ipc)
      dir_ = std::make_unique<fabric::support::temp_dir>("fabric-" + example_ + "-");
  }

  transport kind() const { return kind_; }

  // The address to bind service `name` to; bind() returns the resolved one to connect to.
  std::string bind_address(std::string_view name) const {
    switch (kind_) {
      case transport::inproc: return "inproc://" + example_ + "." + std::string(name);
      case transport::ipc: return "ipc://" + (dir_->path() / (std::string(name) + ".sock")).string();
      case transport::tcp: break;
    }
    return "tcp://127.0.0.1:*";
  }

 private:
  std::string example_;
  transport kind_;
  std::unique_ptr<fabric::support::temp_dir> dir_;  // ipc only
};

// An option taking a whole number within [min, max], such as --workers N.
struct count_option {
  std::string_view flag;  // empty: the example has no such option
  std::size_t* value = nullptr;
  std::size_t min = 0;
  std::size_t max = 0;
};

// What an example's command line accepts besides --help (or -h), which prints its usage.
struct command_line {
  const char* program = "";  // how the program names itself in what it prints
  void (*print_usage)(std::FILE*) = nullptr;
  transport* kind = nullptr;  // set by --transport; null: the example has no such option
  count_option count = {};
};

// Returns the exit status when the program must stop here: 0 after --help, 2 after an argument it
// does not accept (reported with the usage on stderr).
inline std::optional<int> parse_command_line(const command_line& cl, int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      cl.print_usage(stdout);
      return EXIT_SUCCESS;
    }
    // A known option with a bad value is reported by its value, the argument at fault.
    if (cl.kind != nullptr && args[i] == "--transport" && i + 1 < args.size()) {
      if (auto t = parse_transport(args[++i])) {
        *cl.kind = *t;
        continue;
      }
    } else if (!cl.count.flag.empty() && args[i] == cl.count.flag && i + 1 < args.size()) {
      const std::string_view text = args[++i];
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (ec == std::errc() && end == text.data() + text.size() && n >= cl.count.min &&
          n <= cl.count.max) {
        *cl.count.value = n;
        continue;
      }
    }
    std::fprintf(stderr, "%s: bad argument '%s'\n", cl.program, std::string(args[i]).c_str());
    cl.print_usage(stderr);
    return 2;
  }
  return std::nullopt;
}

// The whole of an example's main(): parses the command line, then runs `body`, reporting an
// exception that escapes it as "<program>: FAILED: ..." with exit status 1. A body returning
// nothing has succeeded if it returns, and says "<program>: OK"; one returning an int (the tour)
// decides its own exit status.
template <class Body>
int run_example(const command_line& cl, int argc, char** argv, Body body) {
  if (auto status = parse_command_line(cl, argc, argv)) return *status;
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<Body&>>) {
      body();
      std::printf("%s: OK\n", cl.program);
      return EXIT_SUCCESS;
    } else {
      return body();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: FAILED: %s\n", cl.program, e.what());
    return EXIT_FAILURE;
  }
}

}  // namespace fabric_examples
