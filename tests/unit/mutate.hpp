#pragma once
// Mutation of a valid input for the fuzz tests: a few random edits (bytes replaced, inserted or
// deleted, truncation, a run duplicated), from a fixed-seed generator.
#include <random>
#include <string>

namespace dlcarbon::test {

inline std::string mutate(std::string text, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> kind(0, 5);
  auto pos = [&](std::mt19937_64& r) { return static_cast<std::size_t>(r() % text.size()); };
  const char alphabet[] = " :-[]{},\"'\n#0123456789e.%WJhskgtCO/\t\\&*!|>";
  std::uniform_int_distribution<std::size_t> pick(0, sizeof alphabet - 2);
  const int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n && !text.empty(); ++i) {
    switch (kind(rng)) {
      case 0: text[pos(rng)] = alphabet[pick(rng)]; break;                           // replace a byte
      case 1: text.insert(pos(rng), 1, alphabet[pick(rng)]); break;                   // insert
      case 2: text.erase(pos(rng), 1 + rng() % 8); break;                             // delete a run
      case 3: text.resize(pos(rng)); break;                                           // truncate
      case 4: { const auto p = pos(rng); text.insert(p, text.substr(p, 1 + rng() % 40)); break; }  // duplicate
      default: text[pos(rng)] = static_cast<char>(rng() & 0xff); break;               // any byte
    }
  }
  return text;
}

}  // namespace dlcarbon::test
