// CRC-32C for fabric's executables: the library's one implementation (src/core/crc32c.hpp), made
// reachable without putting src/ on an executable's include path. Header-only; nothing to link,
// so a baseline that must not call into libfabric can still checksum exactly as the journal does.
#pragma once

#include "../../../core/crc32c.hpp"

namespace fabric::support {

using fabric::detail::crc32c;

}  // namespace fabric::support
