"""The shell commands that never run, and those no policy may run without a person (pure).

`analyse(command)` reads a command line the way the shell would, far enough to judge it:

* every simple command of a list, pipeline, subshell, group, `$(...)` or backticks, and of
  the command strings given to `sh -c`, `bash -c`, `eval`, `su -c`, `env -S`;
* through wrappers that run their arguments as a command (`sudo`, `doas`, `env [-i] [VAR=..]`,
  `time`, `nice`, `ionice`, `nohup`, `timeout N`, `command`, `exec`, `builtin`, `stdbuf`,
  `setsid`, `xargs`, `busybox`, `toybox`, `unbuffer`, `eatmydata`, `fakeroot`, `taskset`,
  `flock`, `chronic`), past leading assignments, keywords and `!`;
* with paths normalised: `.`, `..`, `//`, a trailing `/.`, `~`, `$HOME`, `$PWD` (and their
  `${...}` and quoted forms), `cd` earlier in the line, and match-all globs (`*`, `.*`, `?*`)
  standing for a whole folder's contents.

It answers `refused` (why the command destroys the machine or the workspace: it never runs,
whatever the policy) and `opaque` (why it cannot be judged: the command's name comes from an
expansion (`$(echo rm) -rf /`, `` `x` ``, `$CMD`), or a destructive command's target does
(`rm -rf "$DIR"`), or commands come from input (`| sh`, `xargs rm`): such a command never runs
without a person, even under `approval="auto"`). It is a guard against mistakes and against a
model talked into them, not a sandbox: a program (`python -c "shutil.rmtree(...)"`) is not
read; see docs/architecture.md, "Approval".
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Analysis", "analyse", "refusal"]

_SUB = "\x01sub\x01"  # stands for a `$(...)` or backtick substitution inside a word
_FORK_BOMB = re.compile(r"(\S+)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&"
                        r"|\bfunction\s+(\S+)\s*(?:\(\))?\s*\{[^}]*\2\s*\|\s*\2\s*&")
_DISK = r"/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk|mapper/|md|dm-|loop|sr|nbd)"
_DEVICE_WRITE = re.compile(r">\|?\s*" + _DISK)
_IS_DISK = re.compile("^" + _DISK)
_WIPE = re.compile(r"^(mkfs(\.\w+)?|mke2fs|mkswap|mkdosfs|mkntfs|wipefs|shred|fdisk|sfdisk|"
                   r"cfdisk|parted|sgdisk|gdisk|blkdiscard|shutdown|reboot|halt|poweroff)$")
_SYSTEM = {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt",
           "proc", "root", "run", "sbin", "srv", "sys", "usr", "var", "snap", "mnt", "media"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "rbash"}
_KEYWORDS = {"!", "{", "}", "(", ")", "if", "then", "else", "elif", "fi", "do", "done",
             "while", "until", "coproc"}
# Wrappers that run the rest as a command: their options that take a value, and how many
# plain words (a duration, a mask, a lock file) come before the command.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset(["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user",
                        "--group"]), 0),
    "doas": (frozenset(["-u", "-C"]), 0),
    "env": (frozenset(["-u", "-C", "-S", "--unset", "--chdir", "--split-string"]), 0),
    "time": (frozenset(["-f", "-o", "--format", "--output"]), 0),
    "nice": (frozenset(["-n", "--adjustment"]), 0),
    "ionice": (frozenset(["-c", "-n", "-p", "-P", "-u"]), 0),
    "nohup": (frozenset(), 0), "setsid": (frozenset(), 0), "builtin": (frozenset(), 0),
    "command": (frozenset(), 0), "exec": (frozenset(["-a"]), 0), "unbuffer": (frozenset(), 0),
    "eatmydata": (frozenset(), 0), "fakeroot": (frozenset(), 0), "chronic": (frozenset(), 0),
    "timeout": (frozenset(["-s", "-k", "--signal", "--kill-after"]), 1),
    "stdbuf": (frozenset(["-i", "-o", "-e"]), 0),
    "taskset": (frozenset(), 1), "flock": (frozenset(["-w", "-E", "--timeout"]), 1),
    "xargs": (frozenset(["-I", "-i", "-n", "-P", "-d", "-L", "-l", "-a", "-E", "-e", "-s",
                         "--max-args", "--max-procs", "--delimiter", "--arg-file"]), 0),
    "busybox": (frozenset(), 0), "toybox": (frozenset(), 0),
}
_FROM_INPUT = {"rm", "shred", "unlink", "rmdir", "truncate", "chmod", "chown", "chgrp", "dd",
               "mv", "find"}
_FIND_NARROWING = {"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-regex",
                   "-iregex", "-newer", "-mtime", "-mmin", "-atime", "-amin", "-ctime",
                   "-cmin", "-size", "-empty", "-user", "-group", "-perm", "-inum", "-samefile",
                   "-lname", "-ilname", "-links", "-uid", "-gid"}
_FIND_ACTIONS = {"-exec", "-execdir", "-ok", "-okdir"}
_DESTRUCTIVE = {"rm", "shred", "unlink", "truncate", "chmod", "chown", "chgrp", "mv", "dd",
                "srm", "wipe"}
_WORKSPACE_OK = {"chmod", "chown", "chgrp", "mv"}  # on the workspace: undoable, allowed
_SAFE_DEVICES = {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty",
                 "/dev/full", "/dev/random", "/dev/urandom"}


@dataclass
class Analysis:
    """What `analyse` found: `refused` (never runs) and `opaque` (needs a person), with why."""

    refused: str | None = None
    opaque: str | None = None

    def merge(self, other: Analysis) -> None:
        self.refused = self.refused or other.refused
        self.opaque = self.opaque or other.opaque


@dataclass
class _Place:
    """A folder as the analysis knows it: `base` is "/", "~" (home), "." (the workspace) or
    None (unknown), `parts` the names below it."""

    base: str | None
    parts: list[str] = field(default_factory=list)


def refusal(command: str, *, workspace: str | None = None) -> str | None:
    """Why `command` destroys the machine or the workspace (so it never runs), else None.
    `workspace`, when given, makes its absolute path count as the workspace."""
    return analyse(command, workspace=workspace).refused


def analyse(command: str, *, workspace: str | None = None, depth: int = 0) -> Analysis:
    """Judge a whole command line (see the module's docstring)."""
    found = Analysis()
    if depth > 8:
        found.opaque = "commands nested too deep to read"
        return found
    if _FORK_BOMB.search(command):
        found.refused = "a fork bomb brings the machine down"
        return found
    if _DEVICE_WRITE.search(command):
        found.refused = "writing to a disk device destroys its file systems"
        return found
    text, inner = _substitutions(command.replace("\n", " ; "))
    for sub in inner:
        found.merge(analyse(sub, workspace=workspace, depth=depth + 1))
    cwd = _Place(".")
    for words in _segments(text, found):
        if words and words[0] in ("cd", "pushd"):
            cwd = _cd(words[1:], cwd, workspace)
            continue
        found.merge(_simple(words, cwd, workspace, depth))
        if found.refused:
            break
    return found


def _substitutions(command: str) -> tuple[str, list[str]]:
    """`command` with each `$(...)` and backtick substitution replaced by `_SUB`, and their
    texts (nested ones come out of the recursive analysis of these)."""
    out, inner, i = [], [], 0
    while i < len(command):
        if command.startswith("$((", i):  # arithmetic: a number, not a command
            end = command.find("))", i + 3)
            out.append("0")
            i = len(command) if end == -1 else end + 2
        elif command.startswith("$(", i):
            depth, j = 1, i + 2
            while j < len(command) and depth:
                depth += {"(": 1, ")": -1}.get(command[j], 0)
                j += 1
            inner.append(command[i + 2 : j - 1])
            out.append(_SUB)
            i = j
        elif command[i] == "`":
            j = command.find("`", i + 1)
            j = len(command) if j == -1 else j
            inner.append(command[i + 1 : j])
            out.append(_SUB)
            i = j + 1
        else:
            out.append(command[i])
            i += 1
    return "".join(out), inner


def _segments(text: str, found: Analysis) -> Iterator[list[str]]:
    """The words of each simple command (redirections dropped), split at every operator."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    skip = False
    try:
        for token in lexer:
            if skip:
                skip = False
                continue
            if token and set(token) <= set(";&|()<>") and ("(" in token or ")" in token):
                yield words  # also `<(...)`, `>(...)`: a command, not a file name
                words = []
                continue
            if token and set(token) <= set("<>&|") and ("<" in token or ">" in token):
                skip = True  # a redirection: its target is not a word of the command
                continue
            if token and set(token) <= set(";&|()"):
                yield words
                words = []
                continue
            words.append(token)
    except ValueError:
        found.opaque = found.opaque or "the command does not parse (an unclosed quote?)"
    if words:
        yield words


def _simple(words: list[str], cwd: _Place, workspace: str | None, depth: int) -> Analysis:
    """Judge one simple command (after wrappers); `cwd` is where relative paths start."""
    found = Analysis()
    words = _unwrap(words, found, workspace, depth)
    if not words:
        return found
    head = words[0]
    if _SUB in head or head.startswith("$") or any(c in head for c in "*?["):
        found.opaque = (f"the command's name ({_shown(head)}) is only known when it runs")
        return found
    name, args = posixpath.basename(head), words[1:]
    if name in _SHELLS or name in ("eval", "su"):
        found.merge(_nested(name, args, workspace, depth))
        return found
    why = _destroys(name, args, cwd, workspace)
    if why == "opaque":
        found.opaque = f"{name}'s target is only known when it runs"
    else:
        found.refused = why
    return found


def _unwrap(words: list[str], found: Analysis, workspace: str | None, depth: int) -> list[str]:
    """`words` past assignments, keywords and wrappers, down to the command they run."""
    for _ in range(32):
        while words and (words[0] in _KEYWORDS or re.match(r"^[A-Za-z_]\w*=", words[0])):
            words = words[1:]
        if not words:
            return []
        name = posixpath.basename(words[0])
        if name not in _WRAPPERS:
            return words
        if name == "command" and any(w in ("-v", "-V") for w in words[1:2]):
            return []  # only says what the name is
        if name == "env":
            for i, word in enumerate(words[1:], 1):
                if word in ("-S", "--split-string") or word.startswith("-S"):
                    split = words[i + 1] if word in ("-S", "--split-string") else word[2:]
                    found.merge(analyse(split, workspace=workspace, depth=depth + 1))
        if name == "xargs" and len(words) > 1:
            rest = _skip_options(words[1:], *_WRAPPERS[name])
            if rest and posixpath.basename(rest[0]) in _FROM_INPUT:
                found.opaque = f"xargs {posixpath.basename(rest[0])} acts on names it reads " \
                               "from its input"
        values, plain = _WRAPPERS[name]
        words = _skip_options(words[1:], values, plain)
    return words


def _skip_options(words: list[str], values: frozenset[str], plain: int) -> list[str]:
    i = 0
    while i < len(words) and words[i].startswith("-") and words[i] != "-":
        if words[i] == "--":
            i += 1
            break
        i += 2 if words[i] in values else 1
    while i < len(words) and re.match(r"^[A-Za-z_]\w*=", words[i]):
        i += 1  # env VAR=value
    return words[i + plain:]


def _nested(name: str, args: list[str], workspace: str | None, depth: int) -> Analysis:
    """A shell given a command string (`-c`), `eval`, `su -c`: judge that string; a shell
    that reads its commands from its input cannot be judged."""
    if name == "eval":
        return analyse(" ".join(args), workspace=workspace, depth=depth + 1)
    for i, arg in enumerate(args):
        short = arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]
        if (short or arg == "--command") and i + 1 < len(args):
            return analyse(args[i + 1], workspace=workspace, depth=depth + 1)
        if not arg.startswith("-") and name != "su":
            return Analysis()  # a script file: it runs what it holds, like any program
    if name == "su":
        return Analysis()
    return Analysis(opaque=f"{name} runs commands it reads from its input")


def _destroys(name: str, args: list[str], cwd: _Place, workspace: str | None) -> str | None:
    """Why this command destroys the machine or the workspace; "opaque" when its target is
    only known when it runs; None when it does neither."""
    flags = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    targets = _operands(args)
    recursive = "r" in flags.lower() or "--recursive" in args
    if _WIPE.match(name):
        return f"{name} wipes disks or stops the machine"
    if name in ("init", "telinit") and targets[:1] in (["0"], ["6"]):
        return f"{name} {targets[0]} stops the machine"
    if name == "systemctl" and set(targets) & {"poweroff", "reboot", "halt", "kexec"}:
        return "systemctl stops the machine"
    if name == "dd":
        devices = [a[3:] for a in args if a.startswith("of=")]
        if any(d.startswith("/dev/") and d not in _SAFE_DEVICES for d in devices):
            return "dd onto a device destroys its file systems"
        return None
    if name in ("tee", "cp", "install") and any(_IS_DISK.match(t) for t in targets):
        return f"{name} onto a disk device destroys its file systems"
    if name in ("kill", "pkill") and "-1" in args[-1:]:
        return "kill -1 kills every process of the user"
    if name == "find":
        return _find(args, cwd, workspace)
    if name == "rm" and "--no-preserve-root" in args:
        return "rm --no-preserve-root deletes the whole machine"
    checked = {"rm": recursive, "chmod": recursive, "chown": recursive, "chgrp": recursive,
               "truncate": True, "mv": True, "srm": True, "wipe": True}
    if not checked.get(name):
        return None
    if name == "mv":
        targets = targets[:-1]  # what moves away, not where to
    return _judge_targets(name, targets, cwd, workspace)


def _judge_targets(name: str, targets: list[str], cwd: _Place,
                   workspace: str | None) -> str | None:
    opaque = False
    for target in targets:
        place = _resolve(target, cwd, workspace)
        if place is None:
            opaque = True
        elif _is_root(place) and not (place.base == "." and name in _WORKSPACE_OK):
            what = {"/": "the machine's root or a system folder", "~": "the home folder",
                    ".": "the workspace", "^~": "a folder above home",
                    "^.": "a folder above the workspace"}[str(place.base)]
            verb = {"rm": "deletes", "chmod": "changes modes of", "chown": "changes owners of",
                    "chgrp": "changes groups of", "truncate": "empties",
                    "mv": "moves away"}.get(name, "destroys")
            return f"{name} of {_shown(target)} {verb} everything in {what}"
    return "opaque" if opaque else None


def _find(args: list[str], cwd: _Place, workspace: str | None) -> str | None:
    """find with -delete, or -exec of a destructive command, over a whole root, unnarrowed."""
    starts: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] in ("-H", "-L", "-P", "-O"):
        i += 1
    while i < len(args) and not args[i].startswith(("-", "(", "!")):
        starts.append(args[i])
        i += 1
    expression = args[i:]
    executed = [posixpath.basename(expression[j + 1]) for j, a in enumerate(expression[:-1])
                if a in _FIND_ACTIONS]
    destroys = "-delete" in expression or any(e in _DESTRUCTIVE for e in executed)
    if not destroys:
        return None
    narrowed = any(a in _FIND_NARROWING for a in expression) and not any(
        a in ("-o", "-or", ",") for a in expression)
    if narrowed:
        return None
    for start in starts or ["."]:
        place = _resolve(start, cwd, workspace)
        if place is None:
            return "opaque"
        if _is_root(place):
            return (f"find {_shown(start)} with -delete or -exec of a destructive command "
                    "touches every file below it")
    return None


def _operands(args: list[str]) -> list[str]:
    out, options = [], True
    for arg in args:
        if options and arg == "--":
            options = False
        elif options and arg.startswith("-") and arg != "-":
            continue
        else:
            out.append(arg)
    return out


def _cd(args: list[str], cwd: _Place, workspace: str | None) -> _Place:
    operands = _operands(args)
    if not operands:
        return _Place("~")
    if operands[0] == "-":
        return _Place(None)  # back to $OLDPWD: not known here
    return _resolve(operands[0], cwd, workspace, judged=False) or _Place(None)


_VARIABLE = re.compile(r"^(?:\$\{(HOME|PWD)\}|\$(HOME|PWD)\b)")


def _resolve(target: str, cwd: _Place, workspace: str | None, *,
             judged: bool = True) -> _Place | None:
    """Where a path word points, normalised; a trailing match-all glob stands for its folder.
    None when an expansion makes it unknowable. `judged`: paths at or above a known
    workspace come back relative to it ("." or "^."), else absolute (for `cd`)."""
    word = target
    root = [n for n in posixpath.normpath(workspace).split("/") if n] if workspace else None
    if root is not None and cwd.base == ".":  # the workspace's own path is known: use it
        cwd = _Place("/", root + cwd.parts)
    match = _VARIABLE.match(word)
    if match:
        if (match.group(1) or match.group(2)) == "HOME":
            place = _Place("~")
        elif cwd.base is None:
            return None
        else:  # $PWD: where the shell is by then
            place = _Place(cwd.base, list(cwd.parts))
        word = word[match.end():].lstrip("/")
    elif word == "~" or word.startswith("~/"):
        place, word = _Place("~"), word[2:]
    elif word.startswith("/"):
        place = _Place("/")
    else:
        if cwd.base is None:
            return None
        place = _Place(cwd.base, list(cwd.parts))
    if "$" in word or _SUB in word or word.startswith("~") or re.search(r"\{[^}]*,", word):
        return None  # an expansion, or braces that make several words
    names = [n for n in word.split("/") if n not in ("", ".")]
    while names and _matches_all(names[-1]):
        names.pop()  # `dir/*`, `dir/.*`: everything in dir
    for name in names:
        if name == "..":
            if place.parts:
                place.parts.pop()
            elif place.base in ("~", ".", "^~", "^."):
                place = _Place("^" + str(place.base).lstrip("^"))  # above home or workspace
            continue
        place.parts.append(name)
    inside = root is not None and place.parts == root[: len(place.parts)]
    if judged and root is not None and place.base == "/" and inside:  # at, in or above it
        return _Place("^.") if len(place.parts) < len(root) else _Place(
            ".", place.parts[len(root):])
    return place


def _matches_all(name: str) -> bool:
    """A glob that matches (nearly) every name of a folder: `*`, `.*`, `?*`, `*.*`, `{*,.*}`."""
    if not any(c in name for c in "*?[{"):
        return False
    rest = re.sub(r"\[[^]]*\]|[*?{},]", "", name)
    return rest in ("", ".", "..")


def _is_root(place: _Place) -> bool:
    """The machine's root, a system folder, home, the workspace, or a folder above them."""
    if place.base in ("~", ".", "^~", "^."):
        return not place.parts
    if place.base != "/":
        return False
    parts = place.parts
    if len(parts) == 2 and parts[0] == "usr" and parts[1] in _SYSTEM | {"share", "local"}:
        return True
    if not parts or (len(parts) == 1 and (parts[0] in _SYSTEM or any(c in parts[0]
                                                                      for c in "*?["))):
        return True
    home = [n for n in os.path.expanduser("~").split("/") if n]
    return parts == home[: len(parts)] or (parts[0] == "home" and len(parts) <= 2)


def _shown(word: str) -> str:
    return repr(word.replace(_SUB, "$(...)"))
