#include "tools/option_parser.h"

#include <cstdio>

#include "tools/help_text.h"

namespace uffdlazy::cli {

bool ParsedArgs::has(const char* name) const { return value(name) != nullptr; }

const std::string* ParsedArgs::value(const char* name) const {
  const std::string* found = nullptr;
  for (const auto& [opt, v] : options) {
    if (std::string(opt->name) == name) found = &v;
  }
  return found;
}

int usage_error(const VerbSpec& verb, const std::string& message) {
  std::fprintf(stderr, "uffdlazy %s: %s\n", verb.name, message.c_str());
  print_usage_line(verb, stderr);
  std::fprintf(stderr, "('uffdlazy %s --help' describes every option)\n", verb.name);
  return 2;
}

namespace {

const OptionSpec* find_option(const VerbSpec& verb, const std::string& word) {
  for (const OptionSpec& o : verb.options) {
    if (word == o.name || (o.alias && word == o.alias)) return &o;
  }
  return nullptr;
}

std::string option_with_value(const OptionSpec& o) {
  return std::string(o.alias ? o.alias : o.name) + (o.value ? std::string(" ") + o.value : "");
}

}  // namespace

int parse_args(const VerbSpec& verb, int argc, char** argv, ParsedArgs* out) {
  int i = 1;
  bool options_ended = false;
  for (; i < argc; i++) {
    const std::string a = argv[i];
    if (!options_ended && a == "--") {
      options_ended = true;
      if (verb.takes_program) {
        i++;
        break;
      }
      continue;
    }
    if (!options_ended && (a == "--help" || a == "-h")) {
      print_help(verb, stdout);
      return 0;
    }
    if (!options_ended && a.size() > 1 && a[0] == '-') {
      // --name=VALUE is --name VALUE.
      const size_t eq = a.rfind("--", 0) == 0 ? a.find('=') : std::string::npos;
      const std::string word = eq == std::string::npos ? a : a.substr(0, eq);
      const OptionSpec* opt = find_option(verb, word);
      if (!opt) return usage_error(verb, "unknown option '" + word + "'");
      std::string v = "1";
      if (opt->value) {
        if (eq != std::string::npos) {
          v = a.substr(eq + 1);
        } else if (i + 1 < argc) {
          v = argv[++i];
        } else {
          return usage_error(verb, word + " needs a value (" + opt->value + ")");
        }
      } else if (eq != std::string::npos) {
        return usage_error(verb, word + " takes no value");
      }
      out->options.push_back({opt, v});
      continue;
    }
    if (out->operands.size() < verb.max_operands) {
      out->operands.push_back(a);
      continue;
    }
    if (verb.takes_program) break;  // the program, without a "--"
    return usage_error(verb, "one " + std::string(verb.operand ? verb.operand : "argument") + " at a time ('" + a +
                                 "' is one too many)");
  }
  if (out->operands.size() < verb.min_operands) {
    return usage_error(verb, std::string("missing ") + (verb.operand ? verb.operand : "argument"));
  }
  if (verb.takes_program) {
    if (i >= argc) return usage_error(verb, "no program given");
    for (; i < argc; i++) out->program.push_back(argv[i]);
  }
  for (const OptionSpec& o : verb.options) {
    if (o.required && !out->has(o.name)) return usage_error(verb, "missing " + option_with_value(o));
  }
  return kParsed;
}

}  // namespace uffdlazy::cli
