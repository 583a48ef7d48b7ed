"""Notebooks 02, 03 and 04 on a busy machine's results give a flagged answer, never no answer.

Two shipped results files (``tests/data/``, made by ``tests/data/make_busy_results.py`` from a
real quick measurement of the digits family, only the ``stable`` flags edited):
``busy_all.jsonl`` (every row ``stable=False``) and ``busy_baseline.jsonl`` (only the baseline
``digits-mlp``'s rows). Each notebook is executed once per file with papermill (the executions
are shared by the assertions below); the every-row-unstable file is executed with two CPU-bound
processes running beside the notebooks (the busy machine itself). Each notebook must run to
the end and show a ``$`` answer and the busy-machine statement, whose N (background load) and X
(how far the cost could be off) are checked against the file's own rows, computed here by hand:
N = ``background_load`` to one decimal, X = ``latency_round_spread_rel`` (the spread between
the timing rounds) rounded up to a whole percent.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import nbformat
import pytest

from busy import cpu_hogs
from effplan import report
from effplan.records import store

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
BASELINE = "digits-mlp"
NOTEBOOKS = ["02_inference_budget.ipynb", "03_training_budget.ipynb", "04_quarterly_what_if.ipynb"]
#: fewer Monte-Carlo samples and no quality evaluation: the answer's path is the same, faster
PARAMS = {"02_inference_budget.ipynb": {"samples": 50},
          "04_quarterly_what_if.ipynb": {"samples": 50, "evaluate_quality": False}}
CASES = {"all": "busy_all.jsonl", "baseline": "busy_baseline.jsonl"}

pytestmark = [pytest.mark.notebooks, pytest.mark.slow, pytest.mark.timeout(900)]

OWN = re.compile(r"Timings were taken on a busy machine \(background load ([0-9.]+) cores\); the "
                 r"cost could be (?:up to )?(\d+)% off\.")
OF_BASELINE = re.compile(r"Timings of the baseline (\S+) were taken on a busy machine \(background "
                         r"load ([0-9.]+) cores\); its cost, and so the savings, could be (\d+)% off\.")


@pytest.fixture(scope="module", params=list(CASES))
def executed(request, tmp_path_factory):
    """(case, {notebook: executed notebook node}) -- each notebook run once per case."""
    case = request.param
    results = DATA / CASES[case]
    tmp = tmp_path_factory.mktemp(f"busy-{case}")
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    mp.setenv("MPLBACKEND", "Agg")
    params = report.ReportParams(
        defaults={"results_path": str(results), "quick": True, "report": True},
        notebooks={n: PARAMS.get(n, {}) for n in NOTEBOOKS}, base_dir=REPO)
    try:
        if case == "all":   # the busy machine itself: two CPU-bound processes beside the kernels
            with cpu_hogs(2):
                runs = report.run_report(NOTEBOOKS, params=params, out_dir=tmp,
                                         notebooks_dir=REPO / "notebooks", cwd=REPO, timeout_s=600)
        else:
            runs = report.run_report(NOTEBOOKS, params=params, out_dir=tmp,
                                     notebooks_dir=REPO / "notebooks", cwd=REPO, timeout_s=600)
    finally:
        mp.undo()
    return case, {r.name: (r, nbformat.read(r.notebook, as_version=4) if r.notebook else None)
                  for r in runs}


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            for mime in ("text/html", "text/plain"):
                v = data.get(mime)
                if v:
                    out.append("".join(v) if isinstance(v, list) else str(v))
            if o.get("output_type") == "stream":
                out.append("".join(o.get("text", "")))
    return "\n".join(out)


def _by_hand(results: Path, candidate: str, mode: str) -> tuple[set[str], set[str]]:
    """The N and X the statement may show for a candidate: one per not-stable row of it."""
    df = store.load(results)
    rows = df[(df["candidate"] == candidate) & (df["mode"] == mode) & (df["stable"] == False)]  # noqa: E712
    n = {f"{float(v):.1f}" for v in rows["background_load"]}
    x = {str(max(1, math.ceil(100 * float(r) - 1e-9))) for r in rows["latency_round_spread_rel"]}
    return n, x


def _check(match, n_x: tuple[set[str], set[str]], *, offset: int = 0) -> None:
    n, x = match.group(1 + offset), match.group(2 + offset)
    assert n in n_x[0] and x in n_x[1], (n, x, n_x)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_to_the_end_with_a_flagged_dollar_answer(executed, name, test_output):
    case, nbs = executed
    run, nb = nbs[name]
    assert run.ok, run.error            # never "There was an error when executing cell [3]"
    nbformat.write(nb, test_output / f"{case}_{name}")
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    text = _text(nb)
    results = DATA / CASES[case]
    mode = "training" if name.startswith("03") else "inference"
    if mode == "inference":
        head = re.search(r'<div class="effplan-headline" data-found="true" data-candidate="([^"]+)" '
                         r'data-hardware="[^"]+" data-quarter-cost-usd="([0-9.]+)"', text)
        assert head, "no answer"
        chosen, cost = head.group(1), float(head.group(2))
        assert cost > 0 and re.search(r"<b>\$[0-9,.]+[kM]?</b></span> in (?:\d{4}-)?Q[1-4]", text)
    else:
        head = re.search(r"Train <b>([^<]+)</b> on <b>[^<]+</b>: <b>\$[0-9,.]+[kM]?</b> over 4 quarter", text)
        assert head, "no training answer"
        chosen = head.group(1)
    # the answer's own note: the first busy-machine note of the page (the headline's, or the
    # training answer's); plan() warnings are shown before it as short notes of another class
    answer_note = re.search(r'class="effplan-busy-note"[^>]*><b>&#x26A0;</b> ([^<]*)', text)
    assert answer_note, "no busy-machine note"
    note = answer_note.group(1)
    own = OWN.match(note)
    if case == "all":
        # every option was timed on a busy machine: the answer's own statement, its N and X
        assert own and "effplan-busy-note" in text
        _check(own, _by_hand(results, chosen, mode))
        if mode == "inference" and chosen != BASELINE:
            base = OF_BASELINE.search(note)
            assert base and base.group(1) == BASELINE
            _check(base, _by_hand(results, BASELINE, mode), offset=1)
    else:
        # only the baseline was: the choice is firm, its saving against the baseline is not
        assert chosen != BASELINE
        if mode == "inference":   # the headline's note is the baseline's, not the choice's
            base = OF_BASELINE.match(note)
            assert base and base.group(1) == BASELINE
            _check(base, _by_hand(results, BASELINE, mode), offset=1)
        else:
            other = re.search(r"other option\(s\) \(" + BASELINE + r"\): " + OWN.pattern, text)
            assert other
            _check(other, _by_hand(results, BASELINE, mode))
