"""Live cost in the text and HTML views: `%list_tasks` / `session.tasks` table (a cost column,
the known total and how many tasks have no price), `%check_task`'s headline, and the words
every face shares (`engine/views.py` `cost_text`). Over FakeLLM on real sockets, in a real
IPython shell; the provider-reported cost (`Reply(cost=...)`) and a settings price both count.
"""

from __future__ import annotations

import dataclasses

import pytest

import hermes_jupyter as hj
from hermes_jupyter.engine.views import TaskReport, TaskTable, cost_text, money, status_headline
from hermes_jupyter.testing import Reply

from .conftest import FAST_RETRY, SECRET
from .test_magics import cell


def test_the_words_for_a_cost():
    assert money(0.0123456) == "$0.0123"
    assert cost_text(None, 0) == ""
    assert cost_text(0.5, 0) == "$0.5000"
    assert cost_text(0.5, 2) == "$0.5000 (2 tasks without a price)"
    assert cost_text(None, 1) == "cost unknown (1 task without a price)"


def test_the_table_has_a_cost_column_and_a_total_that_counts_the_unpriced(llm, tmp_path):
    llm.default = Reply("answer", usage=(1000, 500))
    with hj.Session(model="priced", base_url=llm.base_url, api_keys=[SECRET],
                    workspace=tmp_path, retry=FAST_RETRY, prices={"priced": (1.0, 2.0)}) as s:
        s.delegate("one").collect(10)
        s.delegate("two", model="no-such-model-xyz").collect(10)
        table = TaskTable(s.list_tasks())
        lines = table.text().splitlines()
        assert lines[0].split()[:8] == ["id", "name", "state", "model", "elapsed", "calls",
                                        "tokens", "cost"]
        assert "$0.0020" in lines[1].split() and "no price" in lines[2]
        assert lines[-1].endswith("· $0.0020 (1 task without a price)")
        report = TaskReport(s.check("t1")).text().splitlines()[0]
        assert report.endswith("1500 tokens · $0.0020")
        assert status_headline(s.check("t2")).endswith("· no price")


def test_a_task_without_calls_shows_no_cost(session, llm):
    llm.default = Reply("done")
    status = session.delegate("x").collect(10) and session.check("t1")
    fresh = dataclasses.replace(status, api_calls=0, prompt_tokens=0, completion_tokens=0,
                                cost_usd=None)
    assert status_headline(status).endswith("tokens · no price")
    assert status_headline(fresh).endswith("· 0 tokens")
    assert TaskTable([fresh]).footer().endswith("· 0 tokens")


@pytest.fixture
def cost_cells(live, llm):
    llm.on("paid", Reply("paid answer", cost=0.0125))
    llm.on("free", Reply("unknown cost"))
    return live


def test_list_tasks_and_check_task_show_the_cost(cost_cells, capsys):
    ip = cost_cells
    cell(ip, "a = %delegate -n paid paid work\n_ = a.collect(10)", capsys)
    cell(ip, "b = %delegate -n free free work\n_ = b.collect(10)", capsys)
    table, _, _ = cell(ip, "%list_tasks", capsys)
    text = repr(table)
    rows = text.splitlines()
    assert "$0.0125" in rows[1] and "no price" in rows[2]
    assert rows[-1].endswith("· $0.0125 (1 task without a price)")
    html = table._repr_html_()
    assert "<th style='padding:2px 8px;text-align:left;vertical-align:top'>cost</th>" in html
    assert "$0.0125" in html and "1 task without a price" in html
    report, _, _ = cell(ip, "%check_task paid", capsys)
    assert repr(report).splitlines()[0].endswith("· $0.0125")
    assert "$0.0125" in report._repr_html_()
