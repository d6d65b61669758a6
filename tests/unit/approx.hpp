#pragma once
// Relative comparison of floating-point results for every unit test.
//
// doctest::Approx passes when |a - b| < epsilon x (scale + max(|a|, |b|)), and its scale defaults
// to 1: an absolute tolerance of about 1.2e-5 besides the relative one. Most quantities here are
// seconds of a kernel or a step (1e-6 to 1e-3) or joules of one op, where that absolute term is
// larger than the differences a test is written to catch. With a scale of 1e-30 the tolerance is
// relative (epsilon x the larger magnitude), and an expected zero passes only a result below 1e-35.

#include <doctest/doctest.h>

namespace dlcarbon::test {

inline doctest::Approx approx(double value) { return doctest::Approx(value).scale(1e-30); }

}  // namespace dlcarbon::test
