#include "tools/report_json.h"

#include <cstdlib>

namespace uffdlazy::report {

const JsonValue* JsonValue::find(std::string_view key) const {
  if (type != Type::kObject) return nullptr;
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  bool document(JsonValue* out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    if (i_ != t_.size()) return fail("unexpected text after the document");
    return true;
  }

  std::string error() const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < err_pos_ && k < t_.size(); k++) {
      if (t_[k] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    return "line " + std::to_string(line) + " column " + std::to_string(col) + ": " + err_;
  }

 private:
  static constexpr int kMaxDepth = 64;

  bool fail(const char* what) {
    if (err_.empty()) {
      err_ = what;
      err_pos_ = i_;
    }
    return false;
  }
  void skip_ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) i_++;
  }
  bool literal(std::string_view word) {
    if (t_.substr(i_, word.size()) != word) return fail("invalid literal");
    i_ += word.size();
    return true;
  }

  bool value(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    if (i_ >= t_.size()) return fail("unexpected end of input");
    switch (t_[i_]) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': out->type = JsonValue::Type::kString; return string(&out->string);
      case 't': out->type = JsonValue::Type::kBool; out->boolean = true; return literal("true");
      case 'f': out->type = JsonValue::Type::kBool; out->boolean = false; return literal("false");
      case 'n': out->type = JsonValue::Type::kNull; return literal("null");
      default: return number(out);
    }
  }

  bool object(JsonValue* out, int depth) {
    out->type = JsonValue::Type::kObject;
    i_++;
    skip_ws();
    if (i_ < t_.size() && t_[i_] == '}') {
      i_++;
      return true;
    }
    for (;;) {
      skip_ws();
      if (i_ >= t_.size() || t_[i_] != '"') return fail("expected a member name");
      std::string key;
      if (!string(&key)) return false;
      skip_ws();
      if (i_ >= t_.size() || t_[i_] != ':') return fail("expected ':'");
      i_++;
      skip_ws();
      out->members.push_back(JsonValue::Member{std::move(key), JsonValue{}});
      if (!value(&out->members.back().second, depth + 1)) return false;
      skip_ws();
      if (i_ < t_.size() && t_[i_] == ',') {
        i_++;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == '}') {
        i_++;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(JsonValue* out, int depth) {
    out->type = JsonValue::Type::kArray;
    i_++;
    skip_ws();
    if (i_ < t_.size() && t_[i_] == ']') {
      i_++;
      return true;
    }
    for (;;) {
      skip_ws();
      out->items.emplace_back();
      if (!value(&out->items.back(), depth + 1)) return false;
      skip_ws();
      if (i_ < t_.size() && t_[i_] == ',') {
        i_++;
        continue;
      }
      if (i_ < t_.size() && t_[i_] == ']') {
        i_++;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(uint32_t* cp) {
    if (i_ + 4 > t_.size()) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      int d = hex_digit(t_[i_ + k]);
      if (d < 0) return fail("bad \\u escape");
      v = v * 16 + uint32_t(d);
    }
    i_ += 4;
    *cp = v;
    return true;
  }
  static void utf8(uint32_t cp, std::string* s) {
    if (cp < 0x80) {
      *s += char(cp);
    } else if (cp < 0x800) {
      *s += char(0xc0 | (cp >> 6));
      *s += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *s += char(0xe0 | (cp >> 12));
      *s += char(0x80 | ((cp >> 6) & 0x3f));
      *s += char(0x80 | (cp & 0x3f));
    } else {
      *s += char(0xf0 | (cp >> 18));
      *s += char(0x80 | ((cp >> 12) & 0x3f));
      *s += char(0x80 | ((cp >> 6) & 0x3f));
      *s += char(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string* s) {
    i_++;  // opening quote
    for (;;) {
      if (i_ >= t_.size()) return fail("unterminated string");
      char c = t_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        *s += c;
        continue;
      }
      if (i_ >= t_.size()) return fail("unterminated string");
      char e = t_[i_++];
      switch (e) {
        case '"': *s += '"'; break;
        case '\\': *s += '\\'; break;
        case '/': *s += '/'; break;
        case 'b': *s += '\b'; break;
        case 'f': *s += '\f'; break;
        case 'n': *s += '\n'; break;
        case 'r': *s += '\r'; break;
        case 't': *s += '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00 && t_.substr(i_, 2) == "\\u") {
            i_ += 2;
            uint32_t lo;
            if (!hex4(&lo)) return false;
            if (lo < 0xdc00 || lo > 0xdfff) return fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          utf8(cp, s);
          break;
        }
        default: return fail("bad escape in string");
      }
    }
  }

  bool number(JsonValue* out) {
    size_t start = i_;
    if (i_ < t_.size() && t_[i_] == '-') i_++;
    size_t int_start = i_;
    while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') i_++;
    if (i_ == int_start) return fail("unexpected character");
    if (t_[int_start] == '0' && i_ - int_start > 1) return fail("leading zero in number");
    bool integral = true;
    if (i_ < t_.size() && t_[i_] == '.') {
      integral = false;
      size_t f = ++i_;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') i_++;
      if (i_ == f) return fail("digits expected after '.'");
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      integral = false;
      i_++;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) i_++;
      size_t e = i_;
      while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9') i_++;
      if (i_ == e) return fail("digits expected in exponent");
    }
    std::string text(t_.substr(start, i_ - start));
    out->type = JsonValue::Type::kNumber;
    out->number = std::strtod(text.c_str(), nullptr);
    if (integral && t_[start] != '-') {
      uint64_t v = 0;
      bool overflow = false;
      for (char c : text) {
        uint64_t d = uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10) overflow = true;
        v = v * 10 + d;
      }
      out->is_uint = !overflow;
      out->uint = v;
    }
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
  std::string err_;
  size_t err_pos_ = 0;
};

}  // namespace

std::optional<JsonValue> parse_json(std::string_view text, std::string* error) {
  Parser p(text);
  JsonValue v;
  if (!p.document(&v)) {
    if (error) *error = p.error();
    return std::nullopt;
  }
  return v;
}

}  // namespace uffdlazy::report
