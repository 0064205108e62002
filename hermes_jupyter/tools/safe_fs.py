"""Race-free access beneath one folder: every path is walked from a folder descriptor.

Each step opens one name relative to the descriptor of the folder above it with
`O_NOFOLLOW`, so no symbolic link is ever followed by the kernel. A link met on the way is
read (`readlink`) and resolved here, lexically, against the workspace: a target inside is
walked again from the root descriptor, a target outside is refused. Swapping a folder for a
link between two steps therefore gets a refusal, never a file outside. The root itself is
resolved once, at construction, and its identity (device, inode) is checked on every open.
The workspace's `.hermes` folder (hermes_jupyter's own state: the task journal) is refused at
the start of every pass, so no spelling (case, Unicode form, `..`) and no link reaches it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import unicodedata
from collections.abc import Generator
from dataclasses import dataclass

__all__ = [
    "DIR_FLAGS",
    "MAX_LINK_HOPS",
    "NAME_MAX",
    "PATH_MAX",
    "READ_FLAGS",
    "STATE_DIR",
    "Resolved",
    "SafeRoot",
    "WalkBudget",
    "is_state_dir",
    "shown",
    "split_path",
]

MAX_LINK_HOPS = 40
NAME_MAX = 255  # bytes in one name
PATH_MAX = 4096  # bytes in a whole path
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a pipe never waits for a writer; O_NOCTTY: a terminal never adopts us.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
STATE_DIR = ".hermes"  # the workspace folder of hermes_jupyter's own state (the journal)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Resolved:
    """The open folder holding the last name (`name` is None for the folder itself).

    `stat` is the last name's own lstat (None when it does not exist); `parts` is the real
    path below the root. The caller owns `dir_fd` and must close it.
    """

    dir_fd: int
    name: str | None
    stat: os.stat_result | None
    parts: list[str]


def is_state_dir(name: str) -> bool:
    """Whether a top-level name is (a case or Unicode variant of) `STATE_DIR`."""
    return unicodedata.normalize("NFKC", name).casefold().rstrip(". ") == STATE_DIR


def shown(path: object) -> str:
    """A path as quoted in a message: repr, cut to 80 characters, always one line."""
    text = repr(path)
    return text if len(text) <= 80 else text[:77] + "…'"


def split_path(path: object) -> list[str]:
    """The names of a relative path, `.` dropped and `..` applied lexically.

    Raises `PermissionError` for absolute, home (`~`) and escaping paths; `ValueError` for anything
    that is not a plain path: not text, NUL bytes, backslashes, names over 255 bytes, paths
    over 4096 bytes. Percent signs are ordinary characters: nothing is ever decoded.
    """
    if not isinstance(path, str):
        raise ValueError(f"a path must be text, not {type(path).__name__}")
    if "\x00" in path:
        raise ValueError(f"{shown(path)} contains a NUL character: pass a plain relative path")
    try:
        size = len(os.fsencode(path))
    except UnicodeError:
        raise ValueError(f"{shown(path)} cannot be a file name: pass a plain path") from None
    if size > PATH_MAX:
        raise ValueError(f"a path of {size} bytes is too long (at most {PATH_MAX})")
    if path.startswith("/"):
        raise PermissionError(
            f"{shown(path)} is outside the workspace: use a path relative to its root"
        )
    if path.startswith("~"):
        raise PermissionError(
            f"{shown(path)} names a home folder, outside the workspace: "
            "use a path relative to its root"
        )
    if "\\" in path:
        raise ValueError(f"{shown(path)} contains a backslash: separate folders with '/'")
    return _normalise([], path.split("/"), path)


def _normalise(base: list[str], names: list[str], path: str) -> list[str]:
    parts = list(base)
    for name in names:
        if name in ("", "."):
            continue
        if name == "..":
            if not parts:
                raise PermissionError(
                    f"{shown(path)} leads outside the workspace: stay below its root"
                )
            parts.pop()
            continue
        if len(os.fsencode(name)) > NAME_MAX:
            raise ValueError(f"a name in {shown(path)} is longer than {NAME_MAX} bytes")
        parts.append(name)
    return parts


class SafeRoot:
    """One workspace folder, resolved once; every open goes through `resolve`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = os.path.realpath(os.fspath(root))
        st = os.stat(self.path)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(f"the workspace {self.path!r} is not a folder")
        self._identity = (st.st_dev, st.st_ino)

    def open_root(self) -> int:
        """A descriptor of the root folder; refuses if the folder was moved or replaced."""
        try:
            fd = os.open(self.path, DIR_FLAGS)
        except OSError:
            raise PermissionError(
                "the workspace folder is gone or was replaced by a link"
            ) from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self._identity:
            os.close(fd)
            raise PermissionError("the workspace folder was replaced since the task started")
        return fd

    def resolve(self, path: str, *, create_dirs: bool = False) -> Resolved:
        """Walk `path` from the root, following links only while they stay inside.

        The last name is looked at (lstat) but not opened, and is never a link on return.
        `create_dirs` makes missing folders on the way. Raises `PermissionError`,
        `FileNotFoundError`, `NotADirectoryError` with one-line messages.
        """
        todo = split_path(path)
        hops = 0
        while True:
            step = self._walk(self.open_root(), todo, path, create_dirs)
            if isinstance(step, Resolved):
                return step
            os.close(step[0])
            todo = step[1]
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise PermissionError(f"{shown(path)} goes through too many links (a loop?)")

    def _walk(
        self, fd: int, todo: list[str], path: str, create_dirs: bool
    ) -> Resolved | tuple[int, list[str]]:
        """One pass from the root: a `Resolved`, or (fd to close, path to restart with).

        Owns `fd`: on an error, closes whichever folder descriptor it holds by then.
        """
        held = [fd]
        try:
            return self._walk_from(held, todo, path, create_dirs)
        except BaseException:
            os.close(held[0])
            raise

    def _walk_from(
        self, held: list[int], todo: list[str], path: str, create_dirs: bool
    ) -> Resolved | tuple[int, list[str]]:
        fd = held[0]
        done: list[str] = []
        if todo and is_state_dir(todo[0]):  # every pass, links included, restarts here
            raise PermissionError(
                f"{shown(path)} is in {STATE_DIR!r}, hermes_jupyter's own state (the task "
                "journal): tools may not read or change it"
            )
        for index, name in enumerate(todo):
            st = _lstat(name, fd)
            if st is not None and stat.S_ISLNK(st.st_mode):
                return fd, self._through_link(fd, done, name, todo[index + 1 :], path)
            if index == len(todo) - 1:
                return Resolved(fd, name, st, [*done, name])
            if st is None:
                if not create_dirs:
                    raise FileNotFoundError(f"{shown(path)} does not exist in the workspace")
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
            try:
                sub = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno == errno.ENOTDIR and st is not None and not stat.S_ISDIR(st.st_mode):
                    bad = "/".join([*done, name])
                    message = f"{bad!r} in {shown(path)} is not a folder"
                    raise NotADirectoryError(message) from None
                if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    return fd, todo  # changed under us: look again from the root
                raise OSError(f"{shown(path)} cannot be opened: {err.strerror}") from None
            os.close(fd)
            fd = held[0] = sub
            done.append(name)
        return Resolved(fd, None, None, done)

    def _through_link(
        self, fd: int, done: list[str], name: str, rest: list[str], path: str
    ) -> list[str]:
        try:
            target = os.readlink(name, dir_fd=fd)
        except OSError:
            return [*done, name, *rest]  # no longer a link: look again
        if target.startswith("/"):
            if target != self.path and not target.startswith(self.path + "/"):
                raise PermissionError(f"{shown(path)} leads outside the workspace through a link")
            return _normalise([], target[len(self.path) :].split("/") + rest, path)
        try:
            return _normalise(done, target.split("/") + rest, path)
        except PermissionError:
            raise PermissionError(
                f"{shown(path)} leads outside the workspace through a link"
            ) from None

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace a file: a fresh temporary file renamed over the name.

        The rename happens inside the verified folder descriptor and replaces the name itself,
        so a write never lands in an existing inode (not even one hard-linked from outside).
        """
        where = self.resolve(path, create_dirs=True)
        try:
            if where.name is None:
                raise IsADirectoryError(f"{shown(path)} is the workspace folder, not a file")
            if where.stat is not None and stat.S_ISDIR(where.stat.st_mode):
                raise IsADirectoryError(f"{shown(path)} is a folder: name a file inside it")
            if where.stat is not None and not stat.S_ISREG(where.stat.st_mode):
                raise PermissionError(
                    f"{shown(path)} is not a regular file (a pipe, socket or device)"
                )
            _replace(where.dir_fd, where.name, data, where.stat)
        finally:
            os.close(where.dir_fd)

    def walk(
        self, dir_fd: int, prefix: str, budget: WalkBudget, depth: int = 0
    ) -> Generator[Entry, None, None]:
        """Entries below an open folder, sorted, hidden names skipped, links not followed.

        Spends `budget` in place (entries visited, folders too deep to enter), so the caller
        can say how a walk was cut.
        """
        with os.scandir(dir_fd) as scan:
            names = []
            for entry in scan:
                if budget.entries <= 0:
                    budget.cut = True
                    break
                budget.entries -= 1
                if not entry.name.startswith("."):
                    names.append(entry.name)
        for name in sorted(names):
            st = _lstat(name, dir_fd)
            if st is None:
                continue
            rel = prefix + name
            if not stat.S_ISDIR(st.st_mode):
                yield Entry(dir_fd, name, rel, st)
                continue
            if depth >= budget.max_depth:
                budget.too_deep += 1
                continue
            try:
                sub = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue  # swapped for a link or removed meanwhile: not followed
            try:
                yield from self.walk(sub, rel + "/", budget, depth + 1)
            finally:
                os.close(sub)


@dataclass
class WalkBudget:
    """What one walk may still visit; `cut` and `too_deep` say what it left out."""

    entries: int
    max_depth: int = 64
    cut: bool = False
    too_deep: int = 0


@dataclass
class Entry:
    """A non-folder found by `SafeRoot.walk`: its folder (open only while iterating), lstat."""

    dir_fd: int
    name: str
    rel: str
    stat: os.stat_result


def open_regular(dir_fd: int, name: str, expected: os.stat_result | None) -> int | None:
    """A read descriptor on a regular file, or None if it is anything else or was swapped."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    st = os.fstat(fd)
    same = expected is None or (st.st_dev, st.st_ino) == (expected.st_dev, expected.st_ino)
    if not stat.S_ISREG(st.st_mode) or not same:
        os.close(fd)
        return None
    return fd


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _replace(dir_fd: int, name: str, data: bytes, old: os.stat_result | None) -> None:
    temp = f".hj-write-{secrets.token_hex(8)}.tmp"
    fd = os.open(temp, _CREATE_FLAGS, 0o666, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            if old is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(old.st_mode))
            out.write(data)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise
