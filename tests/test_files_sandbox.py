"""The files toolset never reads, writes, lists, searches or shows anything outside its root.

A corpus of hostile paths runs through every operation; a thread swaps folders and files for
links to the outside while the tools read and write; legitimate use keeps working.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hermes_jupyter.core.errors import ConfigurationError
from hermes_jupyter.tools import ToolRegistry, WorkspaceFiles

CANARY = "CANARY-7f3a91-outside"
CANARY_SIZE = 7919  # a size no file of the workspace has: it must never be listed
PASSWD_HEAD = Path("/etc/passwd").read_text().splitlines()[0]
REFUSALS = (OSError, ValueError)  # PermissionError, FileNotFoundError, ... are OSErrors


def canary_text(size: int) -> str:
    line = f"root:x:0:0 {CANARY} secret line\n"
    body = line * (size // len(line) + 1)
    return body[:size]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """tmp/outside (canaries), tmp/ws (the workspace, full of traps), tmp/ws_link → ws."""
    out, ws = tmp_path / "outside", tmp_path / "ws"
    (out / "sub").mkdir(parents=True)
    (out / "canary.txt").write_text(canary_text(CANARY_SIZE))
    (out / "sub" / "canary.txt").write_text(canary_text(6133))
    (out / "shared.txt").write_text("shared by a hard link\n")
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "sales.csv").write_text("region,amount\nnorth,10\nsouth,20\n")
    (ws / "notes.txt").write_text("alpha\nBeta line\n")
    (ws / "nested" / "in").mkdir(parents=True)
    links = {
        "p": "/etc/passwd",
        "passwd_rel": os.path.relpath("/etc/passwd", ws),
        "abs_out": str(out / "canary.txt"),
        "rel_out": "../outside/canary.txt",
        "dir_out": str(out),
        "dir_out_rel": "../outside",
        "nested/in/deep_out": "../../../outside",
        "parent_link": "..",
        "root_link": "/",
        "etc_link": "/etc",
        "proc_root": "/proc/self/root",
        "proc_cwd": "/proc/self/cwd",
        "zero_link": "/dev/zero",
        "chain1": "chain2",
        "chain2": "chain3",
        "chain3": str(out / "canary.txt"),
        "loop_a": "loop_b",
        "loop_b": "loop_a",
        "self_loop": "self_loop",
        "dangling_out": "../outside/from_dangling.txt",
        "dangling_abs": str(tmp_path / "escape_dangling_abs.txt"),
        "dangling_dir_out": "../made_by_tool",
        "sneaky": "data/../../outside/canary.txt",
        "ws_via_link": str(tmp_path / "ws_link" / "notes.txt"),
    }
    for name, target in links.items():
        os.symlink(target, ws / name)
    os.mkfifo(ws / "pipe")
    if os.geteuid() == 0:
        os.mknod(ws / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    os.link(out / "shared.txt", ws / "hardlinked.txt")
    os.symlink(ws, tmp_path / "ws_link")
    yield {"tmp": tmp_path, "out": out, "ws": ws, "ws_link": tmp_path / "ws_link"}


def hostile_paths(world: dict[str, Path], token: str) -> list[str]:
    out = str(world["out"])
    return [
        # dot-dot, lexical and hidden in the middle
        "..", "../", "../outside/canary.txt", "../../etc/passwd", "data/../../outside/canary.txt",
        "a/b/../../../outside/canary.txt", "./../outside", "data/./../../outside/sub",
        "data/../..", f"../hj-escape-{token}.txt", "nested/in/../../../outside/canary.txt",
        # absolute and home
        "/etc/passwd", f"{out}/canary.txt", out, "//etc/passwd", "/", "/proc/self/root/etc/passwd",
        f"/tmp/hj-escape-{token}.txt", "~", "~/.bashrc", f"~/hj-escape-{token}.txt", "~root/x",
        # Windows separators and percent-encoding (never decoded)
        "..\\outside\\canary.txt", "..\\..\\etc\\passwd", "data\\..\\..\\outside", "C:\\Windows",
        "%2e%2e/outside/canary.txt", "%2E%2E%2Foutside%2Fcanary.txt", "..%2f..%2foutside",
        "%252e%252e/outside/canary.txt", "..%5c..%5coutside",
        # NUL bytes, surrogates, over-long names and paths
        "canary\x00.txt", "data/\x00/../../outside", "\x00", "caf\udce9/\ud800",
        "x" * 300, "a/" * 2100 + "b", "../" * 50 + "etc/passwd",
        # links: files, folders, chains, loops, dangling, through /proc and /dev
        "p", "passwd_rel", "abs_out", "rel_out", "dir_out", "dir_out/canary.txt",
        "dir_out/sub/canary.txt", "dir_out/new.txt", "dir_out_rel/canary.txt",
        "nested/in/deep_out/canary.txt", "parent_link/outside/canary.txt", "root_link/etc/passwd",
        "etc_link/passwd", "proc_root/etc/passwd", "proc_cwd", "zero_link", "chain1", "loop_a",
        "loop_a/x", "self_loop", "dangling_out", "dangling_abs", "dangling_dir_out/new.txt",
        "sneaky", "ws_via_link",
        # special files inside the workspace
        "pipe", "zero",
    ]


def snapshot(top: Path, skip: Path) -> dict[str, tuple[int, int, str]]:
    """Every name under `top` except the workspace: kind, size and a digest of its content."""
    seen: dict[str, tuple[int, int, str]] = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in dirs + files:
            where = Path(folder, name)
            st = where.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(where.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(where)
            else:
                digest = ""
            seen[str(where.relative_to(top))] = (stat.S_IFMT(st.st_mode), st.st_size, digest)
    return seen


def leaks(text: str) -> list[str]:
    """What in a result came from outside: canary text, /etc/passwd, an outside size."""
    found = [s for s in (CANARY, PASSWD_HEAD, f"\t{CANARY_SIZE}", "\t6133") if s in text]
    return found


def attempt(fn: Callable[..., str], *args: object) -> tuple[str, str | None, bool]:
    """(text shown to the model, a complaint about the refusal or None, whether it succeeded)."""
    try:
        return fn(*args), None, True
    except REFUSALS as err:
        text = str(err)
        problem = None if text and "\n" not in text else f"not one line: {text!r}"
        return text, problem, False
    except Exception as err:  # any other kind is a defect to report
        return repr(err), f"raised {type(err).__name__}", False


def operations(files: WorkspaceFiles, path: str) -> list[tuple[str, Callable[..., str], tuple]]:
    return [
        ("read_file", files.read_file, (path,)),
        ("write_file", files.write_file, (path, "WRITTEN-BY-THE-TOOL\n")),
        ("list_files", files.list_files, (path,)),
        ("search_files", files.search_files, ("a91-outside", path)),
        ("search_files", files.search_files, ("root", path)),
    ]


@pytest.fixture
def open_fifo(world: dict[str, Path]) -> Iterator[None]:
    """Hold both ends of ws/pipe open, so that code which does open it cannot hang the run."""
    reader = os.open(world["ws"] / "pipe", os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(world["ws"] / "pipe", os.O_WRONLY | os.O_NONBLOCK)
    yield
    os.close(writer)
    os.close(reader)


@pytest.mark.parametrize("via", ["root", "root given as a link"])
def test_hostile_paths_through_every_operation_never_escape(world, open_fifo, via):
    token = os.urandom(4).hex()
    files = WorkspaceFiles(world["ws"] if via == "root" else world["ws_link"])
    paths = hostile_paths(world, token)
    assert len(paths) >= 40
    before = snapshot(world["tmp"], world["ws"])
    fds_before = len(os.listdir("/proc/self/fd"))
    escapes: list[str] = []
    bad_refusals: list[str] = []
    tries = 0
    for path in [*paths, "."]:
        for op, fn, args in operations(files, path):
            tries += 1
            text, problem, _ = attempt(fn, *args)
            escapes += [f"{op}({path!r}) showed {leak!r}" for leak in leaks(text)]
            if problem:
                bad_refusals.append(f"{op}({path[:60]!r}): {problem}")
            after = snapshot(world["tmp"], world["ws"])
            if after != before:
                changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
                escapes.append(f"{op}({path!r}) changed outside: {sorted(changed)}")
                before = after
    for stray in (Path(f"/tmp/hj-escape-{token}.txt"), Path.home() / f"hj-escape-{token}.txt"):
        if stray.exists():
            escapes.append(f"a write landed at {stray}")
            stray.unlink()
    assert tries >= 5 * 40
    assert escapes == []
    assert bad_refusals == []
    assert len(os.listdir("/proc/self/fd")) == fds_before  # no descriptor left open


def test_search_through_a_link_to_etc_passwd_shows_nothing(world):
    """The issue's reproduction: read_file('p') was refused, search_files('root') was not."""
    files = WorkspaceFiles(world["ws"])
    with pytest.raises(PermissionError, match="outside the workspace"):
        files.read_file("p")
    found = files.search_files("root")
    assert PASSWD_HEAD not in found and CANARY not in found


def test_list_shows_no_size_of_anything_outside(world):
    listing = WorkspaceFiles(world["ws"]).list_files()
    assert leaks(listing) == []
    assert "abs_out\t(link, not followed)" in listing
    assert "data/sales.csv\t32" in listing


def test_special_files_are_refused_without_waiting_for_a_peer(world):
    """A FIFO with no writer would block an open forever; a device is never opened."""
    files = WorkspaceFiles(world["ws"])
    specials = ["pipe", "zero"] if (world["ws"] / "zero").exists() else ["pipe"]
    for name in specials:
        with pytest.raises(PermissionError, match="not a regular file"):
            files.read_file(name)
        with pytest.raises(PermissionError, match="not a regular file"):
            files.write_file(name, "x")
        assert stat.S_ISFIFO((world["ws"] / "pipe").lstat().st_mode)
    assert files.search_files("anything") == "no line contains 'anything'"


def test_a_write_never_lands_in_a_file_hard_linked_from_outside(world):
    """Reading a hard link is allowed (it cannot be told from an inside file: documented)."""
    files = WorkspaceFiles(world["ws"])
    assert "shared by a hard link" in files.read_file("hardlinked.txt")
    files.write_file("hardlinked.txt", "new text")
    assert (world["out"] / "shared.txt").read_text() == "shared by a hard link\n"
    assert (world["ws"] / "hardlinked.txt").read_text() == "new text"


def test_a_workspace_link_repointed_after_start_leads_nowhere_outside(world):
    files = WorkspaceFiles(world["ws_link"])
    assert files.root == world["ws"].resolve()
    world["ws_link"].unlink()
    os.symlink(world["out"], world["ws_link"])
    assert CANARY not in files.read_file("notes.txt") and "alpha" in files.read_file("notes.txt")
    assert leaks(files.list_files()) == [] and leaks(files.search_files("root")) == []


def test_a_replaced_workspace_folder_is_refused(world, tmp_path):
    files = WorkspaceFiles(world["ws"])
    world["ws"].rename(tmp_path / "ws_moved")
    world["out"].rename(world["ws"])
    for op, fn, args in operations(files, "canary.txt"):
        text, problem, _ = attempt(fn, *args)
        assert CANARY not in text and problem is None, op
        assert "replaced" in text
    assert "WRITTEN" not in (world["ws"] / "canary.txt").read_text()


def test_legitimate_use_keeps_working(world):
    """Nested folders, `..` that stays inside, inside links (followed by read and write)."""
    ws = world["ws"]
    files = WorkspaceFiles(ws)
    os.symlink("data", ws / "latest")
    os.symlink("data/sales.csv", ws / "alias.csv")
    os.symlink(str(ws.resolve() / "notes.txt"), ws / "abs_inside.txt")
    os.symlink("../data/sales.csv", ws / "nested" / "up.csv")
    assert files.write_file("a/b/c/deep.txt", "deep\nneedle here\n").startswith("wrote 17")
    shown = files.read_file("a/b/c/deep.txt")
    assert shown == "a/b/c/deep.txt: 2 lines, showing 1-2\ndeep\nneedle here"
    assert files.read_file("a/b/../../notes.txt").endswith("alpha\nBeta line")
    assert "north,10" in files.read_file("latest/sales.csv")
    assert "north,10" in files.read_file("alias.csv")
    assert "north,10" in files.read_file("nested/up.csv")
    assert "alpha" in files.read_file("abs_inside.txt")
    files.write_file("alias.csv", "region,amount\n")
    assert (ws / "data" / "sales.csv").read_text() == "region,amount\n"
    assert (ws / "alias.csv").is_symlink()
    files.write_file("%2e%2e/literal.txt", "kept literally")
    assert (ws / "%2e%2e" / "literal.txt").read_text() == "kept literally"
    listing = files.list_files()
    assert "a/b/c/deep.txt\t17" in listing and "latest\t(link, not followed)" in listing
    assert files.search_files("needle") == "a/b/c/deep.txt:2: needle here"
    assert files.search_files("region") == "data/sales.csv:1: region,amount"
    assert files.list_files("a/b", "*.txt") == "a/b/c/deep.txt\t17"
    assert files.list_files("latest") == "data/sales.csv\t14"
    assert [p.name for p in ws.iterdir() if p.name.startswith(".hj-")] == []


@pytest.mark.parametrize(("path", "kind", "words"), [
    ("missing.txt", FileNotFoundError, "does not exist in the workspace"),
    ("data", IsADirectoryError, "is a folder"),
    ("notes.txt/x", NotADirectoryError, "is not a folder"),
    ("loop_a", PermissionError, "too many links"),
    ("x" * 300, ValueError, "longer than 255 bytes"),
])
def test_refusals_say_what_is_wrong_in_one_line(world, path, kind, words):
    with pytest.raises(kind, match=words) as caught:
        WorkspaceFiles(world["ws"]).read_file(path)
    assert "\n" not in str(caught.value) and str(world["tmp"]) not in str(caught.value)


def test_a_missing_workspace_is_a_configuration_error(tmp_path):
    for root in (tmp_path / "missing", tmp_path / "file.txt"):
        (tmp_path / "file.txt").write_text("x")
        with pytest.raises(ConfigurationError, match="is not an existing folder"):
            WorkspaceFiles(root)


def test_walks_are_bounded_and_say_when_they_were_cut(world, monkeypatch):
    from hermes_jupyter.tools import files as files_module

    files = WorkspaceFiles(world["ws"])
    deep = world["ws"].joinpath(*["d"] * 70)
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("needle at the bottom\n")
    assert "1 folders deeper than 64 levels were not entered" in files.list_files()
    assert "bottom.txt" not in files.search_files("needle at the bottom")
    assert "bottom.txt" in files.search_files("needle", "/".join(["d"] * 10))
    monkeypatch.setattr(files_module, "_MAX_WALK_ENTRIES", 5)
    assert "stopped after 5 entries" in files.list_files()
    assert "stopped after 5 entries" in files.search_files("zzz")
    monkeypatch.setattr(files_module, "_MAX_WALK_ENTRIES", 20_000)
    monkeypatch.setattr(files_module, "_MAX_SEARCH_BYTES", 40)
    assert "stopped after reading" in files.search_files("zzz")


def test_a_refusal_reaches_the_model_as_one_line(world):
    registry = ToolRegistry(WorkspaceFiles(world["ws"]).tools())
    with ThreadPoolExecutor(1) as pool:
        for name, arguments in [
            ("read_file", {"path": "../outside/canary.txt"}),
            ("search_files", {"text": "root", "path": "dir_out"}),
            ("write_file", {"path": "dir_out/new.txt", "content": "x"}),
            ("list_files", {"path": "etc_link"}),
        ]:
            outcome = asyncio.run(registry.run(name, json.dumps(arguments), pool))
            assert not outcome.ok and "\n" not in outcome.text, outcome.text
            assert outcome.text.startswith(f"Error: {name} raised PermissionError: ")
            assert "outside the workspace" in outcome.text


# --- the swap race -------------------------------------------------------------------------

RACE_ROUNDS = 20_000  # each round exchanges d <-> d_swap and f.txt <-> f_swap, then back

# A separate process, so that the swaps run truly in parallel with the tools (a thread would
# take turns with them on the GIL). renameat2(RENAME_EXCHANGE) swaps two names atomically.
FLIPPER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pairs = [(os.fsencode(a), os.fsencode(b)) for a, b in zip(sys.argv[2::2], sys.argv[3::2])]
print("ready", flush=True)
for _ in range(int(sys.argv[1]) * 2):
    for a, b in pairs:
        if libc.renameat2(-100, a, -100, b, 2):
            raise OSError(ctypes.get_errno(), "renameat2")
"""


def test_swapping_folders_and_files_for_links_never_lets_a_call_out(world):
    ws, out = world["ws"], world["out"]
    (ws / "d").mkdir()
    (ws / "d" / "inner.txt").write_text("inside d\n")
    (ws / "d" / "other.txt").write_text("inside d\n")
    (out / "inner.txt").write_text(canary_text(500))
    (out / "other.txt").write_text(canary_text(500))
    (ws / "f.txt").write_text("inside f\n")
    os.symlink(out, ws / "d_swap")
    os.symlink(out / "inner.txt", ws / "f_swap")
    files = WorkspaceFiles(ws)
    calls = [
        ("read d", files.read_file, ("d/inner.txt",)),
        ("read f", files.read_file, ("f.txt",)),
        ("search d", files.search_files, ("a91-outside", "d")),
        ("list d", files.list_files, ("d",)),
        ("write d", files.write_file, ("d/written.txt", "written\n")),
        ("rewrite d", files.write_file, ("d/other.txt", "inside d\n")),
    ]
    escapes: list[str] = []
    rounds = served = 0
    names = [str(ws / n) for n in ("d", "d_swap", "f.txt", "f_swap")]
    with subprocess.Popen([sys.executable, "-c", FLIPPER, str(RACE_ROUNDS), *names],
                          stdout=subprocess.PIPE, text=True) as flipper:
        assert flipper.stdout is not None and flipper.stdout.readline() == "ready\n"
        while flipper.poll() is None:
            rounds += 1
            for op, fn, args in calls:
                text, problem, ok = attempt(fn, *args)
                served += ok
                escapes += [f"{op}: {leak}" for leak in leaks(text)]
                if problem:
                    escapes.append(f"{op}: {problem}")
                escapes += landed_outside(out, op)
    assert flipper.returncode == 0
    assert (ws / "d").is_dir() and not (ws / "d").is_symlink()  # an even number of swaps
    assert rounds > 0 and served > 0
    assert escapes == [], f"{len(escapes)} escapes in {rounds} rounds: {escapes[:5]}"


def landed_outside(out: Path, op: str) -> list[str]:
    """Writes of the race that reached the outside folder (undone, so each one counts once)."""
    found = []
    if (out / "written.txt").exists():
        (out / "written.txt").unlink()
        found.append(f"{op}: a write landed in outside/written.txt")
    if CANARY not in (out / "other.txt").read_text():
        (out / "other.txt").write_text(canary_text(500))
        found.append(f"{op}: a write replaced outside/other.txt")
    return found
