// What each verb of the uffdlazy command accepts, as one table per verb (defined beside the verb,
// in tools/cmd_<verb>.cpp). The parser (option_parser.h), the help text (help_text.h) and the
// shell completion (completion.h) all read it, and tests/unit/cli_help_test.cpp checks that the
// man page names every option in it: a new option is one entry here plus a line in the man page.
#pragma once

#include <cstddef>
#include <span>

namespace uffdlazy::cli {

// How a shell completes an option's value or a verb's operands.
enum class Complete {
  kNothing,  // free text: a number, a size, a name
  kFile,     // a path
  kWords,    // one of OptionSpec::words
  kVerb,     // a verb of uffdlazy (`uffdlazy help VERB`)
};

struct OptionSpec {
  const char* name;               // "--prefetch"
  const char* alias = nullptr;    // "-o", or nullptr
  const char* value = nullptr;    // the value's placeholder in the help ("MODE"); nullptr: a flag
  const char* help = "";          // what it does, in sentences (the help printer wraps them)
  const char* fallback = nullptr;  // the default, shown as "(default: X)"; nullptr: none to show
  Complete complete = Complete::kNothing;  // how a shell completes the value
  const char* words = nullptr;    // kWords: the values offered, space-separated ("none ws all")
  const char* variable = nullptr;  // the UFFDLAZY_* variable it stands for ("1" for a flag)
  bool path = false;              // the value is a path, made absolute (the program may chdir)
  bool no_aslr = false;           // also turns address-space randomisation off for the program
  bool required = false;          // the verb cannot do without it
};

struct VerbSpec {
  const char* name;
  const char* summary;      // one line, for `uffdlazy --help`
  const char* synopsis;     // what follows "usage: uffdlazy NAME "
  const char* description;  // paragraphs separated by a blank line ("\n\n")
  std::span<const OptionSpec> options;
  // Words before the program (or all words, without one) that are not options, e.g. FILE.
  const char* operand = nullptr;  // their name in messages ("FILE"), nullptr: none taken
  size_t min_operands = 0;
  size_t max_operands = 0;        // kAnyNumber: no limit
  Complete operand_complete = Complete::kNothing;
  const char* operand_words = nullptr;  // Complete::kWords: the operands offered
  bool takes_program = false;     // then comes a program and its arguments (after "--", or at once)
  const char* exit_status = "";   // lines "N  what it means"
  const char* example = "";       // lines, each a command (a line starting with "#" explains)
  int (*run)(int argc, char** argv) = nullptr;

  static constexpr size_t kAnyNumber = ~size_t(0);
};

}  // namespace uffdlazy::cli
