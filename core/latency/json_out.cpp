#include "core/latency/json_out.h"

#include "core/base/decimal.h"

#include "core/latency/fault_trace.h"

namespace uffdlazy {

void JsonOut::flush() {
  if (len_ && !err_) err_ = write_all(fd_, buf_, len_);
  len_ = 0;
}

void JsonOut::put(char c) {
  if (len_ == kBuffer) flush();
  buf_[len_++] = c;
}

void JsonOut::put(const char* s) {
  while (*s) put(*s++);
}

void JsonOut::value_prefix() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0) {
    if (has_items_[depth_ - 1]) put(',');
    has_items_[depth_ - 1] = true;
  }
}

JsonOut& JsonOut::begin_object() {
  value_prefix();
  put('{');
  if (depth_ < kMaxDepth) has_items_[depth_] = false;
  depth_++;
  return *this;
}

JsonOut& JsonOut::end_object() {
  depth_--;
  put('}');
  return *this;
}

JsonOut& JsonOut::begin_array() {
  value_prefix();
  put('[');
  if (depth_ < kMaxDepth) has_items_[depth_] = false;
  depth_++;
  return *this;
}

JsonOut& JsonOut::end_array() {
  depth_--;
  put(']');
  return *this;
}

JsonOut& JsonOut::key(const char* k) {
  str(k);
  put(':');
  after_key_ = true;
  return *this;
}

JsonOut& JsonOut::u64(uint64_t v) {
  value_prefix();
  char digits[20];
  size_t n = format_u64(digits, v);
  for (size_t i = 0; i < n; i++) put(digits[i]);
  return *this;
}

JsonOut& JsonOut::str(const char* s) {
  value_prefix();
  static const char hex[] = "0123456789abcdef";
  put('"');
  for (; s && *s; s++) {
    unsigned char c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      put('\\');
      put(char(c));
    } else if (c == '\n') {
      put("\\n");
    } else if (c == '\t') {
      put("\\t");
    } else if (c < 0x20 || c == 0x7f) {
      put("\\u00");
      put(hex[c >> 4]);
      put(hex[c & 15]);
    } else {
      put(char(c));
    }
  }
  put('"');
  return *this;
}

JsonOut& JsonOut::boolean(bool b) {
  value_prefix();
  put(b ? "true" : "false");
  return *this;
}

JsonOut& JsonOut::null() {
  value_prefix();
  put("null");
  return *this;
}

JsonOut& JsonOut::raw_number(const char* literal) {
  value_prefix();
  put(literal);
  return *this;
}

int JsonOut::finish() {
  put('\n');
  flush();
  return err_;
}

}  // namespace uffdlazy
