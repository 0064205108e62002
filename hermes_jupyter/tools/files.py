"""The `files` toolset: list, read, write and search files, confined to a workspace root.

Every operation goes through `safe_fs.SafeRoot`: paths are walked from a descriptor of the
root with `O_NOFOLLOW` at each step, links are followed only while they stay inside, and
list/search never follow links at all. See "Sandbox of the files toolset" in
docs/architecture.md for what is guaranteed and what is not.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import ConfigurationError
from .safe_fs import DIR_FLAGS, Entry, SafeRoot, WalkBudget, open_regular, shown

__all__ = ["WorkspaceFiles"]

_MAX_READ_LINES = 400
_MAX_LIST = 500
_MAX_HITS = 100
_MAX_WALK_ENTRIES = 20_000  # entries a list or search may visit
_MAX_READ_BYTES = 16 << 20  # read_file reads at most this much of one file
_MAX_FILE_BYTES = 4 << 20  # search_files reads at most this much of one file
_MAX_SEARCH_BYTES = 32 << 20  # ... and this much in all
_MAX_WRITE_BYTES = 64 << 20
_MB = 1 << 20


class WorkspaceFiles:
    """File tools bound to one root; nothing outside it is read, written, listed or shown.

    The root is resolved once here (a workspace that is itself a link is bound to its target).
    Refusals raise one-line errors (`PermissionError` for paths outside, `FileNotFoundError`,
    `NotADirectoryError`, `IsADirectoryError`, `ValueError` for malformed paths).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        try:
            self._safe = SafeRoot(root)
        except OSError:
            raise ConfigurationError(
                f"The workspace {os.fspath(root)!r} is not an existing folder: "
                "pass workspace= a folder that exists."
            ) from None
        self.root = Path(self._safe.path)

    def tools(self) -> list[Callable[..., Any]]:
        return [self.list_files, self.read_file, self.write_file, self.search_files]

    def list_files(self, path: str = ".", pattern: str = "*") -> str:
        """List files under a folder of the workspace, recursively, with their sizes in bytes.

        Links are listed as links and not followed; hidden names (starting with '.') are skipped.

        Args:
            path: folder relative to the workspace root.
            pattern: shell-style filter on file names, such as "*.csv".
        """
        if not isinstance(pattern, str):
            raise ValueError("pattern must be text, such as '*.csv'")
        rows: list[str] = []
        budget = WalkBudget(_MAX_WALK_ENTRIES)
        with _plain_errors(), self._walk(path, budget) as entries:
            for entry in entries:
                if not fnmatch.fnmatch(entry.name, pattern):
                    continue
                if len(rows) >= _MAX_LIST:
                    rows.append(f"… more files not listed (over {_MAX_LIST})")
                    break
                if stat.S_ISREG(entry.stat.st_mode):
                    rows.append(f"{entry.rel}\t{entry.stat.st_size}")
                elif stat.S_ISLNK(entry.stat.st_mode):
                    rows.append(f"{entry.rel}\t(link, not followed)")
        rows += _cut_notes(budget, "list")
        return "\n".join(rows) if rows else "(no files)"

    def read_file(self, path: str, start_line: int = 1, max_lines: int = _MAX_READ_LINES) -> str:
        """Read a text file of the workspace; says how many lines it has in all.

        Args:
            path: file relative to the workspace root.
            start_line: first line to return, counting from 1.
            max_lines: how many lines to return at most.
        """
        for name, value in (("start_line", start_line), ("max_lines", max_lines)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
        with _plain_errors():
            fd = self._open_file(path)
            with os.fdopen(fd, "rb") as source:
                data = source.read(_MAX_READ_BYTES + 1)
        cut = len(data) > _MAX_READ_BYTES
        lines = data[:_MAX_READ_BYTES].decode("utf-8", errors="replace").splitlines()
        start = max(1, start_line)
        chunk = lines[start - 1 : start - 1 + max(1, min(max_lines, _MAX_READ_LINES))]
        end = start + len(chunk) - 1
        header = f"{path}: {len(lines)} lines, showing {start}-{end}"
        if cut:
            header += f" (only its first {_MAX_READ_BYTES // _MB} MB were read)"
        return header + "\n" + "\n".join(chunk)

    def write_file(self, path: str, content: str) -> str:
        """Write (create or replace) a text file in the workspace.

        Args:
            path: file relative to the workspace root.
            content: the full new text of the file.
        """
        if not isinstance(content, str):
            raise ValueError(f"content must be text, not {type(content).__name__}")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("content is not valid Unicode text (a lone surrogate?)") from None
        if len(data) > _MAX_WRITE_BYTES:
            raise ValueError(f"content is over {_MAX_WRITE_BYTES // _MB} MB: write it in parts")
        with _plain_errors():
            self._safe.write_bytes(path, data)
        return f"wrote {len(content)} characters to {path}"

    def search_files(self, text: str, path: str = ".") -> str:
        """Find lines containing a text in the workspace's files (links are not followed).

        Args:
            text: the text to look for (case-insensitive).
            path: folder relative to the workspace root.
        """
        if not isinstance(text, str):
            raise ValueError("text must be the text to look for")
        needle = text.lower()
        hits: list[str] = []
        budget, left = WalkBudget(_MAX_WALK_ENTRIES), [_MAX_SEARCH_BYTES]
        with _plain_errors(), self._walk(path, budget) as entries:
            for entry in entries:
                if left[0] <= 0 or len(hits) > _MAX_HITS:
                    break
                hits += _search_one(entry, needle, left)
        if len(hits) > _MAX_HITS:
            return "\n".join([*hits[:_MAX_HITS], "… more matches not shown"])
        hits += _cut_notes(budget, "search")
        if left[0] <= 0:
            hits.append(f"… stopped after reading {_MAX_SEARCH_BYTES // _MB} MB: "
                        "search a smaller folder")
        return "\n".join(hits) if hits else f"no line contains {text!r}"

    @contextmanager
    def _walk(self, path: str, budget: WalkBudget) -> Iterator[Iterator[Entry]]:
        """The entries below a folder of the workspace (see `SafeRoot.walk`)."""
        with self._folder(path) as (fd, prefix), closing(
            self._safe.walk(fd, prefix, budget)
        ) as entries:
            yield entries

    @contextmanager
    def _folder(self, path: str) -> Iterator[tuple[int, str]]:
        """An open descriptor of a workspace folder and its path prefix ('' for the root)."""
        where = self._safe.resolve(path)
        try:
            if where.name is None:
                fd = os.dup(where.dir_fd)
            elif where.stat is None:
                raise FileNotFoundError(f"{shown(path)} does not exist in the workspace")
            elif not stat.S_ISDIR(where.stat.st_mode):
                raise NotADirectoryError(f"{shown(path)} is not a folder in the workspace")
            else:
                try:
                    fd = os.open(where.name, DIR_FLAGS, dir_fd=where.dir_fd)
                except OSError:
                    raise PermissionError(
                        f"{shown(path)} changed while it was opened: try again"
                    ) from None
        finally:
            os.close(where.dir_fd)
        try:
            yield fd, "".join(part + "/" for part in where.parts)
        finally:
            os.close(fd)

    def _open_file(self, path: str) -> int:
        """A read descriptor on a regular file of the workspace."""
        where = self._safe.resolve(path)
        try:
            if where.name is None:
                raise IsADirectoryError(f"{shown(path)} is the workspace folder, not a file")
            if where.stat is None:
                raise FileNotFoundError(
                    f"{shown(path)} does not exist in the workspace: list_files shows what does"
                )
            if stat.S_ISDIR(where.stat.st_mode):
                raise IsADirectoryError(f"{shown(path)} is a folder: list_files shows its files")
            if not stat.S_ISREG(where.stat.st_mode):
                raise PermissionError(
                    f"{shown(path)} is not a regular file (a pipe, socket or device)"
                )
            fd = open_regular(where.dir_fd, where.name, where.stat)
            if fd is None:
                raise PermissionError(f"{shown(path)} changed while it was opened: try again")
            return fd
        finally:
            os.close(where.dir_fd)


def _search_one(entry: Entry, needle: str, left: list[int]) -> list[str]:
    """Matching lines of one regular file; spends the shared byte budget `left[0]`."""
    if not stat.S_ISREG(entry.stat.st_mode):
        return []
    fd = open_regular(entry.dir_fd, entry.name, entry.stat)
    if fd is None:
        return []
    with os.fdopen(fd, "rb") as source:
        data = source.read(min(_MAX_FILE_BYTES, left[0]))
    left[0] -= len(data)
    if b"\x00" in data[:8192]:
        return []  # binary
    hits = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if needle in line.lower():
            hits.append(f"{entry.rel}:{number}: {line.strip()[:200]}")
            if len(hits) > _MAX_HITS:
                break
    return hits


def _cut_notes(budget: WalkBudget, verb: str) -> list[str]:
    notes = []
    if budget.cut:
        notes.append(f"… stopped after {_MAX_WALK_ENTRIES} entries: {verb} a smaller folder")
    if budget.too_deep:
        notes.append(f"… {budget.too_deep} folders deeper than {budget.max_depth} levels "
                     f"were not entered: {verb} inside them")
    return notes


@contextmanager
def _plain_errors() -> Iterator[None]:
    """Errors the operating system raised itself become one line without any path in it."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.filename2 is None:
            raise
        raise OSError(f"the file system refused: {err.strerror or 'unknown error'}") from None
