#pragma once
// Internal to sim/scenario: reading YAML files and typed values with precise errors.
// Nothing outside sim/scenario includes this (it brings in yaml-cpp).

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "dlcarbon/error.hpp"
#include "dlcarbon/units.hpp"

namespace dlcarbon::detail {

// A YAML value and where it came from, for messages.
struct Value {
  YAML::Node node;
  const std::string* file = nullptr;  // owned by the loader; stable for the whole load
  std::string path;                   // key path, e.g. "training[0].power"
  // Set for a value a sweep put in (docs/sweep.md): it and everything below it is reported
  // at the sweep file's line and column, since the node itself has no place in any file.
  std::optional<SourceLocation> origin = std::nullopt;

  // Assigning a Value rebinds it to the other's node. YAML::Node's own assignment writes into the
  // node it refers to, which an alias shares with its anchor: a job that kept where a key was
  // given (`tokens_at`, `cross_entropy_at`) and was copied by `from:` or an earlier layer had
  // rewritten the anchored value of another job (since session 48, a review).
  Value& operator=(const Value& other) {
    if (this != &other) {
      node.reset(other.node);
      file = other.file;
      path = other.path;
      origin = other.origin;
    }
    return *this;
  }

  SourceLocation location() const;
  [[noreturn]] void fail(const std::string& what) const;
  // "expected <what>, got <this value>"
  [[noreturn]] void expected(const std::string& what, const std::string& why = "") const;
  Value child(const YAML::Node& n, const std::string& key) const;
};

// What a value looks like in an error message: "\"ten\"", "a map", "a list", "nothing".
std::string shown(const YAML::Node& node);

// Reads and parses a YAML file; throws InputError for a missing, unreadable, empty or
// non-text file and for YAML syntax errors. `text` receives the bytes as read.
YAML::Node read_yaml_file(const std::filesystem::path& path, const std::string& display,
                          std::string& text, const SourceLocation& referenced_from,
                          const std::string& referencing_key);

// Records a file opened for reading (dlcarbon::files_read()).
void note_file_read(const std::filesystem::path& path);

// A map whose keys are checked against the allowed ones (unknown keys get "did you mean").
class MapView {
 public:
  MapView(const Value& v, std::vector<std::string> allowed, bool any_key = false);
  // A map whose keys are names of the user's (hardware ids as shares' keys): any word, once.
  static MapView any_keys(const Value& v);
  bool has(const std::string& key) const;
  Value at(const std::string& key) const;  // precondition: has(key)
  const Value& self() const { return value_; }
  std::vector<std::string> keys() const;
  // Fails at this map with `missing required key "k"` unless present.
  void require(const std::string& key) const;

 private:
  Value value_;
  std::vector<std::pair<std::string, YAML::Node>> entries_;
};

std::string read_text(const Value& v);
std::string read_id(const Value& v);
units::Quantity read_quantity(const Value& v, units::Kind kind);
// A quantity that must be > 0 (strictly) or >= 0.
double read_positive(const Value& v, units::Kind kind);
double read_non_negative(const Value& v, units::Kind kind);
// A count whose text names what it counts ("1e9 tokens", "10 requests/s") must name one of
// `nouns` (Quantity::noun families); a bare number passes. Nodes that are not scalars pass too.
void check_count_noun(const Value& v, units::Kind kind, std::initializer_list<std::string_view> nouns);
std::int64_t read_positive_int(const Value& v);
std::int64_t read_int(const Value& v);
// A bare number in [lo, hi]; `what` describes it in messages, e.g. "a PUE from 1 to 10 (e.g. 1.58)".
double read_number_in(const Value& v, double lo, double hi, bool lo_inclusive,
                      const std::string& what);
// "2020-05-01" -> seconds since 1970-01-01 UTC.
std::int64_t read_date(const Value& v, std::string& as_text);
bool read_bool(const Value& v);
std::string read_choice(const Value& v, const std::vector<std::string>& choices);

}  // namespace dlcarbon::detail
