// bench_report: prints the human table of a bench/run: reads the JSON figure
// lines the bench programs wrote (one file, one figure per line) and prints
// figure, median, unit, spread (min..max over the repetitions), target and
// whether it was met.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "aion/engine/payload.h"

namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, v >= 100 || v == static_cast<long long>(v) ? "%.0f" : "%.3g", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: bench_report <figures.jsonl>\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  std::string line;
  std::printf("%-38s %12s %-6s %-21s %-10s %s\n", "figure", "median", "unit", "spread (min..max)",
              "target", "met");
  while (std::getline(in, line)) {
    auto f = aion::Json::parse(line, nullptr, false);
    if (!f.is_object() || !f.contains("figure")) continue;
    const std::string spread = Num(f.value("min", 0.0)) + " .. " + Num(f.value("max", 0.0));
    const std::string met = !f.contains("met") ? "-" : f["met"].get<bool>() ? "yes" : "NO";
    std::printf("%-38s %12s %-6s %-21s %-10s %s\n", f["figure"].get<std::string>().c_str(),
                Num(f.value("value", 0.0)).c_str(), f.value("unit", "").c_str(), spread.c_str(),
                f.value("target", "-").c_str(), met.c_str());
  }
  return 0;
}
