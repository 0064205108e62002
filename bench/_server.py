"""`python -m bench._server`: the fake model in its own process, with rate-limited keys.

Like `python -m hermes_jupyter.testing`, plus `--rate-limited KEY` (repeatable): requests with
that key get a 429 with `Retry-After`. Prints the base URL, serves until stdin closes.
"""

from __future__ import annotations

import argparse
import os
import sys

from hermes_jupyter.testing import Fail, FakeLLM, ScriptedAgent


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._server")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--tool-rounds", type=int, default=0)
    parser.add_argument("--rate-limited", action="append", default=[], metavar="KEY")
    parser.add_argument("--retry-after", type=float, default=30.0)
    args = parser.parse_args()
    llm = FakeLLM()
    llm.responder = ScriptedAgent(args.tool_rounds, args.latency, args.chunks, args.chunk_delay)
    for key in args.rate_limited:
        llm.key_rules[key] = Fail(429, retry_after=args.retry_after)
    with llm:
        print(llm.base_url, flush=True)
        try:
            while os.read(0, 4096):  # the parent closes our stdin when it is done
                pass
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
