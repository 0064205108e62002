"""Tools: schemas from plain callables, the files and python toolsets, calls that go wrong."""

from __future__ import annotations

import asyncio
import json
import os
import select
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Optional

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools import PythonRunner, ToolRegistry, WorkspaceFiles, function_schema

from .test_processes import host_pids


def describe(
    path: str,
    limit: int = 10,
    ratio: float = 0.5,
    verbose: bool = False,
    tags: list[str] | None = None,
    mode: Literal["fast", "slow"] = "fast",
    extra: Optional[dict] = None,  # noqa: UP045 - the old spelling must work too
) -> str:
    """Describe a file.

    Args:
        path: where the file is.
        limit: how many rows.
    """
    return path


def test_schema_from_type_hints_and_docstring():
    fn = function_schema(describe)["function"]
    assert fn["name"] == "describe"
    assert fn["description"] == "Describe a file."
    props = fn["parameters"]["properties"]
    assert props["path"] == {"type": "string", "description": "where the file is."}
    assert props["limit"] == {"type": "integer", "description": "how many rows.", "default": 10}
    assert props["ratio"]["type"] == "number" and props["verbose"]["type"] == "boolean"
    assert props["tags"] == {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                       {"type": "null"}], "default": None}
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"], "default": "fast"}
    assert props["extra"]["anyOf"][0] == {"type": "object", "additionalProperties": True}
    assert fn["parameters"]["required"] == ["path"]
    assert function_schema(describe) is function_schema(describe)  # cached


def test_schema_of_bound_methods_skips_self(tmp_path):
    files = WorkspaceFiles(tmp_path)
    schema = function_schema(files.read_file)["function"]
    assert "self" not in schema["parameters"]["properties"]
    assert schema["parameters"]["required"] == ["path"]


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n")
    (tmp_path / "notes.txt").write_text("alpha\nBeta line\n")
    return tmp_path


def test_files_toolset_lists_reads_writes_and_searches(workspace):
    files = WorkspaceFiles(workspace)
    listing = files.list_files()
    assert "data/sales.csv\t32" in listing and "notes.txt" in listing
    assert files.read_file("data/sales.csv").startswith("data/sales.csv: 3 lines, showing 1-3")
    assert files.write_file("out/summary.md", "# hi") == "wrote 4 characters to out/summary.md"
    assert (workspace / "out" / "summary.md").read_text() == "# hi"
    assert files.search_files("beta") == "notes.txt:2: Beta line"


@pytest.mark.parametrize("path", ["../secret", "/etc/passwd", "data/../../x"])
def test_files_toolset_refuses_paths_outside_the_workspace(workspace, path):
    with pytest.raises(PermissionError, match="outside the workspace"):
        WorkspaceFiles(workspace).read_file(path)


def test_files_toolset_refuses_symlinks_out_of_the_workspace(workspace, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside, workspace / "link")
    with pytest.raises(PermissionError, match="leads outside"):
        WorkspaceFiles(workspace).read_file("link/secret.txt")


def run(coro):
    return asyncio.run(coro)


def test_python_tool_runs_code_in_a_subprocess(tmp_path):
    runner = PythonRunner(tmp_path)
    assert run(runner.run_python(f"import os; print(os.getpid() != {os.getpid()})")) == "True\n"
    assert "[exit code 1]" in run(runner.run_python("raise SystemExit(1)"))
    out = run(runner.run_python("import time; time.sleep(30)", timeout=0.2))
    assert "timeout" in out


def test_registry_turns_every_failure_into_text(tmp_path):
    def needs_int(n: int) -> int:
        """Double it."""
        return n * 2

    registry = ToolRegistry([needs_int])
    with ThreadPoolExecutor(1) as pool:
        ok = run(registry.run("needs_int", '{"n": 4}', pool))
        assert ok.ok and ok.text == "8"
        wrong = run(registry.run("needs_int", '{"m": 4}', pool))
        assert not wrong.ok and "- n: required, but missing" in wrong.text
        bad_json = run(registry.run("needs_int", "{n: 4", pool))
        assert "not valid JSON" in bad_json.text
        not_object = run(registry.run("needs_int", "[1]", pool))
        assert "JSON object" in not_object.text


def test_files_toolset_through_a_task(llm, workspace):
    session_ws = hj.Session(model="m", base_url=llm.base_url, api_keys=["k"],
                            workspace=workspace, toolsets=["files"])
    llm.on("csv", Reply(tool_calls=[ToolCall("read_file", {"path": "data/sales.csv"})]),
           Reply(text="3 lines"))
    result = session_ws.delegate("read the csv").collect(10)
    session_ws.close()
    tool_msgs = [m for m in llm.requests[-1].messages if m["role"] == "tool"]
    assert "north,10" in tool_msgs[0]["content"]
    assert {t["function"]["name"] for t in llm.requests[0].tools} == {
        "list_files", "read_file", "write_file", "search_files"}
    assert result.summary == "3 lines"


def test_cancel_kills_a_running_python_tool(session, llm, tmp_path):
    fifo = tmp_path / "started.fifo"
    os.mkfifo(fifo)
    code = (f"import os, time; f = open({str(fifo)!r}, 'w'); "
            "f.write(os.readlink('/proc/self/ns/pid') + ' ' + str(os.getpid())); "
            "f.close(); time.sleep(60)")
    llm.on("sleepy", Reply(tool_calls=[ToolCall("run_python", json.dumps({"code": code}))]))
    task = session.delegate("sleepy python", toolsets=["python"])
    with open(fifo) as f:  # blocks until the tool's process opened it: it runs now
        [pid] = host_pids(f.read())  # the tool runs in a PID namespace of its own
    watcher = os.pidfd_open(pid)
    session.cancel(task)
    assert task.collect(2).state is hj.TaskState.CANCELLED
    readable, _, _ = select.select([watcher], [], [], 2)  # a pidfd is readable once it exits
    os.close(watcher)
    assert readable, f"python tool process {pid} still runs after cancel"
    assert len(llm.requests) == 1
