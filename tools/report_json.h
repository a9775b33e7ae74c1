// A small JSON reader for the report tools: the whole document into a tree of values.
//
// Non-negative integers are also kept exactly as uint64_t (report counters and nanosecond
// timestamps exceed what a double holds exactly).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uffdlazy::report {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  bool is_uint = false;  // a non-negative integer that fits in uint64_t
  uint64_t uint = 0;
  std::string string;
  std::vector<JsonValue> items;
  // Not std::pair: a pair of a type still incomplete here is not allowed (clang refuses it);
  // a vector of an incomplete class is.
  struct Member;
  std::vector<Member> members;

  bool is_null() const { return type == Type::kNull; }
  bool is_number() const { return type == Type::kNumber; }
  bool is_string() const { return type == Type::kString; }
  bool is_array() const { return type == Type::kArray; }
  bool is_object() const { return type == Type::kObject; }
  // Member lookup (first match); null if absent or this is not an object.
  const JsonValue* find(std::string_view key) const;
};

struct JsonValue::Member {
  std::string first;  // the name
  JsonValue second;
};

// Parses a complete document (trailing whitespace only). On failure returns nullopt and sets
// *error to "line L column C: what".
std::optional<JsonValue> parse_json(std::string_view text, std::string* error);

}  // namespace uffdlazy::report
