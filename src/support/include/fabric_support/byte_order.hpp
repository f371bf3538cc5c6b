// Fixed-width integers to and from bytes, for fabric's executables: the library's one
// implementation (src/core/byte_order.hpp), made reachable without putting src/ on an
// executable's include path. Header-only; nothing to link.
#pragma once

#include "../../../core/byte_order.hpp"

namespace fabric::support {

using fabric::detail::append_be;
using fabric::detail::append_le;
using fabric::detail::load_be;
using fabric::detail::load_le;
using fabric::detail::store_be;
using fabric::detail::store_le;

}  // namespace fabric::support
