#include "tools/completion.h"

#include <string_view>

namespace uffdlazy::cli {

namespace {

// The words a shell offers for a verb's options: the long names and aliases, and --help.
std::string option_words(const VerbSpec& v, bool with_value) {
  std::string out;
  auto add = [&](const char* w) {
    if (!out.empty()) out += ' ';
    out += w;
  };
  for (const OptionSpec& o : v.options) {
    if ((o.value != nullptr) != with_value) continue;
    if (o.alias) add(o.alias);
    add(o.name);
  }
  if (!with_value) {
    add("-h");
    add("--help");
  }
  return out;
}

std::string verb_names(std::span<const VerbSpec* const> verbs) {
  std::string out;
  for (const VerbSpec* v : verbs) out += std::string(out.empty() ? "" : " ") + v->name;
  return out;
}

// How bash completes one thing: a file, one of some words, a verb, or nothing.
std::string bash_action(Complete how, const char* words, const std::string& verbs) {
  switch (how) {
    case Complete::kFile: return "_uffdlazy_files \"$c\"";
    case Complete::kWords: return "_uffdlazy_words '" + std::string(words ? words : "") + "' \"$c\"";
    case Complete::kVerb: return "_uffdlazy_words '" + verbs + "' \"$c\"";
    case Complete::kNothing: break;
  }
  return "COMPREPLY=()";
}

// Text for zsh's single-quoted specs: no quote, no brackets, no colon breaking the spec.
std::string zsh_text(std::string_view s, size_t max) {
  // The first clause is enough for a completion menu.
  size_t end = s.find_first_of(";(");
  if (end == std::string_view::npos) end = s.size();
  s = s.substr(0, end);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  std::string out;
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else if (c == '[' || c == ']' || c == ':') out += ' ';
    else out += c;
  }
  if (out.size() > max) {
    out.resize(max);
    out += "...";
  }
  return out;
}

std::string zsh_action(Complete how, const char* words, const std::string& verbs) {
  switch (how) {
    case Complete::kFile: return "_files";
    case Complete::kWords: return "(" + std::string(words ? words : "") + ")";
    case Complete::kVerb: return "(" + verbs + ")";
    case Complete::kNothing: break;
  }
  return " ";
}

const char kBashFunctions[] = R"BASH(
# _uffdlazy_words WORDS CUR: the words that start with CUR.
_uffdlazy_words() {
  local IFS=$' \t\n' w
  COMPREPLY=()
  for w in $1; do [[ $w == "$2"* ]] && COMPREPLY+=("$w"); done
  # A word that asks for more (after=, signal=) is not finished: no space after it.
  if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *= ]]; then compopt -o nospace 2>/dev/null; fi
  return 0
}

# _uffdlazy_files CUR: paths that start with CUR.
_uffdlazy_files() {
  local IFS=$'\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY=($(compgen -f -- "$1"))
  return 0
}

_uffdlazy() {
  # The words before the cursor, split at blanks only (bash would also split at '=').
  local line=${COMP_LINE:0:COMP_POINT} cur prefix=
  local -a words
  read -ra words <<<"$line"
  if [[ -z $line || $line == *[[:space:]] ]]; then cur=; else cur=${words[-1]}; unset 'words[-1]'; fi
  local n=${#words[@]}
  if ((n < 2)); then
    _uffdlazy_words "$_uffdlazy_verbs --help --version" "$cur"
    return 0
  fi
  local verb=${words[1]} _ul_flags _ul_valued _ul_operands _ul_program _ul_operand
  _uffdlazy_spec "$verb" || return 0
  local i=2 w operands=0 program=-1 pending= ended=0
  while ((i < n)); do
    w=${words[i]}
    if ((!ended)) && [[ $w == -- ]]; then
      ended=1
      if ((_ul_program)); then program=$((i + 1)); break; fi
    elif ((!ended)) && [[ " $_ul_valued " == *" $w "* ]]; then
      if ((i + 1 == n)); then pending=$w; break; fi
      ((i++))
    elif ((!ended)) && [[ $w == -?* ]]; then
      :
    elif [[ $_ul_operands == many ]] || ((operands < _ul_operands)); then
      ((operands++))
    elif ((_ul_program)); then
      program=$i
      break
    fi
    ((i++))
  done
  if ((program >= 0)); then
    # The program and its arguments: completed as for that command line, when bash-completion can.
    if ((program == n)); then
      local IFS=$'\n'
      COMPREPLY=($(compgen -c -- "$cur"))
      return 0
    fi
    local at=$((COMP_CWORD - (n - program)))
    if declare -F _command_offset >/dev/null && ((at > 0)) && [[ ${COMP_WORDS[at]} == "${words[program]}" ]]; then
      _command_offset "$at"
    else
      _uffdlazy_files "$cur"
    fi
    return 0
  fi
  if [[ -n $pending ]]; then
    _uffdlazy_value "$verb" "$pending" "$cur"
  elif ((!ended)) && [[ $cur == --*=* ]]; then
    # --name=VALUE: complete the value, then hand bash whole words again.
    _uffdlazy_value "$verb" "${cur%%=*}" "${cur#*=}"
    prefix=${cur%%=*}=
  elif ((!ended)) && [[ $cur == -* ]]; then
    _uffdlazy_words "$_ul_flags $_ul_valued" "$cur"
  elif [[ $_ul_operands == many ]] || ((operands < _ul_operands)); then
    _uffdlazy_operand "$verb" "$cur"
  elif ((_ul_program)); then
    local IFS=$'\n'
    COMPREPLY=($(compgen -c -- "$cur"))
  fi
  # bash replaces only the part of the word after its last '=' (COMP_WORDBREAKS).
  if [[ $COMP_WORDBREAKS == *=* && $prefix$cur == *=* ]]; then
    local strip=${cur%=*}=
    local k
    for k in "${!COMPREPLY[@]}"; do
      COMPREPLY[k]=${prefix}${COMPREPLY[k]}
      COMPREPLY[k]=${COMPREPLY[k]#"$strip"}
    done
  fi
  return 0
}

complete -F _uffdlazy uffdlazy
)BASH";

}  // namespace

std::string bash_completion(std::span<const VerbSpec* const> verbs) {
  const std::string names = verb_names(verbs);
  std::string s =
      "# bash completion for uffdlazy: verbs, options, option values, files and the program to run.\n"
      "# Generated from uffdlazy's option tables by `uffdlazy completion bash`; without installing it:\n"
      "#   source <(uffdlazy completion bash)\n"
      "\n_uffdlazy_verbs='" + names + "'\n"
      "\n# _uffdlazy_spec VERB: options without a value (_ul_flags) and with one (_ul_valued), how many\n"
      "# words come before the program or at all (_ul_operands: a number or many), and whether a program\n"
      "# follows (_ul_program).\n"
      "_uffdlazy_spec() {\n  case $1 in\n";
  for (const VerbSpec* v : verbs) {
    s += "    " + std::string(v->name) + ") _ul_flags='" + option_words(*v, false) + "' _ul_valued='" +
         option_words(*v, true) + "' _ul_operands=" +
         (v->max_operands == VerbSpec::kAnyNumber ? std::string("many") : std::to_string(v->max_operands)) +
         " _ul_program=" + (v->takes_program ? "1" : "0") + " ;;\n";
  }
  s += "    *) return 1 ;;\n  esac\n}\n";
  s += "\n# _uffdlazy_value VERB OPTION CUR: the option's values.\n_uffdlazy_value() {\n  local c=$3\n  case \"$1 $2\" in\n";
  for (const VerbSpec* v : verbs) {
    for (const OptionSpec& o : v->options) {
      if (!o.value || o.complete == Complete::kNothing) continue;
      std::string pattern = "'" + std::string(v->name) + " " + o.name + "'";
      if (o.alias) pattern += "|'" + std::string(v->name) + " " + o.alias + "'";
      s += "    " + pattern + ") " + bash_action(o.complete, o.words, names) + " ;;\n";
    }
  }
  s += "    *) COMPREPLY=() ;;\n  esac\n}\n";
  s += "\n# _uffdlazy_operand VERB CUR: the verb's arguments before the program.\n_uffdlazy_operand() {\n"
       "  local c=$2\n  case $1 in\n";
  for (const VerbSpec* v : verbs) {
    if (!v->max_operands || v->operand_complete == Complete::kNothing) continue;
    s += "    " + std::string(v->name) + ") " + bash_action(v->operand_complete, v->operand_words, names) + " ;;\n";
  }
  s += "    *) COMPREPLY=() ;;\n  esac\n}\n";
  s += kBashFunctions;
  return s;
}

std::string zsh_completion(std::span<const VerbSpec* const> verbs) {
  const std::string names = verb_names(verbs);
  std::string s =
      "#compdef uffdlazy\n"
      "# zsh completion for uffdlazy: verbs, options, option values, files and the program to run.\n"
      "# Generated from uffdlazy's option tables by `uffdlazy completion zsh`.\n"
      "\n_uffdlazy() {\n"
      "  local -a verbs\n"
      "  verbs=(\n";
  for (const VerbSpec* v : verbs) s += "    '" + std::string(v->name) + ":" + zsh_text(v->summary, 70) + "'\n";
  s += "  )\n"
       "  if (( CURRENT == 2 )); then\n"
       "    _describe -t commands 'uffdlazy command' verbs\n"
       "    return\n"
       "  fi\n"
       "  local verb=${words[2]}\n"
       "  shift words\n"
       "  (( CURRENT-- ))\n"
       "  case $verb in\n";
  for (const VerbSpec* v : verbs) {
    s += "    " + std::string(v->name) + ")\n      _arguments -S \\\n";
    for (const OptionSpec& o : v->options) {
      const std::string text = zsh_text(o.help, 60);
      std::string value;
      if (o.value) value = ":" + zsh_text(o.value, 20) + ":" + zsh_action(o.complete, o.words, names);
      if (o.alias) {
        s += "        '(" + std::string(o.alias) + " " + o.name + ")'{" + o.alias + "," + o.name + "}'[" + text + "]" +
             value + "' \\\n";
      } else {
        s += "        '" + std::string(o.name) + "[" + text + "]" + value + "' \\\n";
      }
    }
    s += "        '(- *)'{-h,--help}'[print the help]' \\\n";
    const std::string operand = zsh_text(v->operand ? v->operand : "argument", 20);
    const std::string action = zsh_action(v->operand_complete, v->operand_words, names);
    if (v->max_operands == VerbSpec::kAnyNumber) {
      s += "        '*:" + operand + ":" + action + "' \\\n";
    } else {
      for (size_t k = 0; k < v->max_operands; k++) {
        s += "        '" + std::string(k < v->min_operands ? "" : ":") + ":" + operand + ":" + action + "' \\\n";
      }
    }
    if (v->takes_program) s += "        '*:::program and its arguments:_normal' \\\n";
    s += "        && return\n      ;;\n";
  }
  s += "  esac\n"
       "  return 1\n"
       "}\n"
       "\n_uffdlazy \"$@\"\n";
  return s;
}

}  // namespace uffdlazy::cli
