"""The output tail: bounded lines, the unfinished line shown, long lines keep their end."""

from __future__ import annotations

from hermes_jupyter.engine.output import OutputTail


def test_lines_and_the_unfinished_line():
    tail = OutputTail(max_lines=3, max_chars=50)
    tail.write("one\ntw")
    tail.write("o\nthree\nfo")
    assert tail.lines() == ["one", "two", "three", "fo"]
    tail.write("ur\nfive")
    assert tail.lines() == ["two", "three", "four", "five"]  # three whole lines are kept
    assert tail.lines(2) == ["four", "five"]
    assert tail.lines(0) == []


def test_tool_lines_end_the_streamed_line():
    tail = OutputTail()
    tail.write("thinking about it")
    tail.line("→ read_file(a.csv)")
    tail.write("more")
    assert tail.lines() == ["thinking about it", "→ read_file(a.csv)", "more"]


def test_a_long_line_keeps_moving_and_stays_bounded():
    tail = OutputTail(max_chars=20)
    for i in range(1000):
        tail.write(f"{i:04d} ")
    current = tail.lines()[-1]
    assert len(current) == 20 and current.startswith("…")
    assert current.endswith("0999 ")
    assert tail._partial_len <= 40  # memory stays bounded however long the line
    tail.write("\nnext")
    assert tail.lines()[-2].endswith("0999 ") and tail.lines()[-1] == "next"
