"""Values outside a slider's range, typed in the real page (issue 18, item 5): Voila in headless
Chromium, with the same notebook, results file and helpers as :mod:`test_browser`.

As a user would: type a traffic far beyond the slider's four decades (planned exactly: the
headline equals :func:`effplan.plan` for it), then a horizon the planner refuses (700 months:
the page says which field and the allowed range, and the headline stays), then a valid
horizon outside the slider (60 months: planned, the message goes). Screenshots of each step are
saved in the test's output folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_browser import (BIN, _HEADLINE, START_REQUESTS_PER_DAY, Workspace, _check_headline,  # noqa: F401
                          _free_port, _headline, _server, _shot, browser, page, pytestmark,
                          workspace)

TRAFFIC = 1e15  # the slider starts at 10^4..10^8 requests/day around 2M


def _type(page, box: str, text: str) -> None:
    """Type ``text`` in the box ``.effplan-<box>-text`` and press Enter."""
    field = page.locator(f".effplan-{box}-text input").first
    field.scroll_into_view_if_needed()
    field.fill(text)
    field.press("Enter")


def test_voila_widens_or_refuses_values_outside_a_slider(workspace: Workspace, page,
                                                         test_output: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "python"), "-m", "voila", str(workspace.notebook), "--no-browser",
           "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
           "--VoilaConfiguration.show_tracebacks=True"]
    with _server(cmd, cwd=workspace.root, ready_url=f"{base}/voila/static/none",
                 log=test_output / "voila.log"):
        page.goto(base + "/")
        page.locator(_HEADLINE).first.wait_for(state="attached")
        _check_headline(page, workspace, START_REQUESTS_PER_DAY)
        slider_max = float(page.locator(".effplan-requests_per_day .noUi-handle").first
                           .get_attribute("aria-valuemax"))
        assert 10 ** slider_max < TRAFFIC  # the value lies outside the slider's range

        # 1. valid, outside the slider: planned exactly (the headline is effplan.plan's)
        _type(page, "requests_per_day", f"{TRAFFIC:.0f}")
        _check_headline(page, workspace, TRAFFIC)
        assert page.locator(".effplan-error-message").count() == 0
        _shot(page, test_output / "voila_inputs_1_traffic_1e15.png", full_page=True)

        # 2. refused by the planner: named field and range on the page, nothing replanned
        before = _headline(page)
        _type(page, "months", "700")
        message = page.locator(".effplan-error-message").first
        message.wait_for(state="visible", timeout=120_000)
        text = message.inner_text()
        assert "Input not applied" in text
        assert "months: must be >= 1 and <= 600, got 700" in text
        assert "Showing the last valid plan" in text
        assert _headline(page) == before
        # the box typed in is outlined, the slider left where the plan is
        assert page.locator(".effplan-months-text.effplan-refused").count() == 1
        assert "12-month horizon" in page.locator(_HEADLINE).first.inner_text()
        page.locator(_HEADLINE).first.scroll_into_view_if_needed()
        _shot(page, test_output / "voila_inputs_2_months_refused.png", full_page=False)
        page.locator(".effplan-months-text").first.scroll_into_view_if_needed()
        _shot(page, test_output / "voila_inputs_2b_months_refused_at_the_box.png",
              full_page=False)

        # 3. valid, outside the slider (3..36 months): planned, the message goes
        _type(page, "months", "60")
        page.wait_for_function(
            """sel => { const h = document.querySelector(sel);
                        return h && h.innerText.includes('60-month horizon')
                               && !document.querySelector('.effplan-error-message'); }""",
            arg=_HEADLINE, timeout=120_000)
        assert page.locator(".effplan-refused").count() == 0
        assert _headline(page)["cost"] == pytest.approx(before["cost"], rel=1e-9)  # same Q1
        _shot(page, test_output / "voila_inputs_3_months_60.png", full_page=True)
        page.locator(".effplan-controls").first.screenshot(
            path=str(test_output / "voila_inputs_4_controls.png"))
