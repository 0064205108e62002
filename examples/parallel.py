"""Run several subagents in parallel from a plain script: watch, steer, cancel, collect.

    python examples/parallel.py            # the offline demo model, no key needed
    OPENAI_API_KEY=sk-... python examples/parallel.py            # gpt-4o-mini on OpenAI
    OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_API_KEY=x HERMES_MODEL=llama3.2 \
        python examples/parallel.py        # another endpoint: name its model
"""

from __future__ import annotations

import os
import time

import hermes_jupyter as hj
from hermes_jupyter.demo import demo_session

DEFAULT_MODEL = "gpt-4o-mini"


def main() -> None:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        # keys and URL from the environment; the model from HERMES_MODEL, else gpt-4o-mini
        model = os.environ.get("HERMES_MODEL") or DEFAULT_MODEL
        session = hj.Session(model=model, max_concurrent=4)
    else:
        session = demo_session()
    with session:
        tasks = [
            session.delegate("Explain the CAP theorem in three sentences.", name="cap"),
            session.delegate("List three uses of SQLite's WAL mode.", name="wal"),
            session.delegate("Write a haiku about background threads.", name="haiku"),
        ]
        print("delegated:", tasks)                      # returned at once

        print(session.check("cap"))                      # state, calls, tokens, output tail
        session.steer("wal", "Keep it to one line each.")  # seen before its next model call

        started = time.perf_counter()
        session.cancel("haiku")
        cancelled = session.collect("haiku")
        print(f"cancelled in {time.perf_counter() - started:.3f}s:", cancelled.headline())

        for name in ("cap", "wal"):
            result = session.collect(name, timeout=120)
            print(result.headline())
            print(result.summary, end="\n\n")


if __name__ == "__main__":
    main()
