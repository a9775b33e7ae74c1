// Axis scales and tick choices for the report plot.
#pragma once

#include <string>
#include <vector>

namespace uffdlazy::svg {

struct Tick {
  double value;
  std::string label;  // empty for a minor tick
};

// Maps [lo, hi] onto the pixel range [p0, p1], linearly or by log10.
struct Scale {
  double lo, hi, p0, p1;
  bool log = false;
  double operator()(double v) const;
};

// "Nice" linear ticks (steps of 1, 2 or 5 x 10^k, at least min_step) covering [0, max]; returns
// the rounded-up max.
double nice_linear_ticks(double max, int target, std::vector<Tick>* ticks, const std::string& unit,
                         double min_step = 0);
// Decade ticks (labelled) with 2..9 minor ticks for a log axis over [lo, hi] microseconds; on a
// short axis (two decades or less) the 2x and 5x ticks are labelled too.
std::vector<Tick> log_time_ticks_us(double lo_us, double hi_us);
// 1.5 -> "1.5", 2000 -> "2000": the shortest plain form.
std::string short_number(double v);
// A duration given in microseconds: "100 ns", "10 µs", "1 ms", "1 s".
std::string duration_label_us(double us);

}  // namespace uffdlazy::svg
