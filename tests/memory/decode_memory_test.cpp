// Tests that decoding hostile msgpack takes memory in proportion to the input, never more.
//
// This executable counts every byte the process asks malloc for (it defines malloc and friends
// itself, which the dynamic linker prefers to libc's for every library in the process), so a
// test can assert how much a decode allocated. It holds nothing else: the counting would slow
// other tests down and they do not need it.
#include <fabric/codec.hpp>
#include <fabric/envelope.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<std::uint64_t> requested{0};
void count(std::size_t n) { requested.fetch_add(n, std::memory_order_relaxed); }
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  count(n);
  return __libc_malloc(n);
}
void* calloc(std::size_t k, std::size_t n) {
  count(k * n);
  return __libc_calloc(k, n);
}
void* realloc(void* p, std::size_t n) {
  count(n);
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  count(n);
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  count(n);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
  count(n);
  void* p = __libc_memalign(a, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

namespace fabric {
namespace {

// Bytes requested from malloc while `f` runs.
template <class F>
std::uint64_t allocated_by(F&& f) {
  const std::uint64_t before = requested.load();
  f();
  return requested.load() - before;
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>(v >> shift));
}

// `levels` array32 headers nested in each other, each claiming `claim` elements, the innermost
// followed by nils up to `size` bytes: every header's claim fits in the input on its own, but
// the input cannot hold them all, so it ends early.
std::string nested_claims(std::size_t levels, std::uint32_t claim, std::size_t size) {
  std::string s;
  for (std::size_t i = 0; i < levels; ++i) {
    s.push_back('\xdd');
    put_u32(s, claim);
  }
  s.resize(size, '\xc0');
  return s;
}

// The same shape with maps: each map32 claims `claim` entries, its first key a nil and its
// first value the next map.
std::string nested_map_claims(std::size_t levels, std::uint32_t claim, std::size_t size) {
  std::string s;
  for (std::size_t i = 0; i < levels; ++i) {
    s.push_back('\xdf');
    put_u32(s, claim);
    s.push_back('\xc0');
  }
  s.resize(size, '\xc0');
  return s;
}

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;

TEST(DecodeMemoryTest, NestedArrayClaimsAreRejectedWithoutAllocatingThem) {
  const std::size_t size = 3 * mib;
  const std::string input = nested_claims(32, static_cast<std::uint32_t>(size - 200), size);
  std::error_code ec;
  const std::uint64_t bytes = allocated_by([&] { ec = decode_msgpack(input).error(); });
  EXPECT_EQ(ec, errc::too_large);
  EXPECT_LT(bytes, 64 * kib) << "a " << size << "-byte input claiming 32 x its size";
}

TEST(DecodeMemoryTest, NestedMapClaimsAreRejectedWithoutAllocatingThem) {
  const std::size_t size = 3 * mib;
  const std::string input = nested_map_claims(32, static_cast<std::uint32_t>(size / 4), size);
  std::error_code ec;
  const std::uint64_t bytes = allocated_by([&] { ec = decode_msgpack(input).error(); });
  EXPECT_EQ(ec, errc::too_large);
  EXPECT_LT(bytes, 64 * kib);
}

TEST(DecodeMemoryTest, ATruncatedClaimThatFitsTheBudgetAllocatesNothingForIt) {
  // One array claiming every byte but its own header, one element short.
  const std::size_t size = 1 * mib;
  std::string input = nested_claims(1, static_cast<std::uint32_t>(size - 5), size - 1);
  std::error_code ec;
  const std::uint64_t bytes = allocated_by([&] { ec = decode_msgpack(input).error(); });
  EXPECT_EQ(ec, errc::malformed);
  EXPECT_LT(bytes, 64 * kib);
}

TEST(DecodeMemoryTest, ValidInputTakesMemoryInProportionToItsSize) {
  // The most element-dense valid input: one array of a million nils.
  const std::size_t size = 1 * mib;
  const std::string input = nested_claims(1, static_cast<std::uint32_t>(size - 5), size);
  bool ok = false;
  const std::uint64_t bytes = allocated_by([&] { ok = decode_msgpack(input).has_value(); });
  EXPECT_TRUE(ok);
  EXPECT_LT(bytes, 40 * size) << "msgpack-c takes 24 bytes per element; the bound leaves room";
}

TEST(DecodeMemoryTest, ACallersElementBudgetBoundsValidInputToo) {
  const std::string input = nested_claims(1, 1000, 5 + 1000);
  decode_limits limits;
  limits.max_elements = 999;
  EXPECT_EQ(decode_msgpack(input, limits).error(), errc::too_large);
  limits.max_elements = 1000;
  EXPECT_TRUE(decode_msgpack(input, limits));
}

TEST(DecodeMemoryTest, HostileHeaderFrameIsRejectedWithoutAllocating) {
  // A header map whose user-header value is the nested claims above.
  const std::size_t size = 3 * mib;
  std::string input = "\x81\x06";
  input += nested_claims(30, static_cast<std::uint32_t>(size - 200), size - 2);
  const frame f(input.data(), input.size());
  std::error_code ec;
  const std::uint64_t bytes = allocated_by([&] { ec = decode_header(f).error(); });
  EXPECT_EQ(ec, errc::too_large);
  EXPECT_LT(bytes, 64 * kib);
}

TEST(DecodeMemoryTest, HeaderFrameOverTheSizeCapIsRefusedBeforeDecoding) {
  // Valid msgpack (one huge binary), but no header needs that many bytes.
  const std::size_t size = header_limits::max_header_bytes + 1;
  std::string input = "\xc6";
  put_u32(input, static_cast<std::uint32_t>(size - 5));
  input.resize(size, 'x');
  const frame f(input.data(), input.size());
  std::error_code ec;
  const std::uint64_t bytes = allocated_by([&] { ec = decode_header(f).error(); });
  EXPECT_EQ(ec, errc::too_large);
  EXPECT_LT(bytes, 4 * kib);
}

TEST(DecodeMemoryTest, LargestLegalHeaderStillDecodes) {
  header h;
  h.producer = std::string(header_limits::max_producer, 'p');
  h.stream = std::string(header_limits::max_stream, 's');
  h.ttl_ms = 1;
  for (std::size_t i = 0; i < header_limits::max_user_headers; ++i)
    h.user.emplace_back(std::string(header_limits::max_user_key - 3, 'k') + std::to_string(100 + i),
                        std::string(header_limits::max_user_value, 'v'));
  const frame f = encode_header(h);
  EXPECT_LE(f.size(), header_limits::max_header_bytes);
  auto decoded = decode_header(f);
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(decoded->user.size(), header_limits::max_user_headers);
}

}  // namespace
}  // namespace fabric
