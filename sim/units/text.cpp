#include "dlcarbon/text.hpp"

#include <cctype>
#include <cstdint>
#include <algorithm>
#include <chrono>
#include <cstdio>

namespace dlcarbon::text {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts(1);
  for (const char c : s) {
    if (c == sep) parts.emplace_back();
    else parts.back() += c;
  }
  return parts;
}

// Since session 38: a sweep's unit with a '"' in it ended the scalar early, and the rest was lost.
std::string yaml_quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool parse_utc_time(const std::string& s, long long& out) {
  // Digits where the pattern has them (since session 38: sscanf's fields took signs and spaces,
  // "2023-+1-01" and "2023- 1-01" read as January).
  static const std::string pattern = "dddd-dd-dd dd:dd:dd";
  if (s.size() != 10 && s.size() != 19) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(s[i])) != 0;
    if (pattern[i] == 'd' ? !digit : s[i] != pattern[i]) return false;
  }
  int y = 0;
  unsigned mo = 0, d = 0, h = 0, mi = 0, se = 0;
  char extra = 0;
  const bool date_only = s.size() == 10 && std::sscanf(s.c_str(), "%4d-%2u-%2u%c", &y, &mo, &d, &extra) == 3;
  const bool date_time =
      s.size() == 19 && std::sscanf(s.c_str(), "%4d-%2u-%2u %2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &se, &extra) == 6;
  if (!date_only && !date_time) return false;
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{mo}, std::chrono::day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return false;
  out = std::chrono::sys_days{ymd}.time_since_epoch().count() * 86400LL + h * 3600LL + mi * 60LL + se;
  return true;
}

namespace {
// Code points that print as nothing or move the text around: C1 controls, no-break and other
// spaces than U+0020, zero-width characters, bidirectional controls, the byte order mark. A
// message shows them as \u{XXXX} (since session 43, a review: "10 days" with a no-break space was
// said to have the unknown unit " days", and a right-to-left override reordered the message).
bool invisible(std::uint32_t c) {
  return (c >= 0x80 && c <= 0xA0) || c == 0xAD || c == 0x34F || c == 0x61C || c == 0x115F || c == 0x1160 ||
         c == 0x17B4 || c == 0x17B5 || (c >= 0x180B && c <= 0x180E) || (c >= 0x2000 && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0x3164 ||
         (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF || c == 0xFFA0 || (c >= 0xFFF0 && c <= 0xFFFB) ||
         (c >= 0xE0000 && c <= 0xE0FFF);
}

// One character (a code point of well-formed UTF-8, else one byte) from s[i] as a message shows
// it: a control character as \xNN, an invisible code point as \u{XXXX}. Returns the next index.
std::size_t append_printable(std::string& out, std::string_view s, std::size_t i) {
  const auto u = static_cast<unsigned char>(s[i]);
  char buf[16];
  if (u < 0x20 || u == 0x7f) {
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    out += buf;
    return i + 1;
  }
  if (u < 0x80) {
    out += s[i];
    return i + 1;
  }
  const int extra = (u & 0xE0) == 0xC0 ? 1 : (u & 0xF0) == 0xE0 ? 2 : (u & 0xF8) == 0xF0 ? 3 : 0;
  std::uint32_t c = extra == 1 ? (u & 0x1Fu) : extra == 2 ? (u & 0x0Fu) : (u & 0x07u);
  bool ok = extra > 0 && i + static_cast<std::size_t>(extra) < s.size();
  for (int k = 1; ok && k <= extra; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
    ok = (b & 0xC0) == 0x80;
    c = (c << 6) | (b & 0x3Fu);
  }
  if (!ok) {
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    out += buf;
    return i + 1;
  }
  const std::size_t next = i + 1 + static_cast<std::size_t>(extra);
  if (invisible(c)) {
    std::snprintf(buf, sizeof buf, "\\u{%04X}", static_cast<unsigned>(c));
    out += buf;
  } else {
    out.append(s.substr(i, next - i));
  }
  return next;
}
}  // namespace

std::string quoted(std::string_view value) {
  constexpr std::size_t max_shown = 60;
  std::string out = "\"";
  std::size_t shown = 0;
  for (std::size_t i = 0; i < value.size();) {
    if (shown++ == max_shown) {
      out += "...";
      break;
    }
    if (value[i] == '"' || value[i] == '\\') {
      out += '\\';
      out += value[i++];
      continue;
    }
    i = append_printable(out, value, i);
  }
  out += '"';
  return out;
}

std::string gigabytes(double bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, bytes < 1e15 ? "%.1f GB" : "%.3g GB", bytes / 1e9);
  return buf;
}

std::string number_g(double x, int digits) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*g", digits, x);
  return buf;
}

std::string byte_size(double bytes) {
  if (!(bytes >= 1e9)) {
    char buf[48];
    if (bytes < 1e3) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    else if (bytes < 1e6) std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1e3);
    else std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
    return buf;
  }
  return gigabytes(bytes);
}

std::string more_than(double needed, const std::string& what, double has) {
  return byte_size(needed - has) + " more than the " + byte_size(has) + " " + what + " has";
}

std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) i = append_printable(out, s, i);
  return out;
}

}  // namespace dlcarbon::text

#include "dlcarbon/error.hpp"

namespace dlcarbon {

std::string format_input_error(const SourceLocation& where, const std::string& key_path,
                               const std::string& what) {
  // (Control characters escaped since session 35.)
  std::string out = text::printable(where.file);
  if (where.line > 0) {
    out.append(":").append(std::to_string(where.line)).append(":").append(std::to_string(where.column));
  }
  out.append(": ");
  if (!key_path.empty()) out.append(text::printable(key_path)).append(": ");
  out.append(what);
  return out;
}

}  // namespace dlcarbon
