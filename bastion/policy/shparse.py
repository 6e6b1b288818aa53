"""A lenient bash reader that lists every simple command that could run.

Why not only bashlex: bashlex raises on everyday bash (``[[ ]]``, ``$(( ))``, ``case``,
arrays, ``for ((;;))``) and misreads quoted here-doc delimiters, which can hide a
command. This reader is built for one question, "what could run?", so it over-approximates:
reserved words in command position (``if then do done { } !`` ...) are skipped, function
bodies and alias bodies count as run, both sides of ``&&``/``||`` count, and every command
and process substitution (in words, ``${...}``, arithmetic, here-doc bodies, redirect
targets, ``[[ ]]``) is listed with the rest. bashlex still runs as a cross-check
(see ``crosscheck.py``) and the most restrictive reading wins. This module is the
grammar (lists, pipelines, compound commands, functions, ``case``, assignments, and the
balance of ``if/fi``, ``do/done``, ``{ }``); words and expansions are read in ``shlexer``.

Limits, in the open: nothing is evaluated. Variables, substitutions and arithmetic
produce dynamic words (see ``words.DYN``); the caller decides what that means (in command
position: unknown). Syntax we do not read raises ``ShellSyntaxError`` and the policy
answers on_unknown: unbalanced quotes or parentheses, an unbalanced compound command
(``if`` without ``fi``), a here-doc without its end, a separator with no command before
or after it, nesting deeper than ``MAX_DEPTH``, more than ``MAX_COMMANDS`` commands, a
parse past its deadline. Input is read once, character by character, so time grows
linearly with its size.
"""

from __future__ import annotations

import re
import time

from .arith import ArithNames, numeric_value, printers_used
from .shlexer import (
    MAX_COMMANDS,
    MAX_DEPTH,
    META,
    Lexer,
    Redirect,
    SimpleCommand,
)
from .varnames import DECLARERS, name_words
from .words import DYN, AnalysisTimeout, ShellSyntaxError, Word

__all__ = ["Redirect", "SimpleCommand", "parse", "ShellSyntaxError", "MAX_DEPTH", "MAX_COMMANDS"]

#: A shell variable name.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_RESERVED_SKIP = {
    "{",
    "}",
    "!",
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "time",
    "coproc",
    "esac",
}
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
#: Builtins whose arguments may be array assignments (``declare -A m=([k]=v)``).
#: Builtins that set the variables they name (and ``let``, which does arithmetic).
_SETS_NAMES = frozenset(
    "read declare typeset local export readonly mapfile readarray printf getopts unset let wait "
    "for select".split()
)
_ARITH_TESTS = frozenset({"-eq", "-ne", "-lt", "-le", "-gt", "-ge"})
_SEPARATORS = {";", "&", "&&", "||", "\n", ";;", ";&", ";;&", "|", "|&"}


class _Parser(Lexer):
    """The grammar: lists, pipelines, compound commands, functions, case, assignments."""

    def names_set(self, words: list[Word]) -> None:
        """A builtin that sets variables: they are no longer known numbers (``read x``),
        and ``let`` is arithmetic on its arguments."""
        if words[0].value == "let":
            for w in words[1:]:
                self.arith_reads(w.raw.replace('"', "").replace("'", ""))
            return
        head, args = words[0].value, words[1:]
        declare_assoc = head in DECLARERS and any(
            w.value.startswith("-") and "A" in w.value for w in args
        )
        integer = head in DECLARERS and any(
            w.value.startswith("-") and "i" in w.value[1:] for w in args
        )
        for w in name_words(head, args):
            self.subscript_reads(w, declare_assoc)
            name = w.value.split("=", 1)[0].split("[", 1)[0]
            value = w.raw.split("=", 1)[1] if "=" in w.raw else None
            if w.dynamic and (value is None or DYN in w.value.split("=", 1)[0]):
                self.sets("*")  # export $(cat .env): any name, OPTIND too
            if head != "unset":
                self.sets(name, number=value is not None and numeric_value(value))
            if integer:
                self.integers.add(name)
            if (integer or name in self.integers) and not (
                value is not None
                and (numeric_value(value) or self.static(w.value.partition("=")[2], w.dynamic))
            ):  # declare -i n=$(cat f), read n into an integer: the value is evaluated
                self.emit(SimpleCommand(tags={"arith-runtime"}))
        if head in DECLARERS and any(w.value[:1] == "-" and "n" in w.value for w in args):
            self.sets("*")  # declare -n r=x: writes through r reach a name we may not see
        for w in args:
            if w.value.startswith("-"):
                continue
            name = w.value.split("=", 1)[0].split("[", 1)[0]
            if declare_assoc:
                self.assoc.add(name)
            value = w.raw.split("=", 1)[1] if "=" in w.raw else None
            if value is not None and (numeric_value(value) or self.static(w.value, w.dynamic)):
                self.tainted.discard(name)
                self.digit_uses |= printers_used(value)
            else:
                self.tainted.add(name)

    def static(self, value: str, dynamic: bool) -> bool:
        """A value known here that arithmetic may read safely: no substitution text, and
        no name of a run-time value (``m=n; (( m ))`` evaluates n)."""
        return (
            not dynamic
            and not _holds_code(value)
            and not any(x in self.tainted for x in _NAME.findall(value))
        )

    def subscript_reads(self, word: Word, assoc: bool = False) -> None:
        """A variable name with a subscript (``unset 'a[$(cat f)]'``, ``printf -v
        'a[n]'``, ``[[ -v a[$i] ]]``): for an indexed array the subscript is arithmetic;
        a name only known at run time may hold one (``[[ -v $x ]]``)."""
        target = word.raw.replace('"', "").replace("'", "").split("=", 1)[0]
        if word.dynamic and DYN in word.value.split("=", 1)[0] and "[" not in target:
            self.emit(SimpleCommand(tags={"runtime-names"}))
            return
        if "[" in target and target.endswith("]") and not assoc:
            if target.split("[", 1)[0] not in self.assoc:
                self.arith_reads(target[target.index("[") + 1 : -1])

    def assignment_end(self) -> int | None:
        """End of ``NAME=`` (or ``NAME[i]+=``) at the cursor, else None. Line
        continuations inside it are removed first, as bash does (``A\\<newline>B=1 cmd``
        assigns AB)."""
        m = _ASSIGN.match(self.s, self.i)
        if m:
            return m.end()
        if "\\\n" not in self.s[self.i : self.i + 256]:
            return None
        kept: list[int] = []  # source index of each character kept
        j = self.i
        while j < self.n and len(kept) < 256:
            if self.s.startswith("\\\n", j):
                j += 2
                continue
            kept.append(j)
            j += 1
        m = _ASSIGN.match("".join(self.s[k] for k in kept))
        return kept[m.end() - 1] + 1 if m else None

    # ---- grammar ------------------------------------------------------------------
    def parse_list(self, stops: frozenset[str]) -> str:
        """Read commands until one of ``stops`` (consumed) or the end; return the stop."""
        while True:
            if time.monotonic() > self.deadline:
                raise AnalysisTimeout("parse took too long")
            op = self.peek_op()
            if op == "EOF":
                if stops - {"esac"} or self.pending_cmd:
                    raise self.fail("unexpected end of input")
                return "EOF"
            if op in stops:
                if self.pending_cmd:
                    raise self.fail(f"unexpected {op!r}")
                self.i += len(op)
                self.have_cmd = True
                return op
            if op == "\n":
                self.newline()
                self.pipe_src = None
                if not self.pending_cmd:
                    self.have_cmd = False
                continue
            if op in _SEPARATORS and (
                not self.have_cmd or self.pending_cmd or op in (";;", ";&", ";;&")
            ):
                raise self.fail(f"unexpected {op!r}")
            if op in ("|", "|&"):
                self.i += len(op)
                self.pipe_src = self.out[-1] if self.out else None
                self.pending_cmd = True
                continue
            if op in _SEPARATORS:
                self.i += len(op)
                self.pipe_src = None
                self.pending_cmd = op in ("&&", "||")
                self.have_cmd = False
                continue
            if op == ")":
                raise self.fail("unexpected )")
            self.pending_cmd = False
            self.have_cmd = True
            if op == "(":
                if self.depth + len(self.context) > MAX_DEPTH:
                    raise self.fail("nesting too deep")
                self.have_cmd = False
                self.open_paren()
                self.have_cmd = True
                self.trailing_redirects()
                continue
            stop = self.parse_command(stops)
            if stop:
                return stop

    def trailing_redirects(self) -> None:
        """Redirects after a compound command apply to all of it: keep them as a command."""
        cmd = SimpleCommand()
        while True:
            self.skip_blanks()
            red = self.read_redirect()
            if red is None:
                break
            cmd.redirects.append(red)
        if cmd.redirects:
            self.emit(cmd)

    def word_at_command_position(self) -> str | None:
        m = re.compile(r"[^\s;&|()<>'\"\\$`]+").match(self.s, self.i)
        if m and (m.end() >= self.n or self.s[m.end()] in META):
            return m.group()
        return None

    def parse_command(self, stops: frozenset[str]) -> str | None:
        """One simple command (or a compound's header) at command position."""
        word = self.word_at_command_position()
        if word == "esac" and "esac" in stops:
            self.i += 4
            return "esac"
        if word in _RESERVED_SKIP:
            self.reserved(word)
            self.i += len(word)
            if word == "time":
                self.skip_blanks()
                if self.s.startswith("-p", self.i):
                    self.i += 2
            return None
        if word in ("for", "select"):
            self.open["do"] += 1
            self.i += len(word)
            self.skip_blanks()
            if self.s.startswith("((", self.i):
                end = self.arith_end(self.i + 2)
                if end is None:
                    raise self.fail("unterminated for ((")
                self.arith(self.i + 2, end)
                self.i = end + 2
                return None
            names: list[Word] = []
            while self.peek_op() is None:  # NAME [in words...]: substitutions still run
                names += self.read_words()
            self.names_set([Word(word)] + names[:1])
            if names and _NAME.fullmatch(names[0].value):
                # the loop assigns NAME each word (or "$@"): as NAME=WORD to the rules
                # (for GIT_PAGER in 'CMD'; do git -p log; done sets the pager)
                given = names[2:] if len(names) > 1 and names[1].value == "in" else []
                values = given if len(names) > 1 else [Word(DYN, '"$@"', True)]
                if values and all(not v.dynamic and _INTEGER.fullmatch(v.value) for v in values):
                    self.tainted.discard(names[0].value)  # for i in 1 2 3, for i in {1..9}
                    self.sets(names[0].value, number=True)
                else:
                    self.sets(names[0].value)
                if values:
                    loop = SimpleCommand(assigns=[(names[0].value, w) for w in values])
                    self.emit(loop)
                    loop.context = " ".join(x for x in (f"{word} loop", loop.context) if x)
            return None
        if word == "case":
            self.i += 4
            return self.parse_case()
        if word == "function":
            self.i += len(word)
            self.skip_blanks()
            name = self.word_at_command_position() or ""
            self.i += len(name)
            self.skip_blanks()
            if self.s.startswith("()", self.i):
                self.i += 2
            return self.function_body(name, stops)
        if word == "[[":
            self.i += 2
            self.cond = True
            words: list[Word] = []
            try:
                while (op := self.peek_op()) != "]]":
                    if op in ("EOF", ";", "\n"):
                        raise self.fail("unterminated [[")
                    words += self.read_words()
                self.i += 2
            finally:
                self.cond = False
            for k, w in enumerate(words):  # [[ $n -gt 3 ]]: both operands are arithmetic
                if w.raw in _ARITH_TESTS:
                    for operand in words[max(k - 1, 0) : k + 2 : 2]:
                        self.arith_reads(operand.raw.replace('"', ""))
                elif w.raw == "-v" and k + 1 < len(words):  # [[ -v a[$i] ]]
                    self.subscript_reads(words[k + 1])
            return None
        if word and "=" not in word:
            j = self.i + len(word)
            m = re.compile(r"[ \t]*\([ \t]*\)").match(self.s, j)
            if m:
                self.i = m.end()
                return self.function_body(word, stops)
        return self.simple_command()

    def reserved(self, word: str) -> None:
        """Keep count of compound commands opened and closed: unbalanced ones fail."""
        opener = {"if": "fi", "{": "}", "while": "do", "until": "do"}.get(word)
        if opener:
            self.open[opener] += 1
        elif word == "do":
            self.close("do")
            self.open["done"] += 1
        elif word in ("fi", "done", "}"):
            self.close(word)
        elif word in ("then", "elif", "else") and not self.open["fi"]:
            raise self.fail(f"unexpected {word!r}")
        if word in ("fi", "done", "}", "esac"):
            self.have_cmd = True
        else:
            self.have_cmd = False

    def close(self, word: str) -> None:
        if self.open[word] <= 0:
            raise self.fail(f"unexpected {word!r}")
        self.open[word] -= 1

    def finish(self) -> None:
        """At the end of input: every compound closed, every here-doc read."""
        if self.pending and not self.partial:
            raise self.fail("here-document without its end")
        for word, count in self.open.items():
            if count:
                raise self.fail(f"missing {word!r}")

    def open_paren(self) -> None:
        """At ``(``: an arithmetic command ``(( ... ))`` or a subshell ``( ... )``."""
        self.i += 1
        end = self.arith_end(self.i + 1) if self.s.startswith("(", self.i) else None
        if end is not None:
            self.arith(self.i + 1, end)
            self.i = end + 2
        else:
            self.context.append("inside a subshell")
            self.parse_list(frozenset({")"}))
            self.context.pop()

    def function_body(self, name: str, stops: frozenset[str]) -> str | None:
        """A function definition: its body counts as run; self-calls are a finding."""
        start = len(self.out)
        self.context.append(f"in function {name}")
        while self.peek_op() == "\n":
            self.newline()
        word = self.word_at_command_position()
        if word == "{":
            self.i += 1
            depth = 1
            while depth:
                op = self.peek_op()
                if op == "EOF":
                    raise self.fail("unterminated function body")
                w = self.word_at_command_position() if op is None else None
                if w == "}":
                    depth -= 1
                    self.i += 1
                    continue
                if w == "{":
                    depth += 1
                    self.i += 1
                    continue
                if op in ("\n", ";", "&", "&&", "||", "|", "|&"):
                    if op == "\n":
                        self.newline()
                    else:
                        self.i += len(op)
                    if op in ("|", "|&"):
                        self.pipe_src = self.out[-1] if self.out else None
                    continue
                if op == "(":
                    self.open_paren()
                    continue
                stop = self.parse_command(frozenset())
                if stop:
                    raise self.fail("unexpected " + stop)
        elif self.peek_op() == "(":
            self.open_paren()
        else:
            self.parse_command(frozenset())
        self.context.pop()
        self.trailing_redirects()
        for cmd in self.out[start:]:
            if cmd.words and cmd.words[0].value == name:
                cmd.tags.add("recursive-function")
        self.functions.append(name)
        self.defined.add(name)
        self.calls[name] = {c.words[0].value for c in self.out[start:] if c.words}
        if self.calls_itself(name):  # a(){ b|b& }; b(){ a|a& }: recursion through others
            self.emit(SimpleCommand([Word(name)], tags={"recursive-function"}))
        return None

    def calls_itself(self, name: str) -> bool:
        """Whether function ``name`` reaches itself through the functions defined so far."""
        seen: set[str] = set()
        todo = list(self.calls.get(name, ()))
        while todo:
            f = todo.pop()
            if f == name:
                return True
            if f not in seen and f in self.calls:
                seen.add(f)
                todo.extend(self.calls[f])
        return False

    def parse_case(self) -> str | None:
        self.skip_blanks()
        self.read_words()
        while self.peek_op() == "\n":
            self.newline()
        if self.word_at_command_position() != "in":
            raise self.fail("case without in")
        self.i += 2
        while True:
            while (op := self.peek_op()) in ("\n", ";;", ";&", ";;&", ";"):
                if op == "\n":
                    self.newline()
                else:
                    self.i += len(op)
            if op == "EOF":
                raise self.fail("unterminated case")
            if self.word_at_command_position() == "esac":
                self.i += 4
                return None
            if op == "(":
                self.i += 1
            while True:  # patterns: w | w | w )
                op = self.peek_op()
                if op == ")":
                    self.i += 1
                    break
                if op == "|":
                    self.i += 1
                    continue
                if op is not None:
                    raise self.fail("bad case pattern")
                start = self.i
                self.read_word_chars(stop="|)")
                if self.i == start:
                    raise self.fail("bad case pattern")
            stop = self.parse_list(frozenset({";;", ";&", ";;&", "esac"}))
            if stop in ("esac", "EOF"):
                return None

    def array(self, assoc: bool = False) -> None:
        """The elements of ``(...)`` in an array assignment (cursor at the parenthesis);
        an indexed array's ``[KEY]=`` is arithmetic (``a=([n]=1)``)."""
        self.i += 1
        while (op := self.peek_op()) != ")":
            if op not in (None, "\n"):
                raise self.fail("unterminated array")
            if op == "\n":
                self.newline()
                continue
            for w in self.read_words():
                if w.raw.startswith("[") and "]=" in w.raw:
                    key = "x" + w.raw.split("]=", 1)[0] + "]"
                    self.subscript_reads(Word(key, key), assoc)
        self.i += 1

    def simple_command(self) -> str | None:
        cmd = SimpleCommand(piped_from=self.pipe_src)
        self.pipe_src = None
        outer_hist, self.hist = self.hist, False
        while True:
            op = self.peek_op()
            if op is not None:
                break
            if len(cmd.words) & 255 == 255 and time.monotonic() > self.deadline:
                raise AnalysisTimeout("parse took too long")
            if (v := _ARRAY_FD.match(self.s, self.i)) and v.group(1) not in self.assoc:
                self.arith_reads(v.group(2))  # {a[i]}>f stores the fd in a[i]
            red = self.read_redirect()
            if red is not None:
                cmd.redirects.append(red)
                continue
            start = self.i
            if not cmd.words:
                m_end = self.assignment_end()
                if m_end is not None:
                    head = self.s[self.i : m_end].replace("\\\n", "")
                    name = head.split("[")[0].rstrip("+=")
                    if "[" in head:  # a[$(cmd)]=1: the subscript is expanded, and run
                        subscript = head[head.index("[") + 1 : head.rindex("]")]
                        self.scan_expansions(subscript)
                        if name not in self.assoc:  # and for an indexed array, evaluated
                            self.arith_reads(subscript)
                    self.i = m_end
                    if self.s.startswith("(", self.i):  # array assignment
                        self.array(name in self.assoc)
                        cmd.assigns.append((name, Word("", self.s[start : self.i], True)))
                        self.tainted.add(name)  # a=("$(cat f)"): (( a[0] )) reads it
                        self.sets(name)
                        continue
                    value_start = self.i
                    chars, mask, dyn = self.read_word_chars()
                    if "q" in mask:
                        self.arith_payload(chars)
                    static = self.static(chars, dyn)
                    if name in self.integers and not (
                        numeric_value(self.s[value_start : self.i]) or static
                    ):  # declare -i n; n=$(cat f): the value is evaluated
                        self.emit(SimpleCommand(tags={"arith-runtime"}))
                    self.sets(name, number=numeric_value(self.s[value_start : self.i]))
                    if numeric_value(self.s[value_start : self.i]) or static:
                        self.tainted.discard(name)
                        self.digit_uses |= printers_used(self.s[value_start : self.i])
                    else:
                        self.tainted.add(name)
                    cmd.assigns.append((name, Word(chars, self.s[start : self.i], dyn)))
                    continue
            elif cmd.words[0].value in DECLARERS and not cmd.words[0].quoted:
                m = _ASSIGN.match(self.s, self.i)
                if m and self.s.startswith("(", m.end()):  # declare -a x=(1 2): an array
                    self.i = m.end()
                    self.array(any(w.value[:1] == "-" and "A" in w.value for w in cmd.words))
                    cmd.words.append(Word(m.group(), self.s[start : self.i], True))
                    continue
            words = self.read_words()
            if self.i == start:
                raise self.fail(f"unexpected {self.s[self.i]!r}")
            cmd.words.extend(words)
        if self.hist:
            cmd.tags.add("history-expansion")
        self.hist = outer_hist
        if op == "(" and len(cmd.words) == 1 and not cmd.assigns and not cmd.redirects:
            # c\<newline>at() { ...; } or 'cat'() ...: bash defines a function (or fails)
            m = _EMPTY_PARENS.match(self.s, self.i)
            if m is None or cmd.words[0].dynamic:
                raise self.fail("unexpected '(' after a command word")
            self.i = m.end()
            return self.function_body(cmd.words[0].value, frozenset())
        run = _without_prefixes(cmd.words)  # builtin read x, command declare -i n
        if run and run[0].value in _SETS_NAMES:
            self.names_set(run)
        if run and run[0].value in ("eval", "source", ".", "alias"):
            self.sets("*")  # they may set any name
        if run and run[0].value in ("test", "["):  # test -v 'a[$i]'
            for k, w in enumerate(run[:-1]):
                if w.value == "-v":
                    self.subscript_reads(run[k + 1])
        if not (cmd.words or cmd.assigns or cmd.redirects):
            raise self.fail("unexpected " + repr(self.s[self.i : self.i + 2]))
        self.emit(cmd)
        return None


_ARRAY_FD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\[([^\]]*)\]\}(?=[<>])")
_INTEGER = re.compile(r"-?[0-9]+")
_PREFIXES = frozenset({"builtin", "command"})


def _without_prefixes(words: list[Word]) -> list[Word]:
    """The words from the builtin that runs: ``builtin read x``, ``command -p let x``."""
    k = 0
    while k < len(words) and words[k].value in _PREFIXES and not words[k].quoted:
        k += 1
        while k < len(words) and words[k].value in ("-p", "--"):
            k += 1
    return words[k:]


_EMPTY_PARENS = re.compile(r"\([ \t]*\)")


def _holds_code(value: str) -> bool:
    """A value whose text is a substitution: ``x='$(cmd)'; echo $(( a[$x] ))`` runs it,
    since bash expands ``$x`` and then the subscript."""
    return "$(" in value or "`" in value or "$[" in value


def parse(
    src: str,
    timeout: float = 0.2,
    partial: bool = False,
    trust: bool = False,
    arith: list[tuple[int, int]] | None = None,
    digits: set[str] | None = None,
    inherited: bool = False,
    names: ArithNames | None = None,
) -> list[SimpleCommand]:
    """Every simple command in ``src``, in source order (substitutions before their user).

    Raises ShellSyntaxError for input we cannot read, including a parse that takes longer
    than ``timeout`` seconds. ``partial``: ``src`` is a piece of a larger input (a command
    the second reader found), so a here-doc's body may lie outside it. ``trust``: the
    caller has checked that nothing in the input can change ``HOME`` or redefine
    ``date``/``id``/``nproc`` (see ``decide.trusted``), so ``$HOME`` reads as ``~`` and
    words whose expansions print only digits (``x.$$``, ``$(date +%F)``) are ``safe``.
    ``arith``: if given, gets the (start, end) of every arithmetic text in ``src``.
    ``digits``: if given, gets the programs whose digits-only output arithmetic trusted
    (``$(( $(date +%s) - 1 ))``); the caller voids that if the input can redefine them.
    ``inherited``: ``src`` is a string another program or ``eval`` runs, whose variables
    its caller may have set (arithmetic then reads only numbers set in ``src``).
    ``names``: gathers the names arithmetic reads and the names set to run-time text,
    for a caller that judges them over several strings (``ArithNames.unsafe``); without
    it, ``src`` alone is judged.
    """
    p = _Parser(src, time.monotonic() + timeout, 0)
    p.partial = partial
    p.trust = trust
    p.inherited = inherited
    if names is not None:
        p.names = names
    p.parse_list(frozenset())
    p.finish()
    if names is None and p.names.unsafe():  # x=$(cat f) ... echo $((x)), wherever they stand
        p.emit(SimpleCommand(tags={"arith-runtime"}))
    if p.digit_uses & p.defined:  # wc(){ cat f; }; echo $(( $(wc -l < x) )): not digits
        p.emit(SimpleCommand(tags={"arith-substitution"}))
    if digits is not None:
        digits |= p.digit_uses
    if arith is not None:
        arith.extend(p.arith_spans)
    return p.out
