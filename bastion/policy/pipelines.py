"""Where the lines a pipeline feeds to ``xargs`` come from, and options that run programs.

``origin`` follows a pipeline back through line filters to its producer: ``find D`` yields
paths under D, ``ls`` names in the working directory, ``grep -rl P D`` files under D.
An xargs item is then "some path under D" rather than any path at all, so ``find . |
xargs chmod 644`` is not a chmod of ``/`` (issue #10 §3). ``runs_command`` reads the
knowledge base ``programs.RUNS_COMMAND``.

Limits: only the producers named here; anything else (``cat list``, a file, a
substitution) gives no origin and the items stay unknown.
"""

from __future__ import annotations

import posixpath
import re
from fnmatch import fnmatchcase

from .effects import program_name
from .getopt import read_options
from .programs import GLOBAL_SPECS, OPT_SPECS, RUNS_COMMAND
from .shlexer import SimpleCommand
from .words import DYN, FOUND, SOME, Word

__all__ = ["origin", "named_files", "xargs_item", "runs_command"]

#: find tests that select some files only (mirrors normalize's list)
_FIND_FILTERS = frozenset(
    "-name -iname -path -ipath -regex -iregex -wholename -iwholename -mtime -mmin -atime "
    "-amin -ctime -cmin -newer -size -user -group -empty -perm -lname -inum -samefile "
    "-newermt -uid -gid -links".split()
)

#: Filters that pass some of their input lines through unchanged.
_LINE_FILTERS = frozenset({"head", "tail", "sort", "uniq", "shuf", "tac", "cat"})


def xargs_item(x: Word, repl: str, base: str | None) -> Word:
    """An xargs -I template with each input line in place of ``repl``: some path under
    ``base`` where the pipeline's producer says so (see ``origin``)."""
    if base is None:
        return Word(x.value.replace(repl, DYN), x.raw, True)
    if base.endswith("/**"):  # unfiltered find: the root itself too
        root = base[:-3]
        if x.value == repl:
            return Word(root.rstrip("/") + "/" + DYN, FOUND, True)
        base = root
    if x.value.startswith(repl):
        return Word(x.value.replace(repl, base.rstrip("/") + "/" + DYN, 1), SOME, True)
    head = x.value.split(repl, 1)[0]
    if base == "." and head.endswith("/"):  # releases/{}: a name inside releases/
        return Word(x.value.replace(repl, DYN), SOME, True)
    return Word(x.value.replace(repl, DYN), x.raw, True)


def _producer(sc: SimpleCommand) -> SimpleCommand | None:
    """The command whose lines reach ``sc`` through head/tail/sort/uniq/grep (which pass
    lines on unchanged); None when a word or a redirect of one of them is unknown."""
    src = sc.piped_from
    while src is not None and src.words:
        name = program_name(src.words[0].value)
        args = src.words[1:]
        if any(w.dynamic for w in args) or any(r.op not in ("2>", ">&") for r in src.redirects):
            return None
        if name in _LINE_FILTERS and all(
            re.fullmatch(r"[-+]?[\w=,.-]*", w.value) and (w.value[:1] in "-+" or w.value.isdigit())
            for w in args
        ):
            src = src.piped_from
            continue
        if (
            name == "grep"
            and not any(w.value in ("-o", "--only-matching") for w in args)
            and not any(w.value.startswith("-") and "l" in w.value.lstrip("-")[:4] for w in args)
        ):
            src = src.piped_from
            continue
        return src
    return None


def origin(sc: SimpleCommand) -> str | None:
    """Where the paths a pipeline feeds to xargs lie, when its producer says: ``find D``
    yields paths under D, ``ls`` names in the working directory (``.``), ``ls D/*.gz``
    paths under D, ``grep -rl P D`` files under D, ``git ls-files`` paths under ``.``.
    Lines through head/tail/sort/uniq/grep stay what they were. None when unknown."""
    src = _producer(sc)
    if src is None:
        return None
    name = program_name(src.words[0].value)
    args = src.words[1:]
    if name == "grep":  # grep -l P D (grep -o prints parts of lines: unknown)
        if any(w.value in ("-o", "--only-matching") for w in args):
            return None
        dirs = [w.value for w in args if not w.value.startswith("-")][1:]
        return dirs[0] if len(dirs) == 1 and not any(c in dirs[0] for c in "*?[") else None
    if name == "find":
        roots = [w.value for w in args if not w.value.startswith(("-", "(", "!"))][:1]
        if any(w.value in ("-printf", "-fprintf", "-exec", "-execdir") for w in args):
            return None
        root = roots[0] if roots else "."
        if any(c in root for c in "*?["):
            return None
        if not any(w.value in _FIND_FILTERS for w in args):
            return root + "/**"  # every path under root, root included (find . | ...)
        return root
    if name == "ls":
        paths = [w for w in args if not w.value.startswith("-")]
        if any(w.value.startswith("-") and set(w.value[1:]) & set("Raf") for w in args):
            return None  # recursive, or . and .. among the names
        if not paths or all(not w.glob for w in paths):
            return "."  # names, printed without their directory (see named_files)
        heads = {posixpath.dirname(w.value) for w in paths}
        return heads.pop() or "." if len(heads) == 1 else None
    if name == "git" and args and args[0].value in ("ls-files", "diff"):
        return "."
    return None


def named_files(sc: SimpleCommand) -> list[Word]:
    """Operands ``ls`` prints as given besides the names ``origin`` stands for: a file
    operand (``ls /etc/shadow | xargs cat`` reads /etc/shadow)."""
    src = _producer(sc)
    if src is None or program_name(src.words[0].value) != "ls":
        return []
    return [w for w in src.words[1:] if not w.value.startswith("-") and not w.glob]


def runs_command(name: str, args: list[Word]) -> bool:
    """Whether an option, a ``KEY=`` configuration or an argument makes ``name`` run
    another program (``programs.RUNS_COMMAND``)."""
    options, keys, arg_globs = RUNS_COMMAND[name]
    read = read_options(args, GLOBAL_SPECS.get(name) or OPT_SPECS.get(name))
    for opt, value in read.options:
        if name == "rsync" and opt in ("-e", "--rsh") and value is not None:
            if value.value.split(" ", 1)[0].rsplit("/", 1)[-1] not in ("ssh", "autossh"):
                return True  # a transport other than ssh: a program run with the data
        if opt in options:
            return True
        if value is not None and keys and "=" in value.value:
            key = value.value.split("=", 1)[0].lower().strip()
            if any(fnmatchcase(key, k) for k in keys):
                return True
    return any(fnmatchcase(w.value, g) for w in args for g in arg_globs)
