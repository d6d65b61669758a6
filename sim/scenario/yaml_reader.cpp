#include "yaml_reader.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>
#include <vector>
#include <sstream>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <unordered_map>

#include "dlcarbon/text.hpp"

namespace dlcarbon::detail {

SourceLocation Value::location() const {
  if (origin) return *origin;
  SourceLocation loc{file ? *file : std::string("<input>"), 0, 0};
  const YAML::Mark m = node.Mark();
  if (m.line >= 0) {
    loc.line = m.line + 1;
    loc.column = m.column + 1;
  }
  return loc;
}

void Value::fail(const std::string& what) const {
  throw InputError(format_input_error(location(), path, what));
}

void Value::expected(const std::string& what, const std::string& why) const {
  std::string msg = "expected " + what + ", got " + shown(node);
  if (!why.empty()) msg += " (" + why + ")";
  fail(msg);
}

Value Value::child(const YAML::Node& n, const std::string& key) const {
  std::string p = path;
  if (!key.empty() && key.front() == '[') {
    p += key;
  } else {
    p += (p.empty() ? "" : ".") + key;
  }
  return Value{n, file, p, origin};
}

std::string shown(const YAML::Node& node) {
  switch (node.Type()) {
    // An empty one says so: "expected a list of ..., got an empty list" (since session 34: "got a list").
    case YAML::NodeType::Map: return node.size() == 0 ? "an empty map" : "a map";
    case YAML::NodeType::Sequence: return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return text::quoted(node.Scalar());
    case YAML::NodeType::Undefined: return "nothing";
  }
  return "nothing";
}

namespace {
std::mutex& files_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::filesystem::path>& files_list() {
  static std::vector<std::filesystem::path> files;
  return files;
}
}  // namespace

void note_file_read(const std::filesystem::path& path) {
  const std::lock_guard<std::mutex> lock(files_mutex());
  auto& files = files_list();
  if (std::find(files.begin(), files.end(), path) == files.end()) files.push_back(path);
}

namespace {

// The nodes a document expands to, aliases expanded: each alias counts as many as its anchor's
// node holds. Aliases of aliases multiply (ten lists of ten aliases of the list before: 10^9
// nodes from a few hundred bytes), and every walk over the loaded document (the named files'
// digest, a sweep's canonical text) would visit them all: a small file had run for minutes.
// Since session 43 (a review); said at the alias that passes the limit.
constexpr std::uint64_t kMaxExpandedNodes = 1000000;

struct AliasLimit {
  YAML::Mark mark;
  bool recursive = false;  // an alias of a node that holds it
};

class ExpansionCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor, const std::string&) override { leaf(anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // An alias inside the node it names (`&a [*a]`) expands without end (a review of session 43:
    // it had counted as one node, and the walks after the load ran until killed).
    for (const auto& o : open_) {
      if (o.first == anchor) throw AliasLimit{mark, true};
    }
    const auto it = size_.find(anchor);
    const std::uint64_t size = it == size_.end() ? 1 : it->second;
    running_ += size;
    // What the aliases add is bounded, not the document's own nodes (a long plain list is no bomb).
    added_ += size;
    if (added_ > kMaxExpandedNodes) throw AliasLimit{mark};
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  void leaf(YAML::anchor_t anchor) {
    ++running_;
    if (anchor != YAML::NullAnchor) size_[anchor] = 1;
  }
  void open(YAML::anchor_t anchor) {
    ++running_;
    open_.push_back({anchor, running_ - 1});
  }
  void close() {
    if (open_.empty()) return;
    const auto [anchor, start] = open_.back();
    open_.pop_back();
    if (anchor != YAML::NullAnchor) size_[anchor] = running_ - start;
  }
  std::uint64_t running_ = 0, added_ = 0;
  std::vector<std::pair<YAML::anchor_t, std::uint64_t>> open_;
  std::unordered_map<YAML::anchor_t, std::uint64_t> size_;
};

}  // namespace

YAML::Node read_yaml_file(const std::filesystem::path& path, const std::string& display,
                          std::string& text, const SourceLocation& referenced_from,
                          const std::string& referencing_key) {
  auto fail_open = [&](const std::string& why) -> InputError {
    if (referenced_from.file.empty()) {
      return InputError(format_input_error({display, 0, 0}, "", "cannot read the file: " + why));
    }
    return InputError(format_input_error(referenced_from, referencing_key,
                                         "cannot read " + text::quoted(display) + ": " + why));
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw fail_open("it is a directory");
  // A device, FIFO or socket (/dev/zero, a named pipe) would be read without end: not a file here
  // (since session 34; before, the run hung and grew without bound).
  if (const auto st = std::filesystem::status(path, ec); !ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    throw fail_open("it is not a regular file (a device, FIFO or socket)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw fail_open(std::strerror(errno));
  note_file_read(path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  text = buffer.str();

  const SourceLocation top{display, 1, 1};
  // Binary data: NUL bytes or invalid UTF-8 are not YAML text. Point at the first bad byte.
  int line = 1, column = 1;
  auto binary = [&](unsigned char byte) -> InputError {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", byte);
    return InputError(format_input_error({display, line, column}, "",
                                         std::string("expected YAML text, got binary data (byte ") + hex + ")"));
  };
  for (std::size_t i = 0; i < text.size(); ++i, ++column) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 0;
      continue;
    }
    if (c == 0) throw binary(c);
    // A carriage return without a line feed (classic Mac OS line ends) is one line to the YAML
    // reader, whose message named a map value instead (since session 43, a review).
    if (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) {
      throw InputError(format_input_error({display, line, column}, "",
                                          "a carriage return without a line feed (classic Mac OS line ends): save the file with LF or CRLF line ends"));
    }
    if (c < 0x80) continue;
    int extra = -1;
    if ((c & 0xE0) == 0xC0) extra = 1;
    else if ((c & 0xF0) == 0xE0) extra = 2;
    else if ((c & 0xF8) == 0xF0) extra = 3;
    bool ok = extra > 0 && i + static_cast<std::size_t>(extra) < text.size();
    for (int k = 1; ok && k <= extra; ++k) {
      ok = (static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]) & 0xC0) == 0x80;
    }
    // Well-formed UTF-8 (Unicode 15, Table 3-7): no overlong forms (C0, C1; E0 before A0; F0
    // before 90), no surrogates (ED from A0), nothing past U+10FFFF (F4 from 90; F5 and above).
    // Since session 42, a review: these had passed into names and the HDF5 file.
    if (ok) {
      const auto second = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xC0 || c == 0xC1 || c >= 0xF5 || (c == 0xE0 && second < 0xA0) || (c == 0xED && second >= 0xA0) ||
             (c == 0xF0 && second < 0x90) || (c == 0xF4 && second >= 0x90));
    }
    if (!ok) throw binary(c);
    i += static_cast<std::size_t>(extra);
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    SourceLocation at{display, e.mark.line >= 0 ? e.mark.line + 1 : 1,
                      e.mark.column >= 0 ? e.mark.column + 1 : 1};
    // yaml-cpp's parser stops at 2,000 levels of nesting with the message "bad file" (since
    // session 39: said as what it is).
    if (dynamic_cast<const YAML::DeepRecursion*>(&e)) {
      throw InputError(format_input_error(at, "", "invalid YAML: nested deeper than the reader's limit (2,000 levels of lists and maps)"));
    }
    throw InputError(format_input_error(at, "", "invalid YAML: " + e.msg));
  }
  // One document a file: YAML::Load reads the first and would drop a second one (after `---`)
  // unread. A `---` at the start of a line is a document marker wherever it stands (YAML 1.2,
  // Sec. 9.1): one after the first document's content, with content after it, starts a second.
  // (Found by a text scan: yaml-cpp 0.7's LoadAll loops on some malformed input.)
  // The same for content after a document end marker `...` (since session 43, a review: yaml-cpp
  // stops there, and whatever followed, a second job or broken text, was never read).
  {
    bool content = false;
    int marker_line = 0, n = 0;
    bool after_end = false;
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) {
      ++n;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      const auto starts_marker = [&](const char* m) {
        return l.compare(0, 3, m) == 0 && (l.size() == 3 || l[3] == ' ' || l[3] == '\t');
      };
      const bool marker = starts_marker("---");
      const bool end = starts_marker("...");
      std::string rest = marker || end ? l.substr(3) : l;
      const auto first = rest.find_first_not_of(" \t");
      const bool has_content = first != std::string::npos && rest[first] != '#' && !(first == 0 && rest[0] == '%');
      if ((marker || end) && content && marker_line == 0) {
        marker_line = n;
        after_end = end;
      }
      if (has_content && marker_line > 0) {
        throw InputError(format_input_error({display, marker_line, 1}, "",
                                            after_end ? "content after the document's end (...): a file holds one document"
                                                      : "a second YAML document (after ---): a file holds one"));
      }
      content = content || has_content;
    }
  }
  // YAML tags (`!!float "10 h"`, `!custom x`) are not part of the format: said, not ignored (since
  // session 34). Each node once, by its position, so that aliases cannot multiply the walk.
  {
    // By position and type: a block map and its first key, or a null value and the key after it,
    // share a position but not a type.
    std::set<std::tuple<int, int, int>> seen;
    bool repeated = false;  // a node met twice: an alias (or a node of the same place and type)
    std::vector<std::pair<YAML::Node, std::string>> todo{{root, ""}};
    while (!todo.empty()) {
      const YAML::Node n = todo.back().first;
      const std::string path = todo.back().second;
      todo.pop_back();
      if (!n.IsDefined()) continue;
      const YAML::Mark mark = n.Mark();
      if (!seen.insert({mark.line, mark.column, static_cast<int>(n.Type())}).second) {
        repeated = true;
        continue;
      }
      const std::string& tag = n.Tag();
      if (!tag.empty() && tag != "?" && tag != "!") {
        throw InputError(format_input_error({display, mark.line >= 0 ? mark.line + 1 : 1, mark.column >= 0 ? mark.column + 1 : 1}, path,
                                            "a YAML tag (" + tag + ") is not part of the format: write the value without it"));
      }
      // Children pushed last first, so that the first tag in the file is the one reported.
      std::vector<std::pair<YAML::Node, std::string>> children;
      if (n.IsMap()) {
        for (const auto& kv : n) {
          const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "?";
          children.push_back({kv.first, path});
          children.push_back({kv.second, path.empty() ? key : path + "." + key});
        }
      } else if (n.IsSequence()) {
        std::size_t i = 0;
        for (const auto& item : n) children.push_back({item, path + "[" + std::to_string(i++) + "]"});
      }
      todo.insert(todo.end(), children.rbegin(), children.rend());
    }
    // (Only where the walk above met a node twice: parsing the text again costs as much as loading it,
    // and the catalog's files, read for every scenario, hold no aliases.)
    if (repeated) {
      std::istringstream events(text);
      YAML::Parser parser(events);
      ExpansionCounter counter;
      try {
        parser.HandleNextDocument(counter);
      } catch (const AliasLimit& limit) {
        throw InputError(format_input_error({display, limit.mark.line + 1, limit.mark.column + 1}, "",
                                            limit.recursive ? "an alias inside the node it names (it would expand without end)"
                                                            : "aliases add more than " + std::to_string(kMaxExpandedNodes) +
                                                                  " nodes to the document (aliases of aliases multiply): write the values out or alias less"));
      }
    }
  }
  if (!root.IsDefined() || root.IsNull()) {
    throw InputError(format_input_error(top, "", "expected a map with schema_version, got an empty file"));
  }
  if (!root.IsMap()) {
    throw InputError(format_input_error(top, "", "expected a map with schema_version, got " + shown(root)));
  }
  return root;
}

MapView::MapView(const Value& v, std::vector<std::string> allowed, bool any_key) : value_(v) {
  if (!v.node.IsMap()) v.expected("a map");
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key_node = it->first;
    const Value key_value{key_node, v.file, v.path, v.origin};
    if (!key_node.IsScalar()) key_value.expected("a key (a word)");
    const std::string key = key_node.Scalar();
    for (const auto& [seen, seen_node] : entries_) {
      if (seen == key) {
        const Value dup{key_node, v.file, v.child(YAML::Node(), key).path, v.origin};
        dup.fail("duplicate key (first at line " + std::to_string(seen_node.Mark().line + 1) + ")");
      }
    }
    if (any_key) {
      entries_.emplace_back(key, it->second);
      continue;
    }
    bool known = false;
    for (const auto& a : allowed) known = known || a == key;
    if (!known) {
      const Value bad{key_node, v.file, v.child(YAML::Node(), key).path, v.origin};
      // yaml-cpp reads a merge key as a plain key (since session 47, a review: it was met with "did
      // you mean" a real key).
      if (key == "<<") bad.fail("YAML merge keys (<<) are not supported; write the keys out, or build the entry with `from:`");
      const std::string guess = text::closest(key, allowed);
      if (!guess.empty()) bad.fail("unknown key; did you mean " + text::quoted(guess) + "?");
      bad.fail("unknown key; expected one of: " + text::join(allowed));
    }
    entries_.emplace_back(key, it->second);
  }
}

bool MapView::has(const std::string& key) const {
  for (const auto& e : entries_) {
    if (e.first == key) return true;
  }
  return false;
}

Value MapView::at(const std::string& key) const {
  for (const auto& e : entries_) {
    if (e.first == key) return value_.child(e.second, key);
  }
  return value_.child(YAML::Node(), key);
}

MapView MapView::any_keys(const Value& v) { return MapView(v, {}, true); }

std::vector<std::string> MapView::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

void MapView::require(const std::string& key) const {
  if (!has(key)) value_.fail("missing required key " + text::quoted(key));
}

namespace {
// The reason in parentheses at the end of a QuantityError ("number out of range"), if any.
std::string reason_of(const units::QuantityError& e) {
  const std::string msg = e.what();
  if (msg.empty() || msg.back() != ')') return "";
  const auto open = msg.rfind(" (");
  return open == std::string::npos ? "" : msg.substr(open + 2, msg.size() - open - 3);
}
}  // namespace

std::string read_text(const Value& v) {
  if (!v.node.IsScalar()) v.expected("a text");
  // A NUL ("\0" in a quoted scalar) would end a file name where the system reads it, and a text
  // where the output file stores it (since session 40, a review; before, "us.csv\0x" opened us.csv).
  if (v.node.Scalar().find('\0') != std::string::npos) v.expected("a text without a NUL character (\\0)");
  // A blank text (a name, a source, a file's path) says nothing: refused as a missing one is (since
  // session 47, a review: `source: ""` had satisfied a required source, `file: ""` named a folder).
  if (v.node.Scalar().find_first_not_of(" \t\r\n\f\v") == std::string::npos) v.expected("a text that is not blank");
  return v.node.Scalar();
}

std::string read_id(const Value& v) {
  if (!v.node.IsScalar()) v.expected("an id (letters, digits, '-', '_', '.')");
  const std::string s = v.node.Scalar();
  bool ok = !s.empty();
  for (const char c : s) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (!ok) v.expected("an id (letters, digits, '-', '_', '.')");
  // Ids name groups and rows of the output file; the limit is said (since session 39; before, the
  // message named the characters alone).
  if (s.size() > 128) v.expected("an id of at most 128 characters", std::to_string(s.size()) + " characters");
  // Ids name groups of the output file (/training/<id>/ops): "." and ".." are paths there.
  if (s.find_first_not_of('.') == std::string::npos) v.expected("an id with a letter, digit, '-' or '_' (not only dots)");
  return s;
}

units::Quantity read_quantity(const Value& v, units::Kind kind) {
  if (!v.node.IsScalar()) v.expected(units::describe(kind));
  try {
    return units::parse_quantity(v.node.Scalar(), kind);
  } catch (const units::QuantityError& e) {
    v.fail(e.what());
  }
}

double read_positive(const Value& v, units::Kind kind) {
  const double x = read_quantity(v, kind).value;
  if (!(x > 0)) v.expected(units::describe(kind, "greater than 0"));
  return x;
}

double read_non_negative(const Value& v, units::Kind kind) {
  const double x = read_quantity(v, kind).value;
  if (!(x >= 0)) v.expected(units::describe(kind, "not below 0"));
  return x;
}

void check_count_noun(const Value& v, units::Kind kind, std::initializer_list<std::string_view> nouns) {
  if (!v.node.IsScalar()) return;
  const std::string noun = read_quantity(v, kind).noun;
  if (noun.empty()) return;
  std::string listed;
  for (const auto n : nouns) {
    if (n == noun) return;
    listed += (listed.empty() ? "" : " or ") + std::string(n) + "s";
  }
  v.fail("counts " + noun + "s here, expected " + (listed.empty() ? std::string("a bare number") : listed) +
         (kind == units::Kind::frequency ? " per unit time" : ""));
}

std::int64_t read_int(const Value& v) {
  if (!v.node.IsScalar()) v.expected("an integer");
  const std::string& s = v.node.Scalar();
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) v.expected("an integer");
  long double acc = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) v.expected("an integer");
    acc = acc * 10 + (s[i] - '0');
    if (acc >= 9.007199254740992e15L) v.expected("an integer", "number out of range");
  }
  const auto value = static_cast<std::int64_t>(acc);
  return s[0] == '-' ? -value : value;
}

std::int64_t read_positive_int(const Value& v) {
  if (!v.node.IsScalar()) v.expected("a positive integer");
  // Accept "10000", "10,000" and "1e4", but only whole numbers.
  double x = 0;
  try {
    x = units::parse_quantity(v.node.Scalar(), units::Kind::ratio).value;
  } catch (const units::QuantityError& e) {
    v.expected("a positive integer", reason_of(e));
  }
  // Below 2^53: from there a double no longer holds every whole number, and 2^53 + 1 had been read
  // as 2^53 (since session 43, a review).
  if (x >= 9.007199254740992e15) v.expected("a positive integer", "number out of range");
  if (!(x >= 1) || std::floor(x) != x) v.expected("a positive integer");
  return static_cast<std::int64_t>(x);
}

double read_number_in(const Value& v, double lo, double hi, bool lo_inclusive,
                      const std::string& what) {
  if (!v.node.IsScalar()) v.expected(what);
  double x = 0;
  try {
    x = units::parse_quantity(v.node.Scalar(), units::Kind::ratio).value;
  } catch (const units::QuantityError& e) {
    v.expected(what, reason_of(e));
  }
  const bool low_ok = lo_inclusive ? x >= lo : x > lo;
  if (!low_ok || x > hi) v.expected(what);
  return x;
}

std::int64_t read_date(const Value& v, std::string& as_text) {
  if (!v.node.IsScalar()) v.expected("a date (YYYY-MM-DD)");
  as_text = v.node.Scalar();
  long long seconds = 0;
  if (as_text.size() != 10 || !text::parse_utc_time(as_text, seconds)) {
    int y = 0;
    unsigned m = 0, d = 0;
    char extra = 0;
    const bool shaped = as_text.size() == 10 && std::sscanf(as_text.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &extra) == 3;
    v.expected("a date (YYYY-MM-DD)", !shaped ? "" : m < 1 || m > 12 ? "no such month" : "no such day");
  }
  return seconds;
}

bool read_bool(const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "yes") return true;
    if (s == "false" || s == "no") return false;
  }
  v.expected("true or false");
}

std::string read_choice(const Value& v, const std::vector<std::string>& choices) {
  const std::string what = "one of " + text::join(choices);
  if (!v.node.IsScalar()) v.expected(what);
  const std::string s = v.node.Scalar();
  for (const auto& c : choices) {
    if (c == s) return s;
  }
  const std::string guess = text::closest(s, choices);
  v.expected(what, guess.empty() ? "" : "did you mean " + text::quoted(guess) + "?");
}

}  // namespace dlcarbon::detail

namespace dlcarbon {
std::vector<std::filesystem::path> files_read() {
  const std::lock_guard<std::mutex> lock(detail::files_mutex());
  return detail::files_list();
}
}  // namespace dlcarbon
