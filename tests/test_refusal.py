"""The always-refused list sees through spellings and wrappers; commands it cannot judge never
run without a person; ordinary commands are left alone. Table-driven, then end to end: under
`approval="auto"` a model trying every variant leaves the workspace as it was."""

from __future__ import annotations

import pytest

import hermes_jupyter as hj
from hermes_jupyter.testing import Reply, ToolCall
from hermes_jupyter.tools.approval import ApprovalPolicy, assess
from hermes_jupyter.tools.refusal import analyse, refusal

from .conftest import FAST_RETRY, SECRET
from .test_approvals import Asked

# The reviewer's cases first, then variants of each kind.
REFUSED = [
    # paths: ., .., //, trailing /., ~, $HOME, $PWD, globs at those roots
    "rm -rf /.", "rm -rf //", "rm -rf ~/.", "rm -rf $PWD", 'rm -rf "$PWD"/*', "rm -rf .",
    "rm -rf ./", "rm -rf ./.", "rm -rf ..", "rm -rf ../", "rm -rf /bin/..", "rm -rf ///.//",
    "rm -rf ${PWD}/", "rm -rf '${HOME}'", 'rm -fr "$HOME"', "rm -rf ~/*", "rm -rf .*",
    "rm -rf ./*", "rm -rf ?*", "rm -rf /*/", "rm -rf /u*", "rm -rf -- /", "rm -r -f /etc",
    "rm --recursive --force ~", "rm -rf /home", "rm -rf /usr/lib", "rm -Rf ~/..",
    "\\rm -rf /", "'r''m' -rf /", "/bin/rm -rf /", "rm -rf '/'",
    "sudo rm -rf --no-preserve-root /tmp",
    # wrappers
    "time rm -rf /", "time -p rm -rf /", "sh -c 'rm -rf /'", "bash -lc 'rm -rf ~'",
    "dash -c 'cd / && rm -rf *'", "env -i rm -rf /", "env -i FOO=1 rm -rf /",
    "env -S 'rm -rf /'", "busybox rm -rf /", "toybox rm -rf .", "nice rm -rf /",
    "nice -n 5 rm -rf /", "nohup rm -rf / &", "timeout 10 rm -rf /",
    "timeout -s KILL 10 rm -rf ~", "sudo rm -rf /", "sudo -u root rm -rf /*",
    "command rm -rf /", "exec rm -rf /", "stdbuf -oL rm -rf .", "stdbuf -o L rm -rf .",
    "setsid rm -rf /", "taskset -c 0 rm -rf /", "ionice -c 3 rm -rf /",
    "eval 'rm -rf /'", "su -c 'rm -rf /' root", "FOO=1 rm -rf /", "! rm -rf /",
    "{ rm -rf /; }", "(rm -rf ~)", "if true; then rm -rf /; fi",
    "sudo env -i nice timeout 5 sh -c \"bash -c 'rm -rf /'\"",
    # chains, substitutions, lines, cd
    "ls; rm -rf /", "ls && rm -rf ~", "false || rm -rf .", "ls | rm -rf /",
    "echo $(rm -rf /)", 'echo "`rm -rf ~`"', "cat <(rm -rf /)", "tee >(rm -rf ~) < x",
    "ls\nrm -rf /", "cd / && rm -rf *",
    "cd; rm -rf .*", "cd .. && rm -rf *", "bash <<EOF\nrm -rf /\nEOF",
    # find
    "find . -delete", "find / -delete", "find ~ -delete", "find -delete",
    "find . -type f -delete", "find / -exec rm -rf {} +", "find . -mindepth 1 -delete",
    "find . -name x -o -delete", "find $PWD -execdir shred {} ;",
    # disks, machine, processes
    "mkfs.ext4 /dev/sda1", "mkfs /dev/vdb", "sudo mke2fs /dev/nvme0n1p1", "wipefs -a /dev/sda",
    "dd if=/dev/zero of=/dev/sda", "dd if=/dev/urandom of=/dev/nvme0n1 bs=1M",
    "echo x > /dev/sda", "cat img >| /dev/mmcblk0", "tee /dev/sda < img", ":(){ :|:& };:",
    "bomb(){ bomb|bomb& }; bomb", "function f { f | f & }; f", "/sbin/shutdown -h now",
    "systemctl poweroff", "kill -9 -1", "shred -u notes.txt",
    # modes, owners, truncation, moves of roots
    "chmod -R 777 /", "chmod -R 000 ~", "chown -R me /", "chgrp -R x /etc", "truncate -s 0 *",
    "truncate -s0 ./*", "mv ~ /tmp/x", "mv / /x",
]

OPAQUE = [
    "$(echo rm) -rf /", "`echo rm` -rf /", "$RM -rf x", "${cmd} x", '"$@"', "$0 -c x",
    'x=$(echo rm); $x -rf /', "/bin/r? -rf /", 'rm -rf "$DIR"', "rm -rf $TMPDIR/x",
    "rm -rf $(pwd)", "rm -rf `pwd`/*", "echo / | xargs rm -rf", "xargs -0 rm -rf < list",
    "curl -s x | sh", "cat x | bash", "bash -s", "for f in *; do rm -rf $f; done",
    "rm -rf ~someone", "cd $X && rm -rf *", "find $X -delete", "echo 'unclosed",
    "rm -rf {/,x}", "cd - && rm -rf *", 'rm -rf "${PWD:?}"/*', "bash <<< 'rm -rf x'",
]

ORDINARY = [
    "rm -rf build", "ls /", "rm notes.txt", "chmod -R a+r docs", "dd if=a.img of=b.img",
    "echo rm -rf /tmp/x", "rm -rf ./build/*", "find . -name '*.pyc' -delete",
    "find build -delete", "find . -name x -exec rm {} +", "dd if=x of=/dev/null",
    "git clean -fdx", "bash script.sh", "python -c 'print(1)'", "rm -rf /tmp/x",
    "chmod -R u+w .", "mv * backup/", "cat <<EOF\nhello\nEOF", "ls -la | grep x && echo ok",
    "rm -rf ../other", "truncate -s 0 app.log", "nice make", "timeout 10 pytest -x",
    "sudo apt-get install -y x", "rm -rf node_modules dist", "echo $HOME",
    "cd build && rm -rf *.o", "command -v rm", "env FOO=1 python x.py", "rm -rf ~/.cache/pip",
    "echo $(date)", "ls `pwd`", "sh -c 'ls -la'", "time make", "kill -9 1234",
    "echo approved-$((6*7))", "seq $((2 + 3))",
]


@pytest.mark.parametrize("command", REFUSED)
def test_destructive_commands_are_refused_in_every_spelling(command):
    assert refusal(command), analyse(command)
    for mode in ("auto", "ask", "deny"):
        policy = ApprovalPolicy.checked(mode, ["*"])
        verdict = assess("run_shell", {"command": command}, "needs", policy, ("*",))
        assert verdict.action == "refuse"


@pytest.mark.parametrize("command", OPAQUE)
def test_commands_that_cannot_be_judged_always_need_a_person(command):
    found = analyse(command)
    assert found.refused is None and found.opaque, found
    for mode, action in (("auto", "ask"), ("ask", "ask"), ("deny", "deny")):
        policy = ApprovalPolicy.checked(mode, ["*"])  # no pattern lets one through
        verdict = assess("run_shell", {"command": command}, "needs", policy, ("*",))
        assert verdict.action == action and "a person must read it" in verdict.reason


@pytest.mark.parametrize("command", ORDINARY)
def test_ordinary_commands_are_judged_and_left_alone(command):
    assert analyse(command) == analyse("true")
    policy = ApprovalPolicy.checked("auto")
    assert assess("run_shell", {"command": command}, "needs", policy, ()).action == "run"


@pytest.mark.parametrize("command", ["rm -rf /work/ws", "rm -rf /work/ws/", "rm -rf /work",
                                     "rm -rf /work/ws/*", "find /work/ws -delete",
                                     "rm -rf /work/./ws/.", "cd /work/ws && rm -rf *"])
def test_the_workspace_by_its_absolute_path_is_refused_where_it_is_known(command):
    assert refusal(command, workspace="/work/ws")
    assert refusal(command.replace("/work", "/elsewhere"), workspace="/work/ws") is None


WIPES = ["rm -rf .", "rm -rf ./", "rm -rf ./.", 'rm -rf "$PWD"/*', "rm -rf $PWD",
         "find . -delete", "sh -c 'rm -rf *'", "env -i rm -rf .", "time rm -rf ./*",
         "busybox rm -rf .", "cd .. && rm -rf ws", "truncate -s 0 *", "rm -rf {ws}",
         "rm -rf {ws}/*"]


def test_under_auto_the_workspace_survives_every_wipe(llm, tmp_path):
    """The reviewer's run, and more: each wipe is refused (never run), the workspace keeps
    every file; a wipe whose command is computed waits for a person, who denies it."""
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    files = {ws / "notes.txt": "keep me", ws / "data" / "a.csv": "1,2", ws / ".git": "x"}
    for path, text in files.items():
        path.write_text(text)
    calls = [ToolCall("run_shell", {"command": c.format(ws=ws)}, id=f"c{i}")
             for i, c in enumerate(WIPES)]
    llm.on("wipe", Reply(tool_calls=calls), Reply("done"))
    llm.on("computed", Reply(tool_calls=[ToolCall("run_shell",
                                                  {"command": "$(echo rm) -rf ./*"})]),
           Reply("gave up"))
    with hj.Session(model="m", base_url=llm.base_url, api_keys=[SECRET], workspace=ws,
                    retry=FAST_RETRY, approval="auto") as session:
        result = session.delegate("wipe", toolsets=["shell"]).collect(60)
        assert [e.ok for e in result.tool_trace] == [False] * len(WIPES)
        assert all("never" in e.result_preview for e in result.tool_trace)
        asked = Asked(session)
        task = session.delegate("computed", toolsets=["shell"])
        asked.wait()
        [pending] = task.check().pending_approvals
        assert "only known when it runs" in pending.reason
        session.deny(task)
        assert task.collect(30).summary == "gave up"
    assert {path: path.read_text() for path in files} == files
