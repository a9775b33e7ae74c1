#include "tools/help_text.h"

#include <algorithm>
#include <string_view>

#include "tools/verbs.h"
#include "uffdlazy/version.h"

namespace uffdlazy::cli {

namespace {

constexpr size_t kWidth = 80;
constexpr size_t kLabelMax = 24;  // longer labels put their text on the next line

// Writes `text` wrapped to kWidth, every line indented by `indent` except the first, which
// starts at column `first_column` (already written). Paragraphs ("\n\n") are kept; a single
// "\n" is a forced line break.
void wrap(FILE* out, std::string_view text, size_t indent, size_t first_column) {
  size_t column = first_column;
  bool line_empty = true;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\n') {
      std::fputc('\n', out);
      i++;
      if (i < text.size() && text[i] == '\n') {
        std::fputc('\n', out);
        i++;
      }
      std::fprintf(out, "%*s", int(indent), "");
      column = indent;
      line_empty = true;
      continue;
    }
    if (text[i] == ' ') {
      i++;
      continue;
    }
    size_t end = text.find_first_of(" \n", i);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(i, end - i);
    if (!line_empty && column + 1 + word.size() > kWidth) {
      std::fprintf(out, "\n%*s", int(indent), "");
      column = indent;
      line_empty = true;
    }
    if (!line_empty) {
      std::fputc(' ', out);
      column++;
    }
    std::fwrite(word.data(), 1, word.size(), out);
    column += word.size();
    line_empty = false;
    i = end;
  }
  std::fputc('\n', out);
}

// The option's text with its default and the variable it stands for:
// "... (default: all) [UFFDLAZY_PREFETCH]".
std::string option_text(const OptionSpec& o) {
  std::string text = o.help;
  if (o.fallback) text += std::string(" (default: ") + o.fallback + ")";
  if (o.variable) text += std::string(" [") + o.variable + (o.value ? "" : "=1") + "]";
  return text;
}

void print_option(FILE* out, const std::string& label, const std::string& text, size_t label_width) {
  std::fprintf(out, "  %s", label.c_str());
  size_t column = 2 + label.size();
  const size_t text_column = 2 + label_width + 2;
  if (label.size() > label_width) {
    std::fprintf(out, "\n%*s", int(text_column), "");
  } else {
    std::fprintf(out, "%*s", int(text_column - column), "");
  }
  wrap(out, text, text_column, text_column);
}

// Lines "CODE  what it means", the text wrapped under itself.
void print_statuses(FILE* out, std::string_view lines) {
  if (lines.empty()) return;
  std::fprintf(out, "\nexit status:\n");
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    const size_t code_end = line.find(' ');
    const std::string_view code = line.substr(0, code_end);
    const std::string_view text = code_end == std::string_view::npos ? "" : line.substr(code_end);
    std::fprintf(out, "  %-5.*s", int(code.size()), code.data());
    wrap(out, text, 7, 7);
    if (nl == std::string_view::npos) break;
    lines.remove_prefix(nl + 1);
  }
}

void print_examples(FILE* out, std::string_view lines) {
  if (lines.empty()) return;
  std::fprintf(out, "\nexample:\n");
  while (!lines.empty()) {
    const size_t nl = lines.find('\n');
    const std::string_view line = lines.substr(0, nl);
    std::fprintf(out, "  %.*s\n", int(line.size()), line.data());
    if (nl == std::string_view::npos) break;
    lines.remove_prefix(nl + 1);
  }
}

}  // namespace

std::string option_label(const OptionSpec& o) {
  std::string label = o.alias ? std::string(o.alias) + ", " + o.name : std::string(o.name);
  if (o.value) label += std::string(" ") + o.value;
  return label;
}

void print_usage_line(const VerbSpec& verb, FILE* out) {
  std::fprintf(out, "usage: uffdlazy %s %s\n", verb.name, verb.synopsis);
}

void print_help(const VerbSpec& verb, FILE* out) {
  print_usage_line(verb, out);
  std::fputc('\n', out);
  wrap(out, verb.description, 0, 0);
  size_t width = 10;  // "-h, --help"
  for (const OptionSpec& o : verb.options) width = std::max(width, std::min(option_label(o).size(), kLabelMax));
  std::fprintf(out, "\noptions:\n");
  for (const OptionSpec& o : verb.options) print_option(out, option_label(o), option_text(o), width);
  print_option(out, "-h, --help", "print this help and exit", width);
  print_statuses(out, verb.exit_status);
  print_examples(out, verb.example);
  std::fprintf(out, "\nSee uffdlazy(1) and uffdlazy-environment(7).\n");
}

void print_overview(FILE* out) {
  std::fprintf(out,
               "usage: uffdlazy COMMAND [options] [--] [program args...]\n"
               "\n"
               "uffdlazy %s: lazy paging of a program's anonymous memory through userfaultfd.\n"
               "\n"
               "commands:\n",
               UFFDLAZY_VERSION_STRING);
  for (const VerbSpec* v : all_verbs()) std::fprintf(out, "  %-11s %s\n", v->name, v->summary);
  std::fprintf(out,
               "\n"
               "'uffdlazy help COMMAND' or 'uffdlazy COMMAND --help' lists a command's options, its\n"
               "exit statuses and an example. Manual: uffdlazy(1); the UFFDLAZY_* variables, which\n"
               "do the same without the command (LD_PRELOAD=libuffdlazy.so): uffdlazy-environment(7).\n");
}

}  // namespace uffdlazy::cli
