"""Generated magic lines through a real shell: no traceback ever, every rejection fails its
cell with one `UsageError` line, and a rejected line creates no task."""


from __future__ import annotations

import random
from collections import Counter

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from hermes_jupyter.notebook import kernel as current
from hermes_jupyter.testing import Reply

SEED = 13
LINES = 360

FLAGS: dict[str, list[str]] = {
    "delegate": ["-n", "--name", "-m", "-c", "--context", "-t", "--tools", "--toolsets",
                 "--max-iterations", "--timeout"],
    "check_task": ["-l", "--lines"],
    "steer_task": [],
    "collect_task": ["--timeout", "-o", "--output"],
    "cancel_task": ["--all"],
    "list_tasks": ["--history"],
    "hermes_config": [],
    "hermes_dashboard": [],
    "resume_task": ["-t", "--tools", "--toolsets"],
}
UNKNOWN_FLAGS = ["--bogus", "-z", "--timeout=", "--timeout=nan", "--", "-", "---", "--all=1"]
VALUES = [
    "t1", "t2", "t99", "job", "nosuch", "x", "bad", "notes", "add", "big", "x,bad", "a,,b",
    "'abc", '"abc', "'quoted value'", '"a b"', "''", '""', "'", '"', "\\", "\\'",
    "nan", "NaN", "inf", "-inf", "1e308", "1e400", "-1", "0", "0.001", "3", "2.5", "1_000",
    "99999999999999999999999999", "-99999999999999999999", "0x10", "١٢",
    "é", "任务", "🙂", "na\u0308me", "\u200b", "\x00", "\t", "none", "files", "python",
    "files,python", "shell", "1x", "None", "class", "{x}", "{nosuch}", "{{x}}", "$x", "$$x",
    "$nosuch", "{1/0}", "{", "}", "{x!r}", "{bad}",
]
PROSE = ["summarise", "the", "notes", "what's", "next?", "{x}", "{nosuch}", "{{literal}}",
         "$x", "$5", "costs", "\"quoted\"", "it's", "ünïcödé", "数据", "🙂", "{", "}", "?",
         "-n", "--timeout", "inf", "'", "\\n"]


class Bad:
    """An object whose str() and repr() raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def generate(rng: random.Random) -> list[str]:
    lines = []
    for _ in range(LINES):
        magic = rng.choice(list(FLAGS))
        words: list[str] = []
        for _ in range(rng.randint(0, 4)):
            pick = rng.random()
            if pick < 0.45 and FLAGS[magic]:
                words += [rng.choice(FLAGS[magic]), rng.choice(VALUES)]
            elif pick < 0.6:
                words.append(rng.choice(UNKNOWN_FLAGS))
            else:
                words.append(rng.choice(VALUES))
        if magic in ("delegate", "steer_task") and rng.random() < 0.8:
            words += rng.sample(PROSE, rng.randint(1, 5))
        line = f"%{magic} {' '.join(words)}".rstrip()
        if magic == "delegate" and rng.random() < 0.15:
            line = f"%%delegate {' '.join(words[:2])}\n{' '.join(rng.sample(PROSE, 3))}"
        elif rng.random() < 0.15:
            line = f"r = {line}"
        lines.append(line)
    return lines


def test_generated_magic_lines_never_show_a_traceback(live, llm, capsys):
    shell: InteractiveShell = live
    llm.default = Reply(text="ok")
    shell.user_ns.update(x=1, bad=Bad(), notes="ship it", big={i: i for i in range(50_000)},
                         add=lambda a, b: a + b)
    shell.run_cell("%config HermesJupyter.wait_notice_after = 60")
    shell.run_cell("%delegate -n job first task")
    capsys.readouterr()
    outcomes: Counter[str] = Counter()
    for line in generate(random.Random(SEED)):
        before = len(current.all_statuses())
        result = shell.run_cell(line)
        out, err = capsys.readouterr()
        after = len(current.all_statuses())
        where = f"{line!r}\nstdout: {out!r}\nstderr: {err!r}"
        assert "Traceback" not in out + err, where
        assert result.error_before_exec is None, where
        magic = line.split("%")[-1 if line.startswith("%%") else 1].split()[0]
        if result.success:
            assert err == "", where  # anything said on stderr is a rejection: it must fail
            outcomes["accepted"] += 1
            outcomes[f"accepted %{magic}"] += 1
            outcomes["tasks created"] += after - before
        else:
            assert type(result.error_in_exec) is UsageError, where
            assert err.startswith("UsageError: %") and err.count("\n") == 1, where
            assert after == before, where  # a rejected line creates no task
            outcomes["rejected"] += 1
            outcomes[f"rejected %{magic}"] += 1
    for task in current.peek_session().tasks() if current.peek_session() else ():
        task.cancel()
    print(dict(outcomes))
    assert outcomes["accepted"] + outcomes["rejected"] == LINES >= 300
    # the generator reaches both sides of every magic often enough to mean something
    assert outcomes["rejected"] > 100 and outcomes["accepted"] > 50
    assert outcomes["tasks created"] > 10
    for magic in FLAGS:  # every magic was both refused and (where it can be) accepted
        assert outcomes[f"rejected %{magic}"] > 0, magic
        # (its tasks end at once, so a steer is always refused there: tests/test_magics.py)
        # (nor can a task be resumed without a journal: tests/test_resume_magics.py)
        assert outcomes[f"accepted %{magic}"] > 0 or magic in ("steer_task", "resume_task"), \
            magic
