// The JSON writer and reader: {"machine": {...}, "runs": [...]}, one run per line, fields in
// their order. nlohmann-json (through fabric_support) does the escaping and the numbers; it
// stays inside this file.
#include <fabric_support/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "harness/output.hpp"

namespace fabric::perf {

namespace {

// Keeps the fields in the order the benchmarks set them.
using support::json;

json to_json(const std::vector<std::pair<std::string, value>>& fields) {
  json object = json::object();
  for (const auto& [k, v] : fields) {
    // NaN and infinities have no JSON form; nlohmann writes them as null.
    std::visit([&object, &k](const auto& x) { object[k] = x; }, v);
  }
  return object;
}

// Invalid UTF-8 in a host name or CPU model must not make the whole file unreadable.
std::string dump(const json& j) { return support::to_text(j); }

value from_json(const json& j, const std::string& where) {
  switch (j.type()) {
    case json::value_t::string: return j.get<std::string>();
    case json::value_t::number_integer: return j.get<std::int64_t>();
    case json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        return static_cast<std::int64_t>(u);
      return static_cast<double>(u);
    }
    case json::value_t::number_float: return j.get<double>();
    case json::value_t::null: return std::numeric_limits<double>::quiet_NaN();  // written for NaN
    default:
      throw std::runtime_error(where + " is " + j.type_name() +
                               "; a report holds only strings, numbers and null there");
  }
}

std::vector<std::pair<std::string, value>> fields_of(const json& object, const std::string& where) {
  if (!object.is_object()) {
    throw std::runtime_error(where + " is " + std::string(object.type_name()) + ", not an object");
  }
  std::vector<std::pair<std::string, value>> fields;
  for (const auto& [k, v] : object.items()) {
    fields.emplace_back(k, from_json(v, where + " \"" + k + "\""));
  }
  return fields;
}

}  // namespace

void write_json(const report& r, std::ostream& out) {
  out << "{\"machine\": " << dump(to_json(r.machine)) << ",\n \"runs\": [";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    out << (i == 0 ? "\n  " : ",\n  ") << dump(to_json(r.runs[i].fields));
  }
  out << (r.runs.empty() ? "]}\n" : "\n ]}\n");
}

report read_json(std::string_view text) {
  // A report's values sit three levels deep (document, runs, run); one level more is let
  // through so that a field holding an array gets a precise error below. Anything deeper is
  // refused while parsing, never built in memory.
  const json::parser_callback_t shallow = [](int depth, json::parse_event_t, json&) {
    if (depth > 4) throw std::runtime_error("nested deeper than a report's runs");
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), shallow);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(std::string("not JSON: ") + e.what());
  }
  if (!doc.is_object()) throw std::runtime_error("not a report: the document is not an object");
  report r;
  if (const auto m = doc.find("machine"); m != doc.end()) r.machine = fields_of(*m, "\"machine\"");
  const auto runs = doc.find("runs");
  if (runs == doc.end() || !runs->is_array()) {
    throw std::runtime_error("not a report: no \"runs\" array");
  }
  std::size_t i = 0;
  for (const json& item : runs->get_ref<const json::array_t&>()) {
    run one;
    one.fields = fields_of(item, "run " + std::to_string(i++));
    r.runs.push_back(std::move(one));
  }
  return r;
}

}  // namespace fabric::perf
