#pragma once
// Small text helpers shared by the rooms: "did you mean" suggestions and quoting.

#include <string>
#include <string_view>
#include <vector>

namespace dlcarbon::text {

// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is close enough to be a likely misspelling
// (distance <= max(2, len/3)), else an empty string.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c" (sorted as given).
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

// "a.b..c" -> {"a", "b", "", "c"}; "" -> {""}.
std::vector<std::string> split(std::string_view s, char sep);

// Double-quotes a value for an error message, escaping control bytes and cutting very
// long text: quoted("ten") == "\"ten\"".
std::string quoted(std::string_view value);

// A YAML double-quoted scalar that reads back as `value`: '"' and '\\' escaped, control characters
// as \xNN (a sweep's value with its unit, built as YAML text).
std::string yaml_quoted(std::string_view value);
// `value` whole with its control characters as \xNN (a newline or an escape in a path or key from
// the input cannot split a one-line message or move the terminal's cursor).
std::string printable(std::string_view value);

// "2023-01-01" or "2023-01-01 13:00:00" (UTC) -> seconds since 1970-01-01; false when malformed
// or no such day.
bool parse_utc_time(const std::string& text, long long& seconds);

// Bytes in gigabytes for a message: "60.2 GB"; beyond a petabyte in three figures ("1.6e+282 GB").
std::string gigabytes(double bytes);
// A number as printf's %.<digits>g writes it ("4", "1.05", "1e+300").
std::string number_g(double x, int digits);
// Bytes in the unit that shows them: "512 B", "41.0 kB", "3.2 MB", else as gigabytes().
std::string byte_size(double bytes);
// What a memory check's message ends with, so that a need just past the memory is not printed
// equal to it: "41.0 kB more than the 80.0 GB nvidia-a100-sxm4-80gb has".
std::string more_than(double needed, const std::string& what, double has);

}  // namespace dlcarbon::text
