// The log hook: how fabric's long-running components (the Majordomo broker today; every later
// daemon-grade service) hand their log lines to the application. fabric never writes to stderr
// on its own; it calls the function you give it, and only for lines at or above the level you set.
//
// Thread safety: a log_fn is called on the component's own thread (a broker calls it on the
// broker's thread), so one shared by several components must be safe to call concurrently.
#pragma once

#include <functional>
#include <string_view>

namespace fabric {

/// Severity of a log line, least severe first; `off` as a minimum level silences a component.
enum class log_level { debug, info, warning, error, off };

/// Receives one log line (no trailing newline) and its severity. Keep it short: it runs on the
/// component's own thread, in the middle of its work. It should not throw; an exception that
/// escapes it is the component's failure.
using log_fn = std::function<void(log_level, std::string_view)>;

}  // namespace fabric
