#include "util/units.h"

#include <cctype>
#include <cstdio>
#include <utility>

#include "util/error.h"

namespace cidrun {

uint64_t parse_size(std::string_view text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - d) / 10) throw Error("size '" + std::string(text) + "' is too large");
    value = value * 10 + d;
    ++i;
  }
  if (i == 0) throw Error("invalid size '" + std::string(text) + "'");
  std::string unit(text.substr(i));
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, uint64_t> kUnits[] = {{"", 1},
                                                            {"b", 1},
                                                            {"k", 1000},
                                                            {"kb", 1000},
                                                            {"kib", 1ULL << 10},
                                                            {"m", 1000000},
                                                            {"mb", 1000000},
                                                            {"mib", 1ULL << 20},
                                                            {"g", 1000000000},
                                                            {"gb", 1000000000},
                                                            {"gib", 1ULL << 30},
                                                            {"t", 1000000000000ULL},
                                                            {"tb", 1000000000000ULL},
                                                            {"tib", 1ULL << 40}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      if (value > UINT64_MAX / mult) throw Error("size '" + std::string(text) + "' is too large");
      return value * mult;
    }
  }
  throw Error("invalid size unit in '" + std::string(text) + "'");
}

std::string format_bytes(double bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (bytes >= 1024 && i < 4) {
    bytes /= 1024;
    ++i;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, i == 0 ? "%.0f %s" : "%.1f %s", bytes, kNames[i]);
  return buf;
}

}  // namespace cidrun
