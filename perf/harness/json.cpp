// The JSON writer: {"machine": {...}, "runs": [...]}, one run per line, fields in their order.
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "harness/format.hpp"
#include "harness/output.hpp"

namespace fabric::perf {

namespace format {

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::array<char, 32> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  const auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto continuation = [&](std::size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            std::array<char, 8> hex{};
            std::snprintf(hex.data(), hex.size(), "\\u%04x", static_cast<unsigned>(c));
            out += hex.data();
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence passes through; anything else (stray continuation bytes,
    // overlong forms, surrogates) would make the whole document invalid, so it becomes U+FFFD.
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = continuation(i + 1, 0x80, 0xBF) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned hi = c == 0xED ? 0x9F : 0xBF;
      len = continuation(i + 1, lo, hi) && continuation(i + 2, 0x80, 0xBF) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
      len = continuation(i + 1, lo, hi) && continuation(i + 2, 0x80, 0xBF) &&
                    continuation(i + 3, 0x80, 0xBF)
                ? 4
                : 0;
    }
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out += '"';
  return out;
}

}  // namespace format

namespace {

std::string json_value(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return format::json_string(*s);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return format::json_number(std::get<double>(v));
}

void json_object(const std::vector<std::pair<std::string, value>>& fields, std::ostream& out) {
  out << '{';
  bool first = true;
  for (const auto& [k, v] : fields) {
    if (!first) out << ", ";
    first = false;
    out << format::json_string(k) << ": " << json_value(v);
  }
  out << '}';
}

}  // namespace

void write_json(const report& r, std::ostream& out) {
  out << "{\"machine\": ";
  json_object(r.machine, out);
  out << ",\n \"runs\": [";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    out << (i == 0 ? "\n  " : ",\n  ");
    json_object(r.runs[i].fields, out);
  }
  out << (r.runs.empty() ? "]}\n" : "\n ]}\n");
}

}  // namespace fabric::perf
