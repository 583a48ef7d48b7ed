"""Safe to share (issue 22), end to end in a browser: the shipped hostile results file
(``tests/data/hostile_results.jsonl``) through notebook 02 -> the HTML report, and through the
dashboard served by Voila (``make app``'s template). One notebook run and one Voila session,
several assertions each:

* the bytes written hold no raw markup from a name, and the escaped names are there;
* in Chromium no dialog fires (``alert(1)`` never runs) and the names show as text;
* no request leaves the machine (Playwright request logging): only 127.0.0.1, ``file:``,
  ``data:`` and ``blob:`` URLs;
* the dashboard's Download CSV holds the formula name as text (``'=HYPERLINK...``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from test_browser import BIN, CHROMIUM, NOTEBOOK, _declared, _free_port, _server
from test_browser import browser, page  # noqa: F401 - the Chromium fixtures
from test_safe import FORMULA, HARDWARE, HOSTILE, SCRIPT, _raw_markup

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium not found at /usr/bin/chromium"),
]

LOCAL_SCHEMES = {"file", "data", "blob", "about"}


def _off_machine(url: str) -> bool:
    u = urlparse(url)
    return u.scheme not in LOCAL_SCHEMES and u.hostname not in ("127.0.0.1", "localhost")


def _watch(page) -> dict[str, list]:
    seen: dict[str, list] = {"dialogs": [], "off_machine": []}

    def on_dialog(d):
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: seen["off_machine"].append(r.url) if _off_machine(r.url) else None)
    return seen


@pytest.mark.notebooks
def test_hostile_results_through_notebook_02_to_an_offline_html_report(tmp_path, page, test_output,
                                                                       monkeypatch):
    from effplan import report

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    params = report.ReportParams(
        defaults={"results_path": str(HOSTILE), "quick": True, "report": True},
        notebooks={"02_inference_budget.ipynb": {"months": 3, "samples": 0, "compare_hardware": ["T4"],
                                                 "requests_per_day": 2e6}}, base_dir=REPO)
    (executed,) = report.run_notebooks(["02_inference_budget.ipynb"], params=params, out_dir=tmp_path,
                                       notebooks_dir=REPO / "notebooks", cwd=REPO, timeout_s=300)
    (html_path,) = report.export_html([executed], tmp_path / "html")
    raw = Path(html_path).read_text(encoding="utf-8")
    (test_output / "02_inference_budget.html").write_text(raw, encoding="utf-8")
    assert _raw_markup(raw) == []
    assert raw.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    assert "&lt;img src=x onerror=alert(1)&gt;" in raw
    seen = _watch(page)
    page.goto(Path(html_path).resolve().as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(test_output / "report_02_hostile.png"), full_page=True)
    assert seen["dialogs"] == [] and seen["off_machine"] == []
    text = page.inner_text("body")
    assert SCRIPT in text and HARDWARE in text      # shown as text, where the reader looks


def test_hostile_results_in_the_voila_app(tmp_path, page, test_output, monkeypatch):
    import nbformat
    import pandas as pd
    from papermill.parameterize import parameterize_notebook

    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    declared = _declared(nb)
    params = {"results_path": str(HOSTILE), "requests_per_day": 2e6, "months": 3, "samples": 0,
              "slo_p95_ms": 0.0, "price_per_hour_usd": {HARDWARE: 1.0}, "hardware": [],
              "evaluate_quality": False}
    assert set(params) <= set(declared)
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nbformat.write(parameterize_notebook(nb, params), root / NOTEBOOK.name)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # as `make app` runs it: effplan's template (no Font Awesome from a CDN)
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(REPO / "effplan" / "jupyter"),
                                                                   os.environ.get("JUPYTER_PATH", "")])))
    cmd = [str(BIN / "python"), "-m", "voila", str(root / NOTEBOOK.name), "--template=effplan",
           "--no-browser", "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0"]
    seen = _watch(page)
    with _server(cmd, cwd=root, ready_url=f"{base}/voila/static/none", log=test_output / "voila.log"):
        page.goto(base + "/")
        page.locator(".effplan-headline[data-quarter-cost-usd]").first.wait_for(state="attached")
        page.get_by_text("Quarter by quarter").first.click()
        page.locator("details.effplan-quarters").first.wait_for(state="attached")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(test_output / "voila_hostile.png"), full_page=True)
        text = page.inner_text("body")
        assert SCRIPT in text and HARDWARE in text and FORMULA in text
        assert page.locator("script:text('alert(1)')").count() == 0
        assert page.locator("img[onerror]").count() == 0 and page.locator("b[onmouseover]").count() == 0
        with page.expect_download() as dl:
            page.locator("a.effplan-download-csv").first.click()
        data = Path(dl.value.path()).read_bytes()
    assert seen["dialogs"] == [], seen["dialogs"]
    assert seen["off_machine"] == [], seen["off_machine"]
    cells = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert "'" + FORMULA in set(cells["candidate"]) and FORMULA not in set(cells["candidate"])
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in data
