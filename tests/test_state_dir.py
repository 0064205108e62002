"""hermes_jupyter's own state (`.hermes/`, the task journal) is out of the tools' reach, and a
journal that cannot be opened is one line saying what to do, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hermes_jupyter as hj
from hermes_jupyter.core.errors import ConfigurationError
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import WorkspaceFiles

from .conftest import SECRET
from .test_magics import cell, rejected

JOURNAL_FILES = ("tasks.sqlite", "tasks.sqlite-wal", "tasks.sqlite-shm")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace with a real journal in it and links that lead into `.hermes`."""
    root = tmp_path / "ws"
    root.mkdir()
    with hj.Session(model="m", base_url="http://127.0.0.1:9/v1", api_keys=["k"],
                    workspace=root, journal=True):
        pass
    (root / "sub").mkdir()
    os.symlink(".hermes", root / "state")
    os.symlink("../.hermes/tasks.sqlite", root / "sub" / "db")
    os.symlink(str(root / ".hermes"), root / "abs_state")
    os.symlink("sub/../.hermes", root / "dotted")
    return root


STATE_PATHS = [
    ".hermes/tasks.sqlite", ".hermes/tasks.sqlite-wal", ".hermes/tasks.sqlite-shm",
    "./.hermes/tasks.sqlite", "sub/../.hermes/tasks.sqlite", ".hermes//tasks.sqlite",
    ".HERMES/tasks.sqlite", ".Hermes/tasks.sqlite", "\uff0ehermes/tasks.sqlite",
    ".hermes./tasks.sqlite", "state/tasks.sqlite", "sub/db", "abs_state/tasks.sqlite",
    "dotted/tasks.sqlite", ".hermes/new.txt", ".hermes/sub/new.txt", "state/new.txt",
]


@pytest.mark.parametrize("path", STATE_PATHS)
def test_the_files_toolset_never_reads_or_writes_the_state_folder(ws, path):
    before = {name: (ws / ".hermes" / name).read_bytes() for name in JOURNAL_FILES
              if (ws / ".hermes" / name).exists()}
    files = WorkspaceFiles(ws)
    with pytest.raises(PermissionError, match=r"\.hermes.*own state"):
        files.read_file(path)
    with pytest.raises(PermissionError, match=r"\.hermes.*own state"):
        files.write_file(path, "garbage")
    after = {name: (ws / ".hermes" / name).read_bytes() for name in JOURNAL_FILES
             if (ws / ".hermes" / name).exists()}
    assert after == before
    assert sorted(p.name for p in (ws / ".hermes").iterdir()) == sorted(before)


@pytest.mark.parametrize("folder", [".hermes", "./.hermes/", "state", "abs_state", ".HERMES"])
def test_the_state_folder_is_neither_listed_nor_searched(ws, folder):
    files = WorkspaceFiles(ws)
    with pytest.raises(PermissionError, match="own state"):
        files.list_files(folder)
    with pytest.raises(PermissionError, match="own state"):
        files.search_files("SQLite", folder)
    assert ".hermes" not in files.list_files(".")
    assert "no line contains" in files.search_files("SQLite format", ".")


def test_other_hidden_names_still_work(ws):
    files = WorkspaceFiles(ws)
    files.write_file(".hermesx/notes.txt", "kept")
    files.write_file("sub/.hermes/notes.txt", "kept too")  # only the top-level folder is ours
    assert files.read_file(".hermesx/notes.txt").endswith("kept")
    assert files.read_file("sub/.hermes/notes.txt").endswith("kept too")


def test_a_model_cannot_corrupt_the_journal_through_the_files_toolset(llm, tmp_path):
    """The reviewer's case: read the WAL, overwrite the database and the WAL; the next
    session must still open the journal and find the first task."""
    calls = [ToolCall("read_file", {"path": ".hermes/tasks.sqlite-wal"}),
             ToolCall("write_file", {"path": ".hermes/tasks.sqlite", "content": "garbage"}),
             ToolCall("write_file", {"path": ".HERMES/../.hermes/tasks.sqlite-wal",
                                     "content": "garbage"})]
    llm.on("first", Reply(text="first result"))
    llm.on("attack", Reply(tool_calls=calls), Reply(text="done"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    journal=True) as s:
        s.delegate("first").collect(10)
        result = s.delegate("attack", toolsets=["files"]).collect(10)
    assert [e.ok for e in result.tool_trace] == [False, False, False]
    assert all("own state" in e.result_preview for e in result.tool_trace)
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                    journal=True) as again:
        assert [r.summary for r in again.history()] == ["first result", "done"]


def corrupt(root: Path) -> Path:
    (root / ".hermes").mkdir(parents=True)
    (root / ".hermes" / "tasks.sqlite").write_bytes(b"garbage, not a database" * 100)
    return root / ".hermes" / "tasks.sqlite"


def unwritable(root: Path) -> Path:
    (root / ".hermes").write_text("a file where the journal's folder should be")
    return root / ".hermes" / "tasks.sqlite"


@pytest.mark.parametrize("make", [corrupt, unwritable])
def test_a_journal_that_cannot_be_opened_is_one_line(llm, tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=tmp_path,
                   journal=True)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "journal=False" in message and "move" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_journal_in_an_unwritable_place_is_one_line(llm):
    with pytest.raises(ConfigurationError, match=r"'/proc/.hermes/tasks.sqlite' cannot be "):
        hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace="/proc",
                   journal=True)


@pytest.mark.parametrize("make", [corrupt, unwritable])
def test_a_magic_with_a_broken_journal_fails_with_one_line(live, llm, capsys, tmp_path, make):
    path = make(tmp_path)  # the shell's working folder is tmp_path: the default workspace
    cell(live, "%config HermesJupyter.journal = True", capsys)
    message = rejected(live, "%delegate anything", capsys)
    assert message.startswith("%delegate: The journal ") and str(path) in message
    assert "journal=False" in message
    assert llm.requests == []
