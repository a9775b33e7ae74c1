#include "tools/svg_axis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace uffdlazy::svg {

double Scale::operator()(double v) const {
  double t;
  if (log) {
    double lv = std::log10(std::max(v, lo));
    t = (lv - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  } else {
    t = hi > lo ? (v - lo) / (hi - lo) : 0;
  }
  return p0 + t * (p1 - p0);
}

std::string short_number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string duration_label_us(double us) {
  if (us < 1) return short_number(us * 1000) + " ns";
  if (us < 1000) return short_number(us) + " \u00b5s";
  if (us < 1e6) return short_number(us / 1000) + " ms";
  return short_number(us / 1e6) + " s";
}

double nice_linear_ticks(double max, int target, std::vector<Tick>* ticks, const std::string& unit,
                         double min_step) {
  if (max <= 0) max = 1;
  double raw = max / target;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  if (step < min_step) {
    step = min_step;
    mag = std::pow(10, std::floor(std::log10(step)));
  }
  double top = std::ceil(max / step - 1e-9) * step;
  for (int i = 0; i * step <= top + step * 1e-6; i++) {
    double v = i * step;
    // Snap the float noise away from values like 0.30000000000000004.
    v = std::round(v / mag * 1000) * mag / 1000;
    ticks->push_back({v, short_number(v) + unit});
  }
  return top;
}

std::vector<Tick> log_time_ticks_us(double lo_us, double hi_us) {
  std::vector<Tick> t;
  int d0 = int(std::floor(std::log10(lo_us) + 1e-9)), d1 = int(std::ceil(std::log10(hi_us) - 1e-9));
  const bool short_axis = d1 - d0 <= 2;
  for (int d = d0; d <= d1; d++) {
    double base = std::pow(10, d);
    t.push_back({base, duration_label_us(base)});
    if (d == d1) break;
    for (int m = 2; m <= 9; m++)
      t.push_back({base * m, short_axis && (m == 2 || m == 5) ? duration_label_us(base * m) : ""});
  }
  return t;
}

}  // namespace uffdlazy::svg
