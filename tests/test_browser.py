"""The what-if dashboard in a real browser: JupyterLab and Voila, driven by headless Chromium.

Each test copies ``notebooks/04_quarterly_what_if.ipynb`` into a temporary root with a fixed
results file (so the expected budget is known), injects papermill parameters pointing at it,
starts the server on 127.0.0.1 with a free port, opens the page in Debian's Chromium through
Playwright, runs the notebook, commits a new value in the ``Requests / day`` slider's readout
(focus, type, Enter: what a user does) and checks that the total on the page
(``.effplan-total[data-total-usd]``) becomes the total :func:`effplan.plan` gives for the same
inputs. A screenshot of each step is saved in the test's output folder.

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
NEW_REQUESTS_PER_DAY = 2_000_000.0


# ------------------------------------------------------------------------------ fixed inputs
def _results_rows() -> list[dict]:
    """Two candidates, two batch sizes, hand-entered figures (provenance 'entered'); slow
    enough (20 and 53 items/s at batch 16) that more traffic needs more instances."""
    rows = []
    for cand, quality, base_ms in (("cand-large", 0.97, 400.0), ("cand-small", 0.93, 150.0)):
        for bs in (1, 16):
            lat = base_ms * (1 + bs / 16)
            rows.append({
                "candidate": cand, "hardware": "test-cpu", "hardware_id": "browser-test",
                "mode": "inference", "batch_size": bs, "device": "cpu", "dtype": "float32",
                "latency_p50_ms": lat, "latency_p95_ms": lat * 1.2, "latency_mean_ms": lat,
                "throughput_items_per_s": bs / (lat / 1000), "energy_per_item_j": 0.05 * lat / bs,
                "idle_power_w": 20.0, "energy_source": "entered", "provenance": "entered",
                "quality": quality, "status": "ok",
            })
    return rows


#: Parameters injected into the notebook (names of its parameters cell).
def _notebook_parameters(results_path: str) -> dict:
    return {
        "results_path": results_path,
        "quick": True,
        "requests_per_day": 200_000.0,
        "monthly_growth": 0.05,
        "peak_to_average": 2.0,
        "target_utilization": 0.6,
        "months": 12,
        "slo_p95_ms": 0.0,
        "price_per_hour_usd": {"test-cpu": 0.40},
        "hardware": [],
        "samples": 0,
    }


def _expected_total(results: Path, params: dict, requests_per_day: float) -> float:
    """Budget over the horizon for all candidates on the measured hardware, from effplan.plan.

    The dashboard's total is the sum of ``plan.quarterly.cost_usd`` over the selected rows
    (default selection: every candidate, on the hardware that was measured).
    """
    import effplan
    from effplan import store

    frame = store.load(results)
    hw = str(frame["hardware"].iloc[0])
    wl = effplan.InferenceWorkload(
        requests_per_day=requests_per_day, monthly_growth=params["monthly_growth"],
        peak_to_average=params["peak_to_average"],
        slo_p95_ms=params["slo_p95_ms"] or None,
        target_utilization=params["target_utilization"], months=params["months"])
    prices = effplan.Prices(price_per_hour=params["price_per_hour_usd"])
    p = effplan.plan(frame, inference=wl, prices=prices, samples=params["samples"])
    q = p.quarterly
    total = float(q.loc[q["hardware"] == hw, "cost_usd"].sum())
    assert total > 0
    return total


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

    from effplan import store

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
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, test_output: Path):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
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


def _read_total(page) -> float:
    return float(page.locator(".effplan-total[data-total-usd]").first.get_attribute("data-total-usd"))


def _wait_total_change(page, old: float) -> float:
    page.wait_for_function(
        """old => { const e = document.querySelector('.effplan-total[data-total-usd]');
                    return e && Math.abs(parseFloat(e.dataset.totalUsd) - old) > 0.005; }""",
        arg=old, timeout=120_000)
    return _read_total(page)


def _commit_requests_per_day(page, value: float) -> None:
    """Type a value into the slider's readout and press Enter (one committed change)."""
    readout = page.locator(".effplan-requests_per_day .widget-readout").first
    readout.scroll_into_view_if_needed()
    readout.fill(f"{value:.0f}")  # focuses the editable readout, replaces its text
    readout.press("Enter")  # the slider commits on Enter (continuous_update=False)


def _check_change(page, ws: Workspace, out: Path, prefix: str) -> None:
    total_html = page.locator(".effplan-total[data-total-usd]").first
    total_html.wait_for(state="attached")
    before = _read_total(page)
    expected_before = _expected_total(ws.results, ws.params, ws.params["requests_per_day"])
    page.screenshot(path=str(out / f"{prefix}_before.png"), full_page=True)
    assert before == pytest.approx(expected_before, rel=1e-6, abs=0.01)

    _commit_requests_per_day(page, NEW_REQUESTS_PER_DAY)
    after = _wait_total_change(page, before)
    page.screenshot(path=str(out / f"{prefix}_after.png"), full_page=True)
    expected_after = _expected_total(ws.results, ws.params, NEW_REQUESTS_PER_DAY)
    assert expected_after > expected_before
    assert after == pytest.approx(expected_after, rel=1e-6, abs=0.01)
    # The page still shows no error message.
    assert page.locator(".effplan-error-message").count() == 0


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
        page.locator(".effplan-total[data-total-usd]").first.wait_for(state="attached")
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for()
        _check_change(page, workspace, test_output, "jupyterlab")


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
        page.locator(".effplan-total[data-total-usd]").first.wait_for(state="attached")
        _check_change(page, workspace, test_output, "voila")
