"""The `files` toolset: list, read, write and search files, confined to a workspace root."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["WorkspaceFiles"]

_MAX_READ_LINES = 400
_MAX_LIST = 500
_MAX_HITS = 100


class WorkspaceFiles:
    """File tools bound to one root. `..`, absolute paths and links out of the root are refused."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def tools(self) -> list[Callable[..., Any]]:
        return [self.list_files, self.read_file, self.write_file, self.search_files]

    def list_files(self, path: str = ".", pattern: str = "*") -> str:
        """List files under a folder of the workspace, recursively, with their sizes in bytes.

        Args:
            path: folder relative to the workspace root.
            pattern: shell-style filter on file names, such as "*.csv".
        """
        base = self._resolve(path)
        if not base.is_dir():
            raise ValueError(f"{path!r} is not a folder in the workspace")
        rows: list[str] = []
        for file in sorted(base.rglob("*")):
            if len(rows) >= _MAX_LIST:
                rows.append(f"… more files not listed (over {_MAX_LIST})")
                break
            rel = file.relative_to(self.root)
            if file.is_file() and fnmatch.fnmatch(file.name, pattern) and not _hidden(rel):
                rows.append(f"{rel.as_posix()}\t{file.stat().st_size}")
        return "\n".join(rows) if rows else "(no files)"

    def read_file(self, path: str, start_line: int = 1, max_lines: int = _MAX_READ_LINES) -> str:
        """Read a text file of the workspace; says how many lines it has in all.

        Args:
            path: file relative to the workspace root.
            start_line: first line to return, counting from 1.
            max_lines: how many lines to return at most.
        """
        file = self._resolve(path)
        if not file.is_file():
            raise ValueError(f"{path!r} is not a file in the workspace")
        lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max(1, start_line)
        chunk = lines[start - 1 : start - 1 + max(1, min(max_lines, _MAX_READ_LINES))]
        end = start + len(chunk) - 1
        header = f"{path}: {len(lines)} lines, showing {start}-{end}"
        return header + "\n" + "\n".join(chunk)

    def write_file(self, path: str, content: str) -> str:
        """Write (create or replace) a text file in the workspace.

        Args:
            path: file relative to the workspace root.
            content: the full new text of the file.
        """
        file = self._resolve(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(content, encoding="utf-8")
        return f"wrote {len(content)} characters to {path}"

    def search_files(self, text: str, path: str = ".") -> str:
        """Find lines containing a text in the workspace's files.

        Args:
            text: the text to look for (case-insensitive).
            path: folder relative to the workspace root.
        """
        base = self._resolve(path)
        needle = text.lower()
        hits: list[str] = []
        for file in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = file.relative_to(self.root)
            if _hidden(rel):
                continue
            try:
                content = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for number, line in enumerate(content.splitlines(), 1):
                if needle in line.lower():
                    hits.append(f"{rel.as_posix()}:{number}: {line.strip()[:200]}")
                    if len(hits) >= _MAX_HITS:
                        return "\n".join([*hits, "… more matches not shown"])
        return "\n".join(hits) if hits else f"no line contains {text!r}"

    def _resolve(self, path: str) -> Path:
        candidate = Path(path)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise PermissionError(f"{path!r} is outside the workspace: use a relative path")
        resolved = (self.root / candidate).resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise PermissionError(f"{path!r} leads outside the workspace")
        return resolved


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)
