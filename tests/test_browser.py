"""The what-if dashboard in a real browser: JupyterLab and Voila, driven by headless Chromium.

Each test copies ``notebooks/04_quarterly_what_if.ipynb`` into a temporary root with a fixed
results file (two typed-in candidates; ``cand-large`` tagged ``baseline``), injects papermill
parameters pointing at it, starts the server on 127.0.0.1 with a free port, opens the page in
Debian's Chromium through Playwright and runs the notebook. Then, as a user would:

1. reads the headline (``.effplan-headline[data-quarter-cost-usd]``) and checks it against
   :func:`effplan.plan` for the same inputs: the cheapest option's first-quarter cost, and the
   savings against the baseline's first-quarter cost (computed here from ``plan.quarterly``);
2. drags the traffic slider's handle and checks the headline again for the value it landed on;
3. types an exact number in the box next to the slider (Enter) and checks again;
4. clicks "Download CSV" / "Download JSON" and receives the files (Playwright's download
   event), checking their content against the headline.

Screenshots of each step are saved in the test's output folder (``test-output/<test>/``); the
JupyterLab run uses a 1440 px wide window with the file browser open.

Skipped (with the reason) only when ``/usr/bin/chromium`` is missing; CI installs it
(``.ci/run``: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = REPO / "notebooks" / "04_quarterly_what_if.ipynb"
BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="headless Chromium not found at /usr/bin/chromium; install it with "
                              "`apt-get install -y chromium` (CI's .ci/run does)"),
]

SERVER_START_S = 180      # a cold JupyterLab/Voila start on a slow 2-core CI machine
PAGE_TIMEOUT_MS = 240_000  # kernel start + notebook run, generous on purpose
START_REQUESTS_PER_DAY = 2_000_000.0
TYPED_REQUESTS_PER_DAY = 5_000_000.0
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


# ------------------------------------------------------------------------------ fixed inputs
def _results_rows() -> list[dict]:
    """Two candidates, two batch sizes, hand-entered figures (provenance 'entered'); slow
    enough (20 and 53 items/s at batch 16) that more traffic needs more instances. At 2M
    requests/day (46 items/s at peak): small needs 2 instances, large (the baseline) 4."""
    rows = []
    for cand, quality, base_ms, tags in (("cand-large", 0.97, 400.0, "baseline"),
                                         ("cand-small", 0.93, 150.0, "distilled")):
        for bs in (1, 16):
            lat = base_ms * (1 + bs / 16)
            rows.append({
                "candidate": cand, "hardware": "test-cpu", "hardware_id": "browser-test",
                "mode": "inference", "batch_size": bs, "device": "cpu", "dtype": "float32",
                "latency_p50_ms": lat, "latency_p95_ms": lat * 1.2, "latency_mean_ms": lat,
                "throughput_items_per_s": bs / (lat / 1000), "energy_per_item_j": 0.05 * lat / bs,
                "idle_power_w": 20.0, "energy_source": "entered", "provenance": "entered",
                "quality": quality, "tags": tags, "status": "ok",
            })
    return rows


#: Parameters injected into the notebook (names of its parameters cell).
def _notebook_parameters(results_path: str) -> dict:
    return {
        "results_path": results_path,
        "quick": True,
        "requests_per_day": START_REQUESTS_PER_DAY,
        "monthly_growth": 0.05,
        "peak_to_average": 2.0,
        "target_utilization": 0.6,
        "months": 12,
        "slo_p95_ms": 0.0,
        "price_per_hour_usd": {"test-cpu": 0.40},
        "hardware": [],
        "samples": 0,
        "evaluate_quality": False,  # the digits evaluation names other candidates than these
    }


def _expected(results: Path, params: dict, requests_per_day: float) -> dict:
    """The answer for these inputs, from :func:`effplan.plan` directly (not the dashboard's
    code): the cheapest option's first-quarter cost and the saving against the baseline's."""
    import effplan
    from effplan.records import store

    frame = store.load(results)
    wl = effplan.InferenceWorkload(
        requests_per_day=requests_per_day, monthly_growth=params["monthly_growth"],
        peak_to_average=params["peak_to_average"],
        slo_p95_ms=params["slo_p95_ms"] or None,
        target_utilization=params["target_utilization"], months=params["months"])
    prices = effplan.notebook.prices_for(frame, params["price_per_hour_usd"])
    p = effplan.plan(frame, inference=wl, prices=prices, samples=params["samples"])
    q = p.quarterly
    q1 = q[q["quarter"] == q["quarter"].min()].set_index("candidate")["cost_usd"]
    chosen = q1.idxmin()
    out = {"candidate": chosen, "cost": float(q1.min()),
           "savings": float(q1["cand-large"] - q1.min()), "q1": q1.to_dict()}
    assert out["cost"] > 0
    return out


# ------------------------------------------------------------------------------ servers
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root / ".jupyter-runtime"),
        "IPYTHONDIR": str(root / ".ipython"),
        "MPLBACKEND": "Agg",
        "PATH": os.pathsep.join([str(BIN), env.get("PATH", "")]),
    })
    return env


@contextlib.contextmanager
def _server(cmd: list[str], *, cwd: Path, ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in its own process group; wait until ``ready_url`` answers; always stop."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(cwd), stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n"
                                       f"{log.read_text(errors='replace')[-4000:]}")
                try:
                    with urllib.request.urlopen(ready_url, timeout=5):
                        break
                except urllib.error.HTTPError as exc:
                    if exc.code < 500:  # the server answers (e.g. 404): it is up
                        break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{ready_url} not ready after {SERVER_START_S}s:\n"
                                       f"{log.read_text(errors='replace')[-4000:]}")
                time.sleep(0.5)
            yield proc
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (server + kernels), SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # kernels started by the server, if any remain
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


# ------------------------------------------------------------------------------ fixtures
@dataclasses.dataclass
class Workspace:
    root: Path
    notebook: Path
    results: Path
    params: dict


def _lab_settings(settings_dir: Path) -> None:
    """No virtual scrolling of cells (off-screen widgets stay in the DOM), no news pop-up."""
    for rel, value in (("@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                        {"windowingMode": "none"}),
                       ("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                        {"fetchNews": "false", "checkForUpdates": False})):
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A server root with the dashboard notebook (parameters injected) and a results file."""
    import nbformat
    from papermill.parameterize import parameterize_notebook

    from effplan.records import store

    if not NOTEBOOK.is_file():
        pytest.fail(f"{NOTEBOOK} is missing")
    root = tmp_path / "root"
    root.mkdir()
    results = root / "results" / "fixed.jsonl"
    results.parent.mkdir()
    import pandas as pd

    store.save_frame(pd.DataFrame(_results_rows()), results)
    params = _notebook_parameters(str(results))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    declared = _declared(nb)
    unknown = sorted(set(params) - set(declared))
    assert not unknown, f"04 notebook does not declare parameters {unknown}"
    for cell in nb.cells:  # papermill expects every cell to have a tags list
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb = parameterize_notebook(nb, params)
    dest = root / NOTEBOOK.name
    nbformat.write(nb, dest)
    return Workspace(root=root, notebook=dest, results=results, params=params)


def _declared(nb) -> dict:
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    out = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = ast.literal_eval(node.value) if node.value else None
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = ast.literal_eval(node.value)
    return out


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, test_output: Path):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(PAGE_TIMEOUT_MS)
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        yield pg
    finally:
        with contextlib.suppress(Exception):  # best effort: the last state, for diagnosis
            pg.screenshot(path=str(test_output / "final.png"), full_page=True)
        (test_output / "console.log").write_text("\n".join(console), encoding="utf-8")
        context.close()


# ------------------------------------------------------------------------------ interaction
_KERNEL_READY_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const sc = w && w.sessionContext;
  const k = sc && sc.session && sc.session.kernel;
  return !!(sc && sc.isReady && k && k.connectionStatus === 'connected' && k.status === 'idle'
            && w.content && w.content.widgets && w.content.widgets.length > 0);
}"""


_HEADLINE = ".effplan-headline[data-quarter-cost-usd]"


def _headline(page) -> dict:
    h = page.locator(_HEADLINE).first
    sav = page.locator(".effplan-savings").first.get_attribute("data-savings-usd")
    return {"candidate": h.get_attribute("data-candidate"),
            "cost": float(h.get_attribute("data-quarter-cost-usd")),
            "requests_per_day": float(h.get_attribute("data-requests-per-day")),
            "savings": float(sav) if sav else float("nan")}


def _wait_headline_for(page, requests_per_day: float) -> dict:
    """Wait until the headline was computed for this traffic (the kernel answered)."""
    page.wait_for_function(
        """v => { const e = document.querySelector('.effplan-headline[data-requests-per-day]');
                  return e && Math.abs(parseFloat(e.dataset.requestsPerDay) - v) <= 1e-5 * v; }""",
        arg=requests_per_day, timeout=120_000)
    return _headline(page)


def _check_headline(page, ws: Workspace, requests_per_day: float) -> dict:
    got = _wait_headline_for(page, requests_per_day)
    exp = _expected(ws.results, ws.params, requests_per_day)
    assert got["candidate"] == exp["candidate"]
    assert got["cost"] == pytest.approx(exp["cost"], rel=1e-6, abs=0.01)
    assert got["savings"] == pytest.approx(exp["savings"], rel=1e-6, abs=0.01)
    return exp


def _drag_traffic_slider(page, dx: float) -> float:
    """Drag the traffic slider's handle ``dx`` pixels; return the value the box then shows."""
    handle = page.locator(".effplan-requests_per_day .noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    typed = page.locator(".effplan-requests_per_day-text input").first
    before = float(typed.input_value())
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y, steps=4)
    page.mouse.move(x + dx, y, steps=4)
    page.mouse.up()
    page.wait_for_function(
        """([sel, old]) => { const e = document.querySelector(sel);
                             return e && Math.abs(parseFloat(e.value) - old) > 1; }""",
        arg=[".effplan-requests_per_day-text input", before], timeout=120_000)
    return float(typed.input_value())


def _type_traffic(page, value: float) -> None:
    """Type an exact number in the box next to the slider and press Enter."""
    typed = page.locator(".effplan-requests_per_day-text input").first
    typed.scroll_into_view_if_needed()
    typed.fill(f"{value:.0f}")
    typed.press("Enter")


def _receive_downloads(page, out: Path, prefix: str, expected: dict) -> None:
    """Click the two download links; Playwright receives the files; check their content."""
    import io

    import pandas as pd

    got = {}
    for kind in ("csv", "json"):
        link = page.locator(f".effplan-download-{kind}").first
        link.scroll_into_view_if_needed()
        with page.expect_download(timeout=60_000) as info:
            link.click()
        dl = info.value
        assert dl.suggested_filename.startswith("effplan_scenario_")
        assert dl.suggested_filename.endswith(f".{kind}")
        target = out / f"{prefix}_download.{kind}"
        dl.save_as(str(target))
        got[kind] = target.read_text(encoding="utf-8")
    df = pd.read_csv(io.StringIO(got["csv"]))
    assert df["candidate"].iloc[0] == expected["candidate"]
    assert df["quarter_cost_usd"].iloc[0] == pytest.approx(expected["cost"], rel=1e-6)
    assert set(df["candidate"]) == {"cand-large", "cand-small"}
    meta = json.loads(got["json"])
    assert meta["headline"]["candidate"] == expected["candidate"]
    assert meta["headline"]["savings_usd"] == pytest.approx(expected["savings"], rel=1e-6)
    assert meta["plan_inputs"]["inference"]["requests_per_day"] == pytest.approx(
        TYPED_REQUESTS_PER_DAY)


def _dismiss_popups(page) -> None:
    """JupyterLab's "get notified about news?" toast covers the page corner: answer No (best
    effort: the toast animates in; a miss only leaves it on a screenshot)."""
    no = page.locator(".jp-toast-button:has-text('No')")
    if no.count():
        with contextlib.suppress(Exception):
            no.first.click(force=True, timeout=3000)
            page.wait_for_timeout(300)


def _shot(page, path: Path, *, full_page: bool = True) -> None:
    _dismiss_popups(page)
    page.screenshot(path=str(path), full_page=full_page)


def _check_dashboard(page, ws: Workspace, out: Path, prefix: str) -> None:
    _dismiss_popups(page)
    page.locator(_HEADLINE).first.wait_for(state="attached")
    page.locator(_HEADLINE).first.scroll_into_view_if_needed()
    _check_headline(page, ws, START_REQUESTS_PER_DAY)
    _shot(page, out / f"{prefix}_1_start.png", full_page=True)

    dragged = _drag_traffic_slider(page, 60)
    assert dragged > START_REQUESTS_PER_DAY
    _check_headline(page, ws, dragged)
    _shot(page, out / f"{prefix}_2_slider_moved.png", full_page=True)

    _type_traffic(page, TYPED_REQUESTS_PER_DAY)
    exp = _check_headline(page, ws, TYPED_REQUESTS_PER_DAY)
    # 5M requests/day: small needs 4 instances, large (the baseline) 10-11: a real saving
    assert exp["candidate"] == "cand-small" and exp["savings"] > 0.5 * exp["q1"]["cand-large"]
    page.locator(_HEADLINE).first.scroll_into_view_if_needed()
    _shot(page, out / f"{prefix}_3_typed.png", full_page=True)
    _receive_downloads(page, out, prefix, exp)
    page.locator(".effplan-charts .lm-TabBar-tab:has-text('Quality vs cost'), "
                 ".effplan-charts .p-TabBar-tab:has-text('Quality vs cost')").first.click()
    page.locator(".effplan-quality-svg").first.wait_for(state="visible", timeout=60_000)
    page.locator(".effplan-quality-svg").first.scroll_into_view_if_needed()
    _shot(page, out / f"{prefix}_4_quality_tab.png", full_page=False)
    assert page.locator(".effplan-error-message").count() == 0
    # report="auto": a live kernel renders no static copy (no second, stale headline) ...
    assert page.locator(".effplan-headline").count() == 1
    # ... and shows no stale static copy under the dashboard, no developer timing line
    assert page.locator("text=updated in").count() == 0


# ------------------------------------------------------------------------------ tests
def test_dashboard_in_jupyterlab(workspace: Workspace, page, test_output: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "python"), "-m", "jupyterlab", "--no-browser",
           f"--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.open_browser=False",
           f"--ServerApp.root_dir={workspace.root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
           "jupyterlab.handlers.announcements.NeverCheckForUpdate",
           f"--LabServerApp.workspaces_dir={workspace.root / '.workspaces'}",
           f"--LabServerApp.user_settings_dir={workspace.root / '.settings'}",
           *_root_flag()]
    with _server(cmd, cwd=workspace.root, ready_url=f"{base}/api/status",
                 log=test_output / "jupyterlab.log"):
        page.goto(f"{base}/lab/tree/{workspace.notebook.name}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
        # Wait until the notebook's kernel is connected and idle (not just the indicator).
        page.wait_for_function(_KERNEL_READY_JS, polling=500)
        page.wait_for_timeout(1000)
        # Fire and forget: the command's promise settles only when every cell has run.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.locator(_HEADLINE).first.wait_for(state="attached")
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for()
        _check_dashboard(page, workspace, test_output, "jupyterlab")


def test_dashboard_in_voila(workspace: Workspace, page, test_output: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "python"), "-m", "voila", str(workspace.notebook), "--no-browser",
           "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0",
           "--VoilaConfiguration.show_tracebacks=True"]
    # "/" renders the notebook (runs it in a kernel), so probe a route that does not.
    with _server(cmd, cwd=workspace.root, ready_url=f"{base}/voila/static/none",
                 log=test_output / "voila.log"):
        page.goto(base + "/")
        page.locator(_HEADLINE).first.wait_for(state="attached")
        _check_dashboard(page, workspace, test_output, "voila")
        # the layout reflows: on a 640 px screen the controls stack above the charts
        page.set_viewport_size({"width": 640, "height": 1000})
        page.wait_for_timeout(500)
        controls = page.locator(".effplan-controls").first.bounding_box()
        results = page.locator(".effplan-results").first.bounding_box()
        assert results["y"] >= controls["y"] + controls["height"] - 1
        assert results["x"] + results["width"] <= 640 + 1
        page.screenshot(path=str(test_output / "voila_5_narrow.png"), full_page=True)


# ------------------------------------------------------------------------------ a busy machine
BUSY_PAGE_TIMEOUT_MS = 540_000   # a quick sweep of 12 points beside two CPU hogs, then the plan


def _expected_from_results(results: Path, params: dict) -> "object":
    """The headline notebook 04 shows for the results the app measured itself, from the
    library directly: its default parameters, the demo traffic, the same plan."""
    import effplan
    from effplan.records import store

    frame = store.load(results)
    wl, prices = effplan.notebook.workload_and_prices(
        frame, requests_per_day=params["requests_per_day"], monthly_growth=params["monthly_growth"],
        peak_to_average=params["peak_to_average"], slo_p95_ms=params["slo_p95_ms"],
        target_utilization=params["target_utilization"], months=params["months"],
        price_per_hour=params["price_per_hour_usd"])
    p = effplan.plan(frame, inference=wl, prices=prices, hardware=params["hardware"],
                     samples=params["samples"])
    base = effplan.planning.baseline_candidate(frame)
    return effplan.planning.headline(p, baseline=base), frame


def test_voila_app_from_an_empty_results_folder_on_a_busy_machine(tmp_path: Path, page,
                                                                  test_output: Path, monkeypatch):
    """`make app` from an EMPTY results folder with two CPU-bound processes beside it: the app
    measures its own quick sweep on a busy machine and must show a flagged dashboard -- the `$`
    answer and the busy-machine statement of the plan for what it measured -- never an error
    line; its Download CSV arrives and carries the flags."""
    import io

    import nbformat
    import pandas as pd

    from busy import cpu_hogs
    from effplan.planning.stability import busy_sentence as effplan_busy_sentence

    root = tmp_path / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOK, root / "notebooks" / NOTEBOOK.name)   # as `make app` serves it
    results_dir = tmp_path / "empty-results"
    params = _declared(nbformat.read(NOTEBOOK, as_version=4))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "python"), "-m", "voila", f"notebooks/{NOTEBOOK.name}", "--no-browser",
           "--Voila.ip=127.0.0.1", f"--Voila.port={port}", "--Voila.port_retries=0"]
    monkeypatch.setenv("EFFPLAN_RESULTS_DIR", str(results_dir))  # the app's results folder: empty
    with cpu_hogs(2), _server(cmd, cwd=root, ready_url=f"{base}/voila/static/none",
                              log=test_output / "voila.log"):
        page.set_default_timeout(BUSY_PAGE_TIMEOUT_MS)
        page.goto(base + "/")
        page.locator(_HEADLINE).first.wait_for(state="attached")
        page.locator(".effplan-headline").first.scroll_into_view_if_needed()
        page.screenshot(path=str(test_output / "voila_busy_1440.png"), full_page=True)
        html = page.content()
        assert "There was an error" not in html and page.locator(".effplan-error-message").count() == 0
        got = _headline(page)
        results = results_dir / "measurements.jsonl"
        assert results.is_file(), "the app did not save what it measured"
        exp, frame = _expected_from_results(results, params)
        assert exp.found and got["candidate"] == exp.candidate
        assert got["cost"] == pytest.approx(exp.quarter_cost_usd, rel=1e-6, abs=0.01) and got["cost"] > 0
        assert got["requests_per_day"] > 0   # the demo traffic was found (no "no demo traffic" error)
        shaky = int((frame["stable"] == False).sum())  # noqa: E712
        notes = page.locator(".effplan-headline .effplan-busy-note")
        if exp.stability_note:   # the flagged dashboard: the plan's own statement, word for word
            assert notes.count() == 1
            assert notes.first.inner_text().strip() == (
                f"⚠ {exp.stability_note} Re-measure on a quiet machine for firm figures.")
        else:
            assert notes.count() == 0
        (test_output / "busy_rows.txt").write_text(
            f"{shaky} of {len(frame)} rows not stable; headline note: {exp.stability_note!r}\n")
        link = page.locator(".effplan-download-csv").first
        link.scroll_into_view_if_needed()
        with page.expect_download(timeout=120_000) as info:
            link.click()
        target = test_output / "busy_download.csv"
        info.value.save_as(str(target))
        df = pd.read_csv(io.StringIO(target.read_text(encoding="utf-8")), keep_default_na=False)
        assert df["candidate"].iloc[0] == exp.candidate
        assert float(df["quarter_cost_usd"].iloc[0]) == pytest.approx(exp.quarter_cost_usd, rel=1e-6)
        assert {"stability_note", "timing_spread_rel", "background_load"} <= set(df.columns)
        own = "" if not exp.timing_unstable else effplan_busy_sentence(exp.background_load,
                                                                       exp.timing_spread_rel)
        assert df["stability_note"].iloc[0] == own   # the choice's own statement, as on the page
