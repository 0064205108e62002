
"""What `%delegate` makes of its line: placeholders filled strictly, `-c` context built in
time bounded by the limit, a reused name said once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hermes_jupyter.notebook.context import context_text
from hermes_jupyter.notebook.goal import expand
from hermes_jupyter.testing import Reply, ToolCall

from .test_magics import cell, held_tool, rejected

ROOT = Path(__file__).resolve().parents[1]


# ---- placeholders ---------------------------------------------------------------------------
def test_escaped_placeholders_stay_literal_and_prices_stay_prices(live, capsys):
    cell(live, "n = 3", capsys)
    task, out, _ = cell(live, "%delegate keep {{nosuch}} and $$HOME, fill {n} and $n; "
                              "costs $5", capsys)
    assert task.goal == "keep {nosuch} and $HOME, fill 3 and 3; costs $5" and out == ""


def test_an_unknown_placeholder_fails_the_cell_and_starts_nothing(live, capsys):
    message = rejected(live, "t = %delegate total of {rows * 2} please", capsys)
    assert message == ("%delegate: {rows * 2} in the goal cannot be filled in (NameError: name "
                       "'rows' is not defined): define it first, or write {{rows * 2}} to keep "
                       "it as typed")
    assert "t" not in live.user_ns
    assert rejected(live, "%delegate ask ${HOME}", capsys).startswith(
        "%delegate: {HOME} in the goal cannot be filled in")


def test_a_steering_message_is_filled_in_the_same_way(live, llm, capsys):
    entered, release, hold = held_tool()
    live.user_ns.update(hold=hold, region="north")
    llm.default = Reply(tool_calls=[ToolCall("hold")])
    cell(live, "t = %delegate -t hold work", capsys)
    assert entered.wait(10)
    assert rejected(live, "%steer_task t1 focus on {regoin}", capsys).startswith(
        "%steer_task: {regoin} in the message cannot be filled in (NameError")
    _, out, _ = cell(live, "%steer_task t1 focus on {region}, keep {{braces}}", capsys)
    assert out.startswith("Steered t1")
    assert [r.message for r in live.user_ns["t"].check().steering] == [
        "focus on north, keep {braces}"]
    release.set()


def test_placeholders_are_filled_from_the_calling_function(live, capsys):
    cell(live, "def start():\n    local = 7\n"
               "    return get_ipython().run_line_magic('delegate', 'use {local}')\n"
               "t = start()", capsys)
    assert live.user_ns["t"].goal == "use 7"


def test_engine_placeholders_pass_through_as_typed():
    # the room left for `%delegate --each VAR`: `{item}` belongs to the engine
    text = "for {item} ({item.name}, {item!r}, {item[0]}) in {xs} and $item"
    assert expand(text, {"xs": [1]}, keep={"item"}) == (
        "for {item} ({item.name}, {item!r}, {item[0]}) in [1] and $item")


# ---- -c context -----------------------------------------------------------------------------
class Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text")

    __repr__ = __str__


def test_context_of_an_object_whose_str_raises_is_one_line(live, llm, capsys):
    live.user_ns["odd"] = Unprintable()
    task, out, _ = cell(live, "%delegate -c odd look at it", capsys)
    assert out == ("%delegate: -c odd could not be shown as text (str() raised ValueError); "
                   "the task gets one line saying so.\n")
    task.collect(10)
    assert ("### odd (Unprintable)\n<Unprintable object: str() raised ValueError: no text>"
            in llm.requests[0].messages[1]["content"])


def test_a_large_dict_is_cut_item_by_item(live, llm, capsys):
    live.user_ns["big"] = {f"k{i}": i for i in range(200_000)}
    cell(live, "%config HermesJupyter.context_limit = 1000", capsys)
    task, out, _ = cell(live, "%delegate -c big look", capsys)
    assert out.startswith("%delegate: -c big was cut to its first ")
    assert out.endswith(" of 200,000 items (HermesJupyter.context_limit).\n")
    task.collect(10)
    sent = llm.requests[0].messages[1]["content"]
    body = sent[sent.index("### big (dict)"):]
    assert body.startswith("### big (dict)\n{'k0': 0,\n 'k1': 1,") and "more}" in body
    assert len(body) < 1200


def test_a_large_dataframe_is_summarised_and_a_small_one_sent_whole(live, llm, capsys):
    rng = np.random.default_rng(0)
    live.user_ns["df"] = pd.DataFrame(rng.random((50_000, 3)), columns=["a", "b", "c"])
    live.user_ns["small"] = pd.DataFrame({"x": [1, 2], "y": ["p", "q"]})
    task, out, _ = cell(live, "%delegate -c df,small describe", capsys)
    assert out == ("%delegate: -c df is a 50,000 x 3 DataFrame: the task gets its shape, "
                   "dtypes, first rows and statistics of 1,000 evenly spaced rows of 50,000.\n")
    task.collect(10)
    sent = llm.requests[0].messages[1]["content"]
    assert "### df (DataFrame)\n50,000 rows x 3 columns\ndtypes: a: float64, b: float64" in sent
    assert "first 5 rows:\n,a,b,c\n0," in sent and "\nmean," in sent
    assert "### small (DataFrame)\n2 rows x 2 columns\n" in sent and "\n1,2,q" in sent


def test_context_forms_of_arrays_series_bytes_and_nesting():
    array = context_text("a", np.arange(10_000_000), 500).text
    assert array.startswith("### a (ndarray)\narray of shape (10000000,), dtype int64\n[")
    assert "..." in array and len(array) < 300
    series = context_text("s", pd.Series(range(100_000)), 2000)
    assert "100,000 rows x 1 columns" in series.text and series.note
    data = context_text("b", b"\x00" * 1_000_000, 100)
    assert data.note == "-c b was cut to 26 of 1000000 bytes (HermesJupyter.context_limit)."
    nested: list[object] = [1, {"k": (2,)}, {3}, "x" * 50]
    nested.append(nested)
    assert context_text("n", nested, 500).text == (
        "### n (list)\n[1, {'k': (2,)}, {3}, '" + "x" * 50 + "', [...]]")


def test_context_never_imports_pandas_or_numpy_for_plain_values():
    code = ("import sys\nfrom hermes_jupyter.notebook.context import context_text\n"
            "context_text('d', {'a': [1, 2]}, 100); context_text('s', 'x' * 10**6, 100)\n"
            "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


# ---- names ----------------------------------------------------------------------------------
def test_reusing_a_name_says_once_that_it_now_means_the_newer_task(live, capsys):
    _, out, _ = cell(live, "%delegate -n job one", capsys)
    assert out == ""
    _, out, _ = cell(live, "%delegate -n job two", capsys)
    assert out == "%delegate: the name 'job' now means t2 (it meant t1).\n"
    report, out, _ = cell(live, "%check_task job", capsys)
    assert report.id == "t2" and out == ""
    _, out, _ = cell(live, "%delegate -n other three", capsys)
    assert out == ""
