// Checks on generated HTML shared by the perf writer tests: tag balance, counting, and whether
// a page would fetch anything.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::perf::html_checks {

inline std::size_t occurrences(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Checks that every element opened is closed in order, as XML would require; HTML void elements
// and self-closed tags need no end tag. Returns the first problem, or "".
inline std::string unbalanced_tag(const std::string& html) {
  static const std::vector<std::string> voids = {"meta", "br", "hr", "img", "link", "input"};
  std::vector<std::string> open;
  std::size_t i = 0;
  while ((i = html.find('<', i)) != std::string::npos) {
    const std::size_t end = html.find('>', i);
    if (end == std::string::npos) return "unterminated tag";
    const std::string tag = html.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.starts_with('!')) continue;  // doctype
    if (tag.starts_with('/')) {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "unexpected </" + name + ">";
      open.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (tag.ends_with('/')) continue;
    if (std::find(voids.begin(), voids.end(), name) != voids.end()) continue;
    open.push_back(name);
    if (name == "style") {  // raw text up to its end tag
      i = html.find("</style>", i);
      if (i == std::string::npos) return "unterminated style";
    }
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  return {};
}

// The first thing in `html` that would make a browser fetch or run something, or "": a script,
// a stylesheet or image link, any URL with a scheme, a CSS url() or @import. Links within the
// page (href="#...") are fine.
inline std::string external_reference(const std::string& html) {
  for (const char* bad : {"<script", "<link", "<img", "<iframe", "<object", "<embed", "src=",
                          "url(", "@import", "http:", "https:", "file:", "data:", "//"}) {
    if (html.find(bad) != std::string::npos) return bad;
  }
  for (auto at = html.find("href=\""); at != std::string::npos; at = html.find("href=\"", at + 1)) {
    if (html.compare(at + 6, 1, "#") != 0) return html.substr(at, 40);
  }
  return {};
}

}  // namespace fabric::perf::html_checks
