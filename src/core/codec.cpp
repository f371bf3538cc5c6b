// Bounded msgpack decoding. See codec.hpp for the rules.
#include <fabric/codec.hpp>

#include <algorithm>
#include <new>

namespace fabric {
namespace {

// The first pass: walks the input without building objects, and stops at the first container
// that would take the parse over its element budget or depth. msgpack-c's object builder
// allocates a container's elements when it meets the container's header, before it knows whether
// the input holds them; nested headers that each claim the whole input would otherwise multiply.
class budget_walker : public msgpack::null_visitor {
 public:
  budget_walker(std::size_t elements, std::size_t depth) : elements_(elements), max_depth_(depth) {}

  bool start_array(std::uint32_t n) { return open(n); }
  bool end_array() { return close(); }
  bool start_map(std::uint32_t n) { return open(std::uint64_t{n} * 2); }
  bool end_map() { return close(); }
  void parse_error(std::size_t, std::size_t) { malformed_ = true; }
  void insufficient_bytes(std::size_t, std::size_t) { malformed_ = true; }

  bool over_budget() const noexcept { return over_budget_; }

 private:
  bool open(std::uint64_t claimed) {
    if (depth_ == max_depth_ || claimed > elements_) {
      over_budget_ = true;
      return false;
    }
    elements_ -= claimed;
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  std::size_t elements_;
  std::size_t max_depth_;
  std::size_t depth_ = 0;
  bool over_budget_ = false;
  bool malformed_ = false;
};

}  // namespace

result<msgpack::object_handle> decode_msgpack(std::span<const std::byte> data,
                                              const decode_limits& bounds) noexcept {
  if (data.empty()) return errc::malformed;
  const std::size_t n = data.size();
  const char* bytes = reinterpret_cast<const char*>(data.data());
  try {
    // Every element takes at least one byte of the input, so a valid input of n bytes claims at
    // most n elements in all.
    budget_walker walker(std::min(n, bounds.max_elements),
                         std::min(bounds.max_depth, max_decode_depth));
    std::size_t offset = 0;
    if (!msgpack::parse(bytes, n, offset, walker))
      return walker.over_budget() ? errc::too_large : errc::malformed;
    if (offset != n) return errc::malformed;  // trailing bytes

    // The same limits again for the builder, as a second line: the walk has already proved the
    // input complete and within them.
    const msgpack::unpack_limit limits(/*array=*/n, /*map=*/n / 2, /*str=*/n, /*bin=*/n,
                                       /*ext=*/n, /*depth=*/max_decode_depth);
    // Returning true references strings/binaries in place instead of copying them.
    auto reference_all = [](msgpack::type::object_type, std::size_t, void*) { return true; };
    offset = 0;
    msgpack::object_handle handle =
        msgpack::unpack(bytes, n, offset, reference_all, nullptr, limits);
    if (offset != n) return errc::malformed;
    return handle;
  } catch (const msgpack::size_overflow&) {
    return errc::too_large;
  } catch (const std::bad_alloc&) {
    return errc::too_large;
  } catch (...) {
    return errc::malformed;  // insufficient bytes, parse error, ...
  }
}

}  // namespace fabric
