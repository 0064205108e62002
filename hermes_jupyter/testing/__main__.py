"""`python -m hermes_jupyter.testing`: a `FakeLLM` in its own process, for benchmarks.

Running the fake model out of process keeps its threads off the interpreter being measured.
The first stdout line is the base URL; the server runs until SIGTERM, SIGINT or, when stdin
is a pipe, until the parent closes it (so it dies with the process that started it).
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence

from .agents import ScriptedAgent
from .server import FakeLLM


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    llm = FakeLLM(host=args.host, port=args.port)
    llm.responder = ScriptedAgent(args.tool_rounds, args.latency, args.chunks, args.chunk_delay)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if _stdin_is_pipe():
        threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
    with llm:
        print(llm.base_url, flush=True)
        while not stop.wait(0.2):  # a timeout keeps the main thread responsive to signals
            pass
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hermes_jupyter.testing",
        description="Serve a scripted OpenAI-compatible chat model on the loopback interface.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds until the first chunk of every reply",
    )
    parser.add_argument(
        "--chunks", type=int, default=8, metavar="N", help="text chunks in the final answer"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, metavar="S", help="seconds between chunks"
    )
    parser.add_argument(
        "--tool-rounds",
        type=int,
        default=0,
        metavar="R",
        help="tool calls the agent makes before its final answer",
    )
    return parser


def _stdin_is_pipe() -> bool:
    # /dev/null or a terminal would read as "closed" at once or never; only a pipe means a parent.
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _wait_for_eof(stop: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
    # lock, and interpreter shutdown aborts (SIGABRT) when it cannot take that lock.
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main())
