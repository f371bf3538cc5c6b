// The fabric envelope: header encoding and hardened decoding. Grammar in docs/wire-format.md.
#include <fabric/envelope.hpp>

#include <chrono>
#include <climits>
#include <cstring>

namespace fabric {
namespace {

void check_limits(const header& h) {
  if (h.producer.size() > header_limits::max_producer)
    throw error(errc::invalid_argument, "envelope producer id is longer than 255 bytes");
  if (h.stream.size() > header_limits::max_stream)
    throw error(errc::invalid_argument, "envelope stream name is longer than 255 bytes");
  if (h.user.size() > header_limits::max_user_headers)
    throw error(errc::invalid_argument, "envelope has more than 64 user headers");
  for (const auto& [key, value] : h.user) {
    if (key.size() > header_limits::max_user_key || value.size() > header_limits::max_user_value)
      throw error(errc::invalid_argument,
                  "envelope user header '" + key.substr(0, 32) + "' exceeds the size limits");
  }
}

template <class Packer>
void pack_string(Packer& pk, const std::string& s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

bool read_string(const msgpack::object& o, std::size_t max, std::string& out) {
  if (o.type != msgpack::type::STR || o.via.str.size > max) return false;
  out.assign(o.via.str.ptr, o.via.str.size);
  return true;
}

// User header values may be str or bin; both come back as bytes in a std::string.
bool read_bytes(const msgpack::object& o, std::size_t max, std::string& out) {
  if (o.type == msgpack::type::STR) return read_string(o, max, out);
  if (o.type != msgpack::type::BIN || o.via.bin.size > max) return false;
  out.assign(o.via.bin.ptr, o.via.bin.size);
  return true;
}

bool read_uint(const msgpack::object& o, std::uint64_t& out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

}  // namespace

const std::string* header::find(std::string_view key) const noexcept {
  for (const auto& [k, v] : user)
    if (k == key) return &v;
  return nullptr;
}

bool header::expired(std::int64_t now_ns) const noexcept {
  if (ttl_ms == 0) return false;
  // Saturate instead of overflowing for absurd TTLs.
  constexpr std::uint64_t max_ttl_ms = std::uint64_t{INT64_MAX} / 1'000'000;
  const std::int64_t ttl_ns =
      ttl_ms >= max_ttl_ms ? INT64_MAX : static_cast<std::int64_t>(ttl_ms) * 1'000'000;
  if (timestamp_ns > INT64_MAX - ttl_ns) return false;
  return now_ns > timestamp_ns + ttl_ns;
}

std::int64_t unix_now_ns() noexcept {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

frame encode_header(const header& h) {
  check_limits(h);
  msgpack::sbuffer buffer(128 + h.producer.size() + h.stream.size());
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  std::uint32_t entries = 4;  // id, producer, seq, ts are always present
  if (!h.stream.empty()) ++entries;
  if (h.ttl_ms != 0) ++entries;
  if (!h.user.empty()) ++entries;
  pk.pack_map(entries);
  pk.pack_uint8(header_key::id);
  pk.pack_bin(static_cast<std::uint32_t>(h.id.bytes.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(h.id.bytes.data()),
                   static_cast<std::uint32_t>(h.id.bytes.size()));
  pk.pack_uint8(header_key::producer);
  pack_string(pk, h.producer);
  if (!h.stream.empty()) {
    pk.pack_uint8(header_key::stream);
    pack_string(pk, h.stream);
  }
  pk.pack_uint8(header_key::seq);
  pk.pack_uint64(h.seq);
  pk.pack_uint8(header_key::ts);
  pk.pack_int64(h.timestamp_ns);
  if (h.ttl_ms != 0) {
    pk.pack_uint8(header_key::ttl);
    pk.pack_uint64(h.ttl_ms);
  }
  if (!h.user.empty()) {
    pk.pack_uint8(header_key::user);
    pk.pack_map(static_cast<std::uint32_t>(h.user.size()));
    for (const auto& [key, value] : h.user) {
      pack_string(pk, key);
      pk.pack_bin(static_cast<std::uint32_t>(value.size()));
      pk.pack_bin_body(value.data(), static_cast<std::uint32_t>(value.size()));
    }
  }
  const std::size_t size = buffer.size();
  char* data = buffer.release();
  return frame(data, size, [](void* p, void*) { std::free(p); }, nullptr);
}

result<header> decode_header(const frame& f) noexcept {
  if (f.size() > header_limits::max_header_bytes) return errc::too_large;
  decode_limits limits;
  limits.max_elements = header_limits::max_header_elements;
  auto handle = decode_msgpack(bytes(f), limits);
  if (!handle) return handle.error();
  const msgpack::object& root = handle->get();
  if (root.type != msgpack::type::MAP) return errc::malformed;

  header h;
  unsigned seen = 0;  // bit per known key, to reject duplicates and find missing ones
  try {
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
      const msgpack::object& k = root.via.map.ptr[i].key;
      const msgpack::object& v = root.via.map.ptr[i].val;
      if (k.type != msgpack::type::POSITIVE_INTEGER || k.via.u64 > 255) return errc::malformed;
      const auto key = static_cast<unsigned>(k.via.u64);
      if (key <= header_key::user) {
        if (seen & (1u << key)) return errc::malformed;  // duplicate key
        seen |= 1u << key;
      }
      bool ok = true;
      switch (key) {
        case header_key::id:
          ok = v.type == msgpack::type::BIN && v.via.bin.size == h.id.bytes.size();
          if (ok) std::memcpy(h.id.bytes.data(), v.via.bin.ptr, h.id.bytes.size());
          break;
        case header_key::producer:
          ok = read_string(v, header_limits::max_producer, h.producer);
          break;
        case header_key::stream:
          ok = read_string(v, header_limits::max_stream, h.stream);
          break;
        case header_key::seq:
          ok = read_uint(v, h.seq);
          break;
        case header_key::ts:
          if (v.type == msgpack::type::POSITIVE_INTEGER) {
            ok = v.via.u64 <= static_cast<std::uint64_t>(INT64_MAX);
            h.timestamp_ns = static_cast<std::int64_t>(v.via.u64);
          } else {
            ok = v.type == msgpack::type::NEGATIVE_INTEGER;
            h.timestamp_ns = v.via.i64;
          }
          break;
        case header_key::ttl:
          ok = read_uint(v, h.ttl_ms);
          break;
        case header_key::user: {
          if (v.type != msgpack::type::MAP) return errc::malformed;
          if (v.via.map.size > header_limits::max_user_headers) return errc::too_large;
          h.user.reserve(v.via.map.size);
          for (std::uint32_t j = 0; j < v.via.map.size; ++j) {
            std::string hk, hv;
            if (!read_string(v.via.map.ptr[j].key, header_limits::max_user_key, hk) ||
                !read_bytes(v.via.map.ptr[j].val, header_limits::max_user_value, hv))
              return errc::malformed;
            h.user.emplace_back(std::move(hk), std::move(hv));
          }
          break;
        }
        default:
          break;  // a field from a newer producer: skip it
      }
      if (!ok) return errc::malformed;
    }
  } catch (...) {
    return errc::too_large;  // allocation failure while copying strings
  }
  constexpr unsigned required = (1u << header_key::id) | (1u << header_key::producer) |
                                (1u << header_key::seq) | (1u << header_key::ts);
  if ((seen & required) != required) return errc::malformed;
  return h;
}

message make_envelope(const header& h, message&& body) {
  message m;
  m.reserve(2 + body.size());
  m.push_back(envelope_tag);
  m.push_back(encode_header(h));
  for (frame& f : body) m.push_back(std::move(f));
  body.clear();
  return m;
}

bool is_envelope(const message& m) noexcept {
  return !m.empty() && m.view(0) == envelope_tag;
}

result<envelope> decode_envelope(message&& m) noexcept {
  if (m.size() < 2 || !is_envelope(m)) return errc::malformed;
  auto h = decode_header(m[1]);
  if (!h) return h.error();
  try {
    envelope e{std::move(*h), message()};
    auto& frames = m.frames();
    e.body.reserve(frames.size() - 2);
    for (std::size_t i = 2; i < frames.size(); ++i) e.body.push_back(std::move(frames[i]));
    m.clear();
    return e;
  } catch (...) {
    return errc::too_large;
  }
}

}  // namespace fabric
