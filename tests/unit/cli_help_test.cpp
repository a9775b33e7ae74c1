// Every verb's help, man page section, and shell completion cover every option its parser accepts,
// and nothing else: they are all checked against the verb tables (tools/verb_spec.h), which are
// what the parser reads. A new option with no line in man/uffdlazy.1.scd fails here.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base/env_config.h"
#include "tools/help_text.h"
#include "tools/option_parser.h"
#include "tools/verbs.h"
#include "uffdlazy/version.h"

namespace uffdlazy::cli {
namespace {

std::string help_of(const VerbSpec& v) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  print_help(v, f);
  std::fclose(f);
  std::string s(buf, len);
  free(buf);
  return s;
}

struct Output {
  int status = -1;
  std::string out;
};

Output shell(const std::string& command) {
  Output r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kCli = UFFDLAZY_CLI;

// The words a verb needs besides the option under test: its operands, required options, program.
std::vector<std::string> words_for(const VerbSpec& v, const OptionSpec* tested) {
  std::vector<std::string> w = {v.name};
  for (const OptionSpec& o : v.options) {
    if (o.required && &o != tested) w.insert(w.end(), {o.name, "x"});
  }
  for (size_t i = 0; i < v.min_operands; i++) w.push_back("operand");
  return w;
}

int parse(const VerbSpec& v, std::vector<std::string> words, ParsedArgs* out) {
  if (v.takes_program) words.insert(words.end(), {"--", "true"});
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  // A usage error prints to stderr; the status is what matters here.
  return parse_args(v, int(argv.size() - 1), argv.data(), out);
}

TEST(CliHelp, TheParserAcceptsEveryOptionOfItsTableInBothSpellingsAndNothingElse) {
  for (const VerbSpec* v : all_verbs()) {
    for (const OptionSpec& o : v->options) {
      for (const char* spelling : {o.name, o.alias}) {
        if (!spelling) continue;
        std::vector<std::string> w = words_for(*v, &o);
        w.push_back(spelling);
        if (o.value) w.push_back("value");
        ParsedArgs args;
        ASSERT_EQ(parse(*v, w, &args), kParsed) << v->name << " " << spelling;
        ASSERT_TRUE(args.has(o.name)) << v->name << " " << spelling;
        if (o.value) {
          EXPECT_EQ(*args.value(o.name), "value") << v->name << " " << spelling;
        }
      }
      if (o.value) {
        std::vector<std::string> w = words_for(*v, &o);
        w.push_back(std::string(o.name) + "=a=b");
        ParsedArgs args;
        ASSERT_EQ(parse(*v, w, &args), kParsed) << v->name << " " << o.name << "=";
        EXPECT_EQ(*args.value(o.name), "a=b");
      }
    }
    std::vector<std::string> w = words_for(*v, nullptr);
    w.push_back("--no-such-option");
    ParsedArgs args;
    EXPECT_EQ(parse(*v, w, &args), 2) << v->name;
  }
}

TEST(CliHelp, EveryVerbsHelpNamesEveryOptionWithItsValueDefaultExitStatusesAndAnExample) {
  for (const VerbSpec* v : all_verbs()) {
    const std::string help = help_of(*v);
    EXPECT_EQ(help.rfind(std::string("usage: uffdlazy ") + v->name, 0), 0u) << help;
    for (const OptionSpec& o : v->options) {
      EXPECT_NE(help.find(option_label(o)), std::string::npos) << v->name << " " << o.name << "\n" << help;
      if (o.fallback) {
        EXPECT_NE(help.find(std::string("(default: ") + o.fallback + ")"), std::string::npos) << v->name << " " << o.name;
      }
      if (o.variable) {
        EXPECT_NE(help.find(o.variable), std::string::npos) << v->name << " " << o.name;
      }
    }
    EXPECT_NE(help.find("-h, --help"), std::string::npos) << v->name;
    EXPECT_NE(help.find("\nexit status:\n  "), std::string::npos) << v->name;
    EXPECT_NE(help.find("\nexample:\n  uffdlazy "), std::string::npos) << help;
    for (size_t at = 0, nl; at < help.size(); at = nl + 1) {
      nl = help.find('\n', at);
      EXPECT_LE(nl - at, 80u) << v->name << ": a help line wider than 80 columns: " << help.substr(at, nl - at);
    }
  }
}

TEST(CliHelp, HelpVerbAndDashDashHelpPrintTheSameForEveryVerb) {
  for (const VerbSpec* v : all_verbs()) {
    const Output a = shell(kCli + " help " + v->name + " 2>&1");
    const Output b = shell(kCli + " " + v->name + " --help 2>&1");
    EXPECT_EQ(a.status, 0) << v->name << ": " << a.out;
    EXPECT_EQ(b.status, 0) << v->name;
    EXPECT_EQ(a.out, b.out) << v->name;
    EXPECT_EQ(a.out, help_of(*v)) << v->name;
  }
  const Output none = shell(kCli + " help no-such-verb 2>&1");
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.out.find("uffdlazy help: unknown command 'no-such-verb'"), std::string::npos) << none.out;
}

TEST(CliHelp, VersionPrintsTheReleaseAndCommitBothWays) {
  const Output a = shell(kCli + " --version");
  const Output b = shell(kCli + " version");
  EXPECT_EQ(a.status, 0);
  EXPECT_EQ(b.status, 0);
  EXPECT_EQ(a.out, std::string("uffdlazy ") + UFFDLAZY_VERSION_STRING + "\n");
  EXPECT_EQ(a.out, b.out);
}

TEST(CliHelp, AMissingRequiredOptionOrOperandIsNamedOnOneLineBeforeTheUsage) {
  const Output plot = shell(kCli + " plot run.json 2>&1");
  EXPECT_EQ(plot.status, 2);
  EXPECT_EQ(plot.out.rfind("uffdlazy plot: missing -o OUT.svg\nusage: uffdlazy plot ", 0), 0u) << plot.out;
  const Output record = shell(kCli + " record -- true 2>&1");
  EXPECT_EQ(record.status, 2);
  EXPECT_EQ(record.out.rfind("uffdlazy record: missing -o FILE|URL\n", 0), 0u) << record.out;
  const Output inspect = shell(kCli + " inspect 2>&1");
  EXPECT_EQ(inspect.status, 2);
  EXPECT_EQ(inspect.out.rfind("uffdlazy inspect: missing FILE|URL\n", 0), 0u) << inspect.out;
}

// man/uffdlazy.1.scd: the text of "## VERB" up to the next section.
std::string man_section(const std::string& man, const std::string& verb) {
  const size_t at = man.find("\n## " + verb + "\n");
  if (at == std::string::npos) return "";
  const size_t end = man.find("\n#", at + 1);
  return man.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

TEST(CliHelp, TheManPageDescribesEveryOptionOfEveryVerbAndNoOther) {
  const std::string man = slurp(std::string(UFFDLAZY_SOURCE_DIR) + "/man/uffdlazy.1.scd");
  ASSERT_FALSE(man.empty());
  for (const VerbSpec* v : all_verbs()) {
    const std::string section = man_section(man, v->name);
    ASSERT_FALSE(section.empty()) << "man/uffdlazy.1.scd has no section '## " << v->name << "'";
    std::set<std::string> known;
    for (const OptionSpec& o : v->options) {
      // Each option starts a definition: "*--name*" at the start of a line.
      EXPECT_NE(section.find("\n*" + std::string(o.alias ? o.alias : o.name) + "*"), std::string::npos)
          << "uffdlazy.1: " << v->name << " does not describe " << o.name;
      if (o.alias) {
        EXPECT_NE(section.find("*" + std::string(o.name) + "*"), std::string::npos) << v->name << o.name;
      }
      known.insert(o.name);
      if (o.alias) known.insert(o.alias);
    }
    // And every definition in the section is an option the verb accepts.
    std::istringstream lines(section);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("*-", 0) != 0) continue;
      const std::string name = line.substr(1, line.find('*', 1) - 1);
      EXPECT_TRUE(known.count(name)) << "uffdlazy.1 describes " << name << " for " << v->name
                                     << ", which its parser does not accept";
    }
  }
}

TEST(CliHelp, TheEnvironmentPageDescribesEveryVariableTheShimAndTheCommandsKnow) {
  const std::string man = slurp(std::string(UFFDLAZY_SOURCE_DIR) + "/man/uffdlazy-environment.7.scd");
  ASSERT_FALSE(man.empty());
  // The shim names the variables it knows when it refuses an unknown one.
  char unknown[] = "UFFDLAZY_NO_SUCH_VARIABLE=1";
  char* envp[] = {unknown, nullptr};
  Config cfg;
  LineWriter err;
  ASSERT_FALSE(parse_config(envp, &cfg, &err));
  const std::string message(err.data(), err.size());
  const size_t at = message.find("(known: ");
  ASSERT_NE(at, std::string::npos) << message;
  std::istringstream names(message.substr(at + 8, message.find(')', at) - at - 8));
  size_t count = 0;
  for (std::string name; std::getline(names, name, ',');) {
    while (!name.empty() && name[0] == ' ') name.erase(0, 1);
    EXPECT_NE(man.find("*UFFDLAZY_" + name + "*"), std::string::npos) << "uffdlazy-environment.7: UFFDLAZY_" << name;
    count++;
  }
  EXPECT_GE(count, 20u) << message;
  for (const VerbSpec* v : all_verbs()) {
    for (const OptionSpec& o : v->options) {
      if (o.variable) {
        EXPECT_NE(man.find(std::string("*") + o.variable + "*"), std::string::npos) << o.variable;
      }
    }
  }
}

// Completes `line` with the bash script `uffdlazy completion bash` prints, as bash would on TAB,
// and returns the candidates, one per line.
std::string bash_complete(const std::string& line, const std::string& dir) {
  const std::string script = dir + "/complete.sh";
  std::ofstream(script) << "source <(\"$1\" completion bash)\n"
                           "COMP_WORDBREAKS=$' \\t\\n\"\\'><=;|&(:'\n"
                           "COMP_LINE=$2; COMP_POINT=${#2}\n"
                           "read -ra COMP_WORDS <<<\"$2\"; [[ $2 == *' ' ]] && COMP_WORDS+=('')\n"
                           "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                           "cd \"$3\" && _uffdlazy && printf '%s\\n' \"${COMPREPLY[@]}\" | LC_ALL=C sort\n";
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  return shell("bash " + script + " " + quote(kCli) + " " + quote(line) + " " + quote(dir) + " 2>&1").out;
}

class CliCompletion : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(::testing::TempDir()) + "/cli_completion." + std::to_string(getpid());
    ASSERT_EQ(system(("mkdir -p " + dir_ + "/sub && touch " + dir_ + "/app.snap " + dir_ + "/app.img").c_str()), 0);
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }
  std::string complete(const std::string& line) { return bash_complete(line, dir_); }
  std::string dir_;
};

TEST_F(CliCompletion, BashOffersEveryVerbAndEveryOptionOfEachVerb) {
  const std::string verbs = complete("uffdlazy ");
  for (const VerbSpec* v : all_verbs()) EXPECT_NE(verbs.find(std::string(v->name) + "\n"), std::string::npos) << verbs;
  EXPECT_EQ(complete("uffdlazy re"), "record\nreport\nrestore\nresume\n");
  for (const VerbSpec* v : all_verbs()) {
    const std::string offered = complete(std::string("uffdlazy ") + v->name + " -");
    for (const OptionSpec& o : v->options) {
      EXPECT_NE(offered.find(std::string(o.name) + "\n"), std::string::npos) << v->name << ": " << offered;
      if (o.alias) {
        EXPECT_NE(offered.find(std::string(o.alias) + "\n"), std::string::npos) << v->name << ": " << offered;
      }
    }
  }
}

TEST_F(CliCompletion, BashOffersOptionValuesFilesAndTheProgram) {
  EXPECT_EQ(complete("uffdlazy restore app.snap --prefetch "), "all\nnone\nws\n");
  EXPECT_EQ(complete("uffdlazy resume app.img --prefetch n"), "none\n");
  EXPECT_EQ(complete("uffdlazy record --at "), "after=\nexit\nsignal=USR2\n");
  // bash splits at '=' and replaces only what follows it.
  EXPECT_EQ(complete("uffdlazy record --at=si"), "signal=USR2\n");
  EXPECT_EQ(complete("uffdlazy record --at signal=U"), "USR2\n");
  EXPECT_EQ(complete("uffdlazy checkpoint -o x --then "), "continue\nstop\n");
  EXPECT_EQ(complete("uffdlazy trace t --format "), "chrome\ncsv\n");
  EXPECT_EQ(complete("uffdlazy restore --verify "), "none\npage\n");
  EXPECT_EQ(complete("uffdlazy inspect app."), "app.img\napp.snap\n");
  EXPECT_EQ(complete("uffdlazy restore app.snap --ws-record s"), "sub\n");
  EXPECT_EQ(complete("uffdlazy verify app.img ap"), "app.img\napp.snap\n");
  EXPECT_EQ(complete("uffdlazy help chec"), "checkpoint\n");
  EXPECT_EQ(complete("uffdlazy completion "), "bash\nzsh\n");
  // A size has no candidates to offer.
  EXPECT_EQ(complete("uffdlazy run --min-size "), "\n");
  // The program: a command first, then its arguments (files here, without bash-completion).
  EXPECT_NE(complete("uffdlazy restore app.snap -- bas").find("bash\n"), std::string::npos);
  EXPECT_NE(complete("uffdlazy run --stats bas").find("bash\n"), std::string::npos);
  EXPECT_EQ(complete("uffdlazy run -- cat app.s"), "app.snap\n");
  // Options after the program belong to it.
  EXPECT_EQ(complete("uffdlazy run -- cat --st"), "\n");
}

TEST(CliCompletionZsh, TheZshScriptParsesAndCoversEveryOption) {
  const Output script = shell(kCli + " completion zsh");
  ASSERT_EQ(script.status, 0);
  EXPECT_EQ(script.out.rfind("#compdef uffdlazy\n", 0), 0u);
  for (const VerbSpec* v : all_verbs()) {
    EXPECT_NE(script.out.find(std::string("    ") + v->name + ")\n"), std::string::npos) << v->name;
    for (const OptionSpec& o : v->options) EXPECT_NE(script.out.find(o.name), std::string::npos) << o.name;
  }
  const Output syntax = shell(kCli + " completion zsh | zsh -n 2>&1");
  EXPECT_EQ(syntax.status, 0) << syntax.out;
}

}  // namespace
}  // namespace uffdlazy::cli
