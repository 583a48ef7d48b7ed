"""The one-page summary: HTML that carries the answer, its assumptions, the ranked options, the cost
over time, the quality bars and the sources -- and its PDF, one page of text a parser reads."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handtyped import hand_measurements  # noqa: E402

from effplan.planning import InferenceWorkload, Prices, headline, plan  # noqa: E402
from effplan.views.summary_page import CHROMIUM, nice_ticks, summary_html, write_summary  # noqa: E402


@pytest.fixture(scope="module")
def budget():
    # small: 2 instances -> Q1 = 3 x 2 x 730 x $2 = $8,760; large (baseline): 10 -> $43,800
    m = hand_measurements().assign(tags=["", "", "baseline", "baseline"])
    return plan(m, inference=InferenceWorkload(requests_per_day=86_400_000.0, target_utilization=0.5,
                                               slo_p95_ms=None, start="2027-01"),
                prices=Prices(price_per_hour={"lab-cpu": 2.0}), samples=50, seed=0)


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 43_800) == [0, 20_000, 40_000, 60_000]
    assert nice_ticks(0, 43_800, n=6) == [0, 10_000, 20_000, 30_000, 40_000, 50_000]
    assert nice_ticks(0, 0.0004) == pytest.approx([0, 0.0001, 0.0002, 0.0003, 0.0004])


def test_summary_html_holds_every_part_and_no_script(budget):
    page = summary_html(budget, baseline="large")
    h = headline(budget, baseline="large")
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert re.sub(r"\s+", " ", h.sentence()).split(" (P10")[0] in page   # the answer
    assert "Assumes 86.4 million requests/day in 2027-01" in page and "2027-Q1 = Jan–Mar 2027" in page
    for part in ("Every option, ranked", "Cost over time", "Quality bars", "Where each figure came from"):
        assert part in page
    assert page.count('class="effplan-band"') == 1                     # the choice's P10-P90
    assert '<polyline' in page and "$40,000" in page and "2027-Q4" in page   # readable axes
    assert "$8,760" in page and "-$35,000 (-80%)" in page                 # ranked, vs baseline


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"headless Chromium not found at {CHROMIUM}")
def test_the_pdf_is_one_page_of_readable_text(budget, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    page, pdf = write_summary(budget, tmp_path, baseline="large")
    assert page.is_file() and pdf.is_file()
    reader = pypdf.PdfReader(str(pdf))
    assert len(reader.pages) == 1
    import unicodedata

    text = " ".join(unicodedata.normalize("NFKC", reader.pages[0].extract_text()).split())
    assert "Run small on lab-cpu: $8,760 in 2027-Q1" in text
    assert "saves $35,040 (80%" in text and "Assumes 86.4 million requests/day" in text
    assert "Every option, ranked" in text and "Where each figure came from" in text
    assert "$41,400–$51,600" in text.replace("– ", "–") and "…" not in text   # nothing cut off
