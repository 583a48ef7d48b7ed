"""Headless reports: execute the notebooks with papermill and export HTML for readers offline.

``python -m effplan.report --params reports.yaml --out reports`` (what ``make report`` runs):

1. :func:`run_report` executes EVERY notebook of ``notebooks/`` in order (``01_`` first: it
   writes the results file the others read) with the papermill parameters of ``reports.yaml``,
   into ``reports/<name>.ipynb``, and goes on after a failure: a notebook that raises (or whose
   widget metadata :func:`check_widget_metadata` finds invalid -- a ``metadata.widgets`` block
   without ``state`` breaks GitHub's and nbviewer's rendering) is recorded with its error, the
   others still run. :func:`run_notebooks` is the strict form (stops at the first failure).
2. :func:`export_html` writes ``reports/<name>.html`` with input cells hidden
   (``HTMLExporter(exclude_input=True)``). By default (``widgets="static"``) the HTML needs no
   internet at all: no ``<script src="https://...">`` is emitted (no require.js, MathJax,
   Mermaid or widget manager from a CDN), live widget views are replaced by a one-line note,
   and every table and chart is there because the notebooks' report mode displays them as
   HTML tables and embedded PNG images (:func:`effplan.notebook.show`). ``widgets="embed"`` keeps the saved
   widget state and loads the widget manager from ``widget_renderer_url`` (a vendored copy
   next to the HTML, or the CDN when empty) for readers who are online.
3. :func:`write_index` writes ``reports/index.html``: every notebook with its HTML page, its
   status (``ok`` / ``failed``) and, for a failure, the cell and the error (a failed notebook's
   partly executed HTML is written too, so the error is readable in place), then the one-page
   summary and the compute cards. ``make report`` exits with status 1 when any notebook failed.
   The HTML pages are made for readers (:mod:`effplan.views.report_clean`): no stderr block (warnings
   as one short note), no local path, no empty "Parameters" heading.
5. :func:`report_summary` writes the one-page summary of notebook 02's plan,
   ``reports/summary.html`` and ``reports/summary.pdf`` (:mod:`effplan.views.summary_page`).
4. :func:`report_cards` writes a compute card per candidate (``<name>.card.md`` and
   ``.card.json``, :mod:`effplan.cards`) beside the HTML, from the results file and the quality
   evaluation and plan notebook 01 stored beside it.

``reports.yaml``::

    defaults:            # given to every notebook that declares the parameter
      quick: true
      report: true
    notebooks:           # per notebook (file name), overriding the defaults; runs in this order
      01_measure_candidates.ipynb:
        batch_sizes: [1, 8, 32]

Relative paths in parameters are relative to the folder holding ``reports.yaml`` (the notebooks
run with that folder as working directory). Parameters a notebook does not declare in its
``parameters`` cell are not passed to it.

The helpers the notebooks call (``show``, ``notebook_measurements``...) live in
:mod:`effplan.notebook`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EffplanError, ValidationError
from .views.report_clean import reader_copy
from .safe import html_text

__all__ = [
    "ReportParams",
    "NotebookRun",
    "load_params",
    "run_notebooks",
    "run_report",
    "write_index",
    "report_summary",
    "export_html",
    "check_widget_metadata",
    "main",
    "WIDGET_STATE_MIME",
    "WIDGET_VIEW_MIME",
]

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"

#: The default ipywidgets repr (``HBox(children=(...))``): a widget view with this text/plain
#: fallback has nothing useful to show without a widget manager.
_DEFAULT_WIDGET_REPR = re.compile(r"^[A-Z][A-Za-z0-9_]*\(")

_WIDGET_NOTE = (
    '<div class="effplan-widget-note" style="color:#555;font-style:italic;border-left:3px solid '
    '#ccc;padding:2px 8px">Interactive widget: it needs a running kernel (open this notebook in '
    "JupyterLab, Voila or Binder). Its current state is shown as static tables and figures in "
    "this report.</div>")

# Blocks of nbconvert's lab template that load JavaScript from a CDN. A report must read
# offline, and nothing in effplan's notebooks needs require.js, MathJax or Mermaid.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_EMBED_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


# ------------------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class ReportParams:
    """Parsed ``reports.yaml``: parameters shared by all notebooks and per notebook.

    ``base_dir`` is the folder of the YAML file: relative paths in the parameters are relative
    to it, and the notebooks execute there.
    """

    defaults: Mapping[str, Any] = field(default_factory=dict)
    notebooks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    base_dir: Path = Path(".")

    def for_notebook(self, name: str) -> dict[str, Any]:
        """Defaults updated with the notebook's own parameters (later wins)."""
        out = dict(self.defaults)
        out.update(self.notebooks.get(Path(name).name, {}) or {})
        return out


def load_params(path: str | os.PathLike | None) -> ReportParams:
    """Read ``reports.yaml``; ``None`` gives empty parameters (notebook defaults)."""
    if path is None:
        return ReportParams(base_dir=Path.cwd())
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValidationError("params", f"parameters file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValidationError("params", f"not valid YAML: {exc}", where=str(p)) from None
    if not isinstance(data, Mapping):
        raise ValidationError("params", "top level must be a mapping with 'defaults' and "
                                        "'notebooks'", where=str(p))
    unknown = sorted(set(data) - {"defaults", "notebooks"})
    if unknown:
        raise ValidationError(unknown[0], "unknown key; expected 'defaults' and 'notebooks'",
                              where=str(p))
    defaults = data.get("defaults") or {}
    notebooks = data.get("notebooks") or {}
    if not isinstance(defaults, Mapping):
        raise ValidationError("defaults", "must be a mapping of parameter -> value", where=str(p))
    if not isinstance(notebooks, Mapping):
        raise ValidationError("notebooks", "must be a mapping of notebook file -> parameters",
                              where=str(p))
    for name, values in notebooks.items():
        if values is not None and not isinstance(values, Mapping):
            raise ValidationError(f"notebooks.{name}", "must be a mapping of parameter -> value",
                                  where=str(p))
    return ReportParams(defaults=dict(defaults),
                        notebooks={str(k): dict(v or {}) for k, v in notebooks.items()},
                        base_dir=p.resolve().parent)


# ------------------------------------------------------------------------------ running
def _notebook_list(notebooks: Sequence[str | os.PathLike] | None, notebooks_dir: Path,
                   params: ReportParams) -> list[Path]:
    if notebooks is None:
        found = sorted(notebooks_dir.glob("*.ipynb"))
        order = {name: i for i, name in enumerate(params.notebooks)}
        # Listed notebooks first in YAML order, then the rest by name.
        found.sort(key=lambda f: (order.get(f.name, len(order)), f.name))
        if not found:
            raise ValidationError("notebooks", f"no *.ipynb in {str(notebooks_dir)!r}")
        return found
    out = []
    for nb in notebooks:
        p = Path(nb)
        if not p.is_absolute() and not p.exists():
            p = notebooks_dir / p
        if not p.is_file():
            raise ValidationError("notebooks", f"notebook {str(nb)!r} not found")
        out.append(p)
    return out


def declared_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell as papermill reads it: name -> {inferred_type_name,
    default, help}."""
    import papermill

    return dict(papermill.inspect_notebook(str(path)))


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of a report run: ``name``, the executed ``notebook`` (None when papermill
    wrote nothing), its ``html`` page (None until exported), ``status`` ``"ok"`` / ``"failed"``
    and, for a failure, ``error`` ("cell 3: ValidationError: ...")."""

    name: str
    notebook: Path | None
    status: str
    error: str = ""
    html: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _report_params(params: ReportParams | Mapping[str, Any] | str | os.PathLike | None) -> ReportParams:
    if isinstance(params, ReportParams):
        return params
    if isinstance(params, (str, os.PathLike)):
        return load_params(params)
    if isinstance(params, Mapping):
        return ReportParams(defaults=dict(params), base_dir=Path.cwd())
    if params is None:
        return ReportParams(base_dir=Path.cwd())
    raise ValidationError("params", f"expected a path, mapping or ReportParams, got "
                                    f"{type(params).__name__}")


def run_report(notebooks: Sequence[str | os.PathLike] | None = None, *,
               params: ReportParams | Mapping[str, Any] | str | os.PathLike | None = None,
               out_dir: str | os.PathLike = "reports",
               notebooks_dir: str | os.PathLike = "notebooks",
               cwd: str | os.PathLike | None = None,
               kernel_name: str | None = None,
               timeout_s: float = 900.0,
               log_output: bool = False,
               progress: bool = False) -> list[NotebookRun]:
    """Execute EVERY notebook headless with papermill, going on after a failure; one
    :class:`NotebookRun` per notebook, in running order (arguments as :func:`run_notebooks`).
    A notebook fails when a cell raises (papermill still writes it, partly executed, with the
    error) or when its widget metadata is invalid (:func:`check_widget_metadata`)."""
    import papermill

    rp = _report_params(params)
    nb_dir = Path(notebooks_dir)
    if not nb_dir.is_absolute() and not nb_dir.exists():
        nb_dir = rp.base_dir / nb_dir
    run_dir = Path(cwd) if cwd is not None else rp.base_dir
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    runs: list[NotebookRun] = []
    for src in _notebook_list(notebooks, nb_dir, rp):
        wanted = rp.for_notebook(src.name)
        declared = declared_parameters(src)
        given = {k: v for k, v in wanted.items() if k in declared}
        dest = out / src.name
        dest.unlink(missing_ok=True)   # never report a stale copy of an earlier run
        try:
            nb = papermill.execute_notebook(
                str(src), str(dest), parameters=given, cwd=str(run_dir),
                kernel_name=kernel_name, execution_timeout=timeout_s,
                log_output=log_output, progress_bar=progress, report_mode=False)
        except papermill.PapermillExecutionError as exc:
            runs.append(NotebookRun(src.name, dest if dest.is_file() else None, "failed",
                                    f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"))
            continue
        except Exception as exc:  # a kernel that died, a timeout: recorded, the next one runs
            runs.append(NotebookRun(src.name, dest if dest.is_file() else None, "failed",
                                    f"{type(exc).__name__}: {exc}"))
            continue
        problems = check_widget_metadata(nb)   # the executed notebook papermill just wrote
        if problems:
            runs.append(NotebookRun(src.name, dest, "failed",
                                    "invalid widget metadata: " + "; ".join(problems)))
            continue
        runs.append(NotebookRun(src.name, dest, "ok"))
    return runs


def run_notebooks(notebooks: Sequence[str | os.PathLike] | None = None, *,
                  params: ReportParams | Mapping[str, Any] | str | os.PathLike | None = None,
                  out_dir: str | os.PathLike = "reports",
                  notebooks_dir: str | os.PathLike = "notebooks",
                  cwd: str | os.PathLike | None = None,
                  kernel_name: str | None = None,
                  timeout_s: float = 900.0,
                  log_output: bool = False,
                  progress: bool = False) -> list[Path]:
    """Execute notebooks headless with papermill; returns the executed notebooks' paths.

    Parameters
    ----------
    notebooks: files to run (names are looked up in ``notebooks_dir``); default: every
        ``*.ipynb`` there, those named in the YAML first (in its order), then by name.
    params: a :class:`ReportParams`, a path to ``reports.yaml``, a plain mapping used as
        defaults for every notebook, or None (notebook defaults).
    out_dir: where ``<name>.ipynb`` is written (created).
    cwd: working directory of the kernels; default: the YAML file's folder (else the current
        directory), so relative paths in the parameters mean the same as in the YAML.
    kernel_name: kernel to use (default: the notebook's own kernelspec).
    timeout_s: per-cell timeout, s.

    Strict: raises :class:`EffplanError` naming the notebook at the first failure (papermill
    still writes the partly executed notebook, with the error, to ``out_dir``) or invalid
    widget metadata (:func:`check_widget_metadata`); the notebooks after it do not run.
    :func:`run_report` runs them all and reports each.
    """
    rp = _report_params(params)
    nb_dir = Path(notebooks_dir)
    if not nb_dir.is_absolute() and not nb_dir.exists():
        nb_dir = rp.base_dir / nb_dir
    executed: list[Path] = []
    for src in _notebook_list(notebooks, nb_dir, rp):
        (run,) = run_report([src], params=rp, out_dir=out_dir, notebooks_dir=nb_dir, cwd=cwd,
                            kernel_name=kernel_name, timeout_s=timeout_s, log_output=log_output,
                            progress=progress)
        if not run.ok:
            if run.error.startswith("invalid widget metadata"):
                raise EffplanError(f"{run.notebook}: {run.error}")
            where = f"the partly executed notebook is {run.notebook}" if run.notebook else \
                "nothing was written"
            raise EffplanError(f"{src.name} failed in {run.error}; {where}")
        executed.append(run.notebook)
    return executed


def write_index(runs: Sequence[NotebookRun], out_dir: str | os.PathLike,
                files: Sequence[tuple[str, str | os.PathLike]] = ()) -> Path:
    """``index.html`` in ``out_dir``: a table of every notebook of the run -- its HTML page (a
    relative link), its status and, for a failure, its error -- with a summary line, then the
    other files of the report (``files``: (what, path) pairs, e.g. the one-page summary as HTML
    and PDF and each compute card). Plain HTML, no script: it reads offline."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    failed = [r for r in runs if not r.ok]
    rows = []
    for r in runs:
        page = (f'<a href="{html_text(r.html.name)}">{html_text(r.html.name)}</a>'
                if r.html is not None else "<i>no page</i>")
        color = "#1a7f37" if r.ok else "#a40000"
        rows.append(f'<tr class="{r.status}" data-notebook="{html_text(r.name)}" '
                    f'data-status="{r.status}"><td>{html_text(r.name)}</td><td>{page}</td>'
                    f'<td style="color:{color};font-weight:600">{r.status}</td>'
                    f'<td class="error">{html_text(r.error)}</td></tr>')
    head = (f"{len(runs)} notebook(s): {len(runs) - len(failed)} ok, {len(failed)} failed"
            if runs else "no notebooks were run")
    text = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>effplan report</title><style>body{font-family:sans-serif;margin:2em}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
        "text-align:left;vertical-align:top}td.error{max-width:60em;white-space:pre-wrap;"
        "font-family:monospace;font-size:0.9em}</style></head><body>"
        f'<h1>effplan report</h1><p class="summary" data-failed="{len(failed)}">{html_text(head)}'
        + (". A failed notebook's page shows how far it got and its error." if failed else "")
        + "</p><table><tr><th>notebook</th><th>page</th><th>status</th><th>error</th></tr>"
        + "".join(rows) + "</table>" + _files_table(files, out) + "</body></html>\n")
    dest = out / "index.html"
    dest.write_text(text, encoding="utf-8")
    return dest


def _files_table(files: Sequence[tuple[str, str | os.PathLike]], out: Path) -> str:
    """The report's other files as a table of relative links (what, file)."""

    if not files:
        return ""
    rows = []
    for what, path in files:
        p = Path(path)
        try:
            rel = p.resolve().relative_to(out.resolve()).as_posix()
        except ValueError:
            rel = p.name
        rows.append(f'<tr class="file"><td>{html_text(what)}</td><td><a href="{html_text(rel)}">'
                    f"{html_text(rel)}</a></td></tr>")
    return ("<h2>The answer on one page, and the compute cards</h2><table><tr><th>what</th>"
            "<th>file</th></tr>" + "".join(rows) + "</table>")


def report_summary(params: ReportParams, out_dir: Path, *, pdf: bool = True) -> list[Path]:
    """The one-page summary (:mod:`effplan.views.summary_page`) of notebook 02's plan -- its parameters
    from ``reports.yaml``, its results file -- as ``summary.html`` and ``summary.pdf`` in
    ``out_dir``. Nothing when the results file is missing; the HTML alone when no Chromium can
    print the PDF (a note says so)."""
    from . import defaults
    from .records import store
    from .ui import notebook
    from .planning import plan as make_plan
    from .planning.frames import baseline_candidate
    from .views.summary_page import write_pdf, write_summary

    p = params.for_notebook("02_inference_budget.ipynb")
    results = p.get("results_path")
    if not results:
        return []
    path = Path(results) if Path(results).is_absolute() else params.base_dir / results
    if not path.exists():
        return []
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the notebooks' pages say them
        frame = store.load(path)
        keys = ("monthly_growth", "peak_to_average", "slo_p95_ms", "target_utilization", "months",
                "start", "pue", "grid_region")
        rpd = float(p.get("requests_per_day") or 0)
        wl, pr = notebook.workload_and_prices(frame, requests_per_day=rpd,
                                              **{k: p[k] for k in keys if k in p})
        budget = make_plan(frame, inference=wl, prices=pr, hardware=p.get("compare_hardware"),
                           samples=int(p.get("samples", defaults.SAMPLES)))
        page, _ = write_summary(budget, out_dir, pdf=False, baseline=baseline_candidate(frame),
                                traffic_note="" if rpd else "demo traffic")
    if not pdf:
        return [page]
    try:
        return [page, write_pdf(page, out_dir / "summary.pdf")]
    except EffplanError as exc:
        print(f"note: summary.pdf not written: {exc}", file=sys.stderr)
        return [page]


# ------------------------------------------------------------------------------ checking
def check_widget_metadata(nb: Any) -> list[str]:
    """Problems with a notebook's saved widget state (empty list = fine).

    GitHub and nbviewer refuse to render a notebook whose ``metadata.widgets`` has no
    ``state``; a widget output whose model is missing from the saved state renders as an error
    in HTML exports. Checked: ``metadata.widgets`` is a mapping holding
    ``application/vnd.jupyter.widget-state+json`` with a ``state`` mapping (model id ->
    {``model_name``, ``model_module``, ``model_module_version``, ``state``}) and integer
    ``version_major``/``version_minor``; every widget view output names a ``model_id`` present
    in that state. A notebook with no widget outputs and no ``metadata.widgets`` is fine.
    ``nb`` is an ``nbformat`` node, a plain dict or a path.
    """
    if isinstance(nb, (str, os.PathLike)):
        import nbformat

        nb = nbformat.read(str(nb), as_version=4)
    problems: list[str] = []
    metadata = nb.get("metadata", {}) or {}
    state: Mapping[str, Any] | None = None
    if "widgets" in metadata:
        widgets = metadata["widgets"]
        if not isinstance(widgets, Mapping):
            problems.append("metadata.widgets is not a mapping")
        elif WIDGET_STATE_MIME not in widgets:
            problems.append(f"metadata.widgets has no '{WIDGET_STATE_MIME}' entry")
        else:
            block = widgets[WIDGET_STATE_MIME]
            if not isinstance(block, Mapping):
                problems.append(f"metadata.widgets['{WIDGET_STATE_MIME}'] is not a mapping")
            elif "state" not in block:
                problems.append("the 'state' key is missing from metadata.widgets (GitHub cannot "
                                "render this notebook)")
            elif not isinstance(block["state"], Mapping):
                problems.append("metadata.widgets state is not a mapping")
            else:
                state = block["state"]
                for key in ("version_major", "version_minor"):
                    if not isinstance(block.get(key), int):
                        problems.append(f"metadata.widgets {key} missing or not an integer")
                for model_id, model in state.items():
                    if not isinstance(model, Mapping):
                        problems.append(f"widget {model_id}: state entry is not a mapping")
                        continue
                    missing = [k for k in ("model_name", "model_module", "model_module_version",
                                           "state") if k not in model]
                    if missing:
                        problems.append(f"widget {model_id}: missing {', '.join(missing)}")
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) or []:
            view = (out.get("data") or {}).get(WIDGET_VIEW_MIME)
            if view is None:
                continue
            model_id = view.get("model_id") if isinstance(view, Mapping) else None
            if not model_id:
                problems.append(f"cell {i}: widget view output without a model_id")
            elif state is None:
                if "widgets" not in metadata:
                    problems.append(f"cell {i}: widget output but no metadata.widgets state "
                                    "saved (execute with widget state stored)")
            elif model_id not in state:
                problems.append(f"cell {i}: widget model {model_id} not in the saved state")
    return problems


# ------------------------------------------------------------------------------ HTML
def _static_copy(nb: Any) -> Any:
    """The notebook without live widgets: views become their text fallback or a note."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data or WIDGET_VIEW_MIME not in data:
                continue
            data.pop(WIDGET_VIEW_MIME)
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            if not any(k for k in data if k != "text/plain") and (
                    not text.strip() or _DEFAULT_WIDGET_REPR.match(text.strip())):
                # e.g. "HBox(children=(...))": nothing a reader can use; say what it was.
                data.clear()
                data["text/html"] = _WIDGET_NOTE
    return nb


def export_html(notebooks: str | os.PathLike | Iterable[str | os.PathLike],
                out_dir: str | os.PathLike | None = None, *, widgets: str = "static",
                widget_renderer_url: str = "") -> list[Path]:
    """Export executed notebooks to HTML with input cells hidden; returns the HTML paths.

    ``widgets="static"`` (default): self-contained HTML, no remote script at all; live widget
    views are replaced by a note (the notebooks show the same content as static tables and
    PNG figures). ``widgets="embed"``: keep the saved widget state and load the widget manager
    from ``widget_renderer_url`` (empty: the CDN nbconvert uses). Figures are embedded as
    ``data:image/png;base64`` in both modes.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    if widgets not in ("static", "embed"):
        raise ValidationError("widgets", f"{widgets!r} is not 'static' or 'embed'")
    paths = [notebooks] if isinstance(notebooks, (str, os.PathLike)) else list(notebooks)
    template = _OFFLINE_TEMPLATE if widgets == "static" else _EMBED_TEMPLATE
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        embed_images=True, template_name="lab",
        extra_loaders=[jinja2.DictLoader({"effplan_report.html.j2": template})],
        template_file="effplan_report.html.j2")
    if widget_renderer_url:
        exporter.widget_renderer_url = widget_renderer_url
    written: list[Path] = []
    for p in paths:
        src = Path(p)
        nb = reader_copy(nbformat.read(src, as_version=4))   # no stderr, no local paths
        if widgets == "static":
            nb = _static_copy(nb)
        body, _resources = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": src.stem, "path": str(src.parent)}})
        dest_dir = Path(out_dir) if out_dir is not None else src.parent
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{src.stem}.html"
        dest.write_text(body, encoding="utf-8")
        written.append(dest)
    return written


def remote_scripts(page: str) -> list[str]:
    """``src`` of every ``<script>`` loaded from the network (http:, https: or //host)."""
    return re.findall(r"""<script\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""",
                      page, flags=re.I)


def report_cards(params: ReportParams, out_dir: Path) -> list[Path]:
    """A compute card per candidate (:mod:`effplan.cards`) in ``out_dir``, beside the HTML, from the
    results file of the ``results_path`` parameter and what notebook 01 stored beside it."""
    from .views.cards import cards_from_results

    results = params.for_notebook("01_measure_candidates.ipynb").get("results_path")
    if not results:
        return []
    path = Path(results) if Path(results).is_absolute() else params.base_dir / results
    return cards_from_results(path, out_dir)


# ------------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m effplan.report``: run every notebook, check widget metadata, export HTML,
    write ``index.html``; exit status 1 when any notebook failed (the others are written)."""
    ap = argparse.ArgumentParser(prog="python -m effplan.report", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=None, help="YAML parameters file (reports.yaml)")
    ap.add_argument("--out", default="reports", help="output folder (default: reports)")
    ap.add_argument("--notebooks-dir", default="notebooks", help="folder of the notebooks")
    ap.add_argument("--notebook", action="append", default=None,
                    help="run only this notebook (repeatable)")
    ap.add_argument("--widgets", choices=("static", "embed"), default="static",
                    help="HTML widgets: static (offline, default) or embed (saved state + "
                         "widget manager from --widget-renderer-url or the CDN)")
    ap.add_argument("--widget-renderer-url", default="")
    ap.add_argument("--timeout", type=float, default=900.0, help="per-cell timeout, s")
    ap.add_argument("--kernel", default=None, help="kernel name (default: the notebook's)")
    ap.add_argument("--no-html", action="store_true", help="skip the HTML export")
    args = ap.parse_args(argv)
    try:
        params = load_params(args.params)
        out = Path(args.out).resolve()
        runs = run_report(args.notebook, params=params, out_dir=out,
                          notebooks_dir=Path(args.notebooks_dir).resolve(),
                          kernel_name=args.kernel, timeout_s=args.timeout,
                          log_output=False, progress=False)
        done = []
        for run in runs:
            html_page = None
            if not args.no_html and run.notebook is not None:
                try:
                    (html_page,) = export_html(run.notebook, out, widgets=args.widgets,
                                               widget_renderer_url=args.widget_renderer_url)
                except Exception as exc:  # an export that fails is a failure of that notebook
                    run = NotebookRun(run.name, run.notebook, "failed",
                                      "; ".join(x for x in (run.error, f"HTML export failed: "
                                                            f"{type(exc).__name__}: {exc}") if x))
            done.append(dataclasses.replace(run, html=html_page))
            print(f"{'executed' if run.ok else 'FAILED  '} {run.notebook or run.name}"
                  + (f": {run.error}" if run.error else ""), file=sys.stdout if run.ok else sys.stderr)
            if html_page is not None:
                print(f"wrote    {html_page}")
        files: list[tuple[str, Path]] = []
        for page in report_summary(params, out):
            files.append((f"one-page summary ({page.suffix[1:].upper()})", page))
        for card in report_cards(params, out):
            files.append((f"compute card: {card.name.split('.card.')[0]} "
                          f"({card.suffix[1:].upper()})", card))
        for _what, path in files:
            print(f"wrote    {path}")
        print(f"wrote    {write_index(done, out, files)}")
    except EffplanError as exc:
        print(f"effplan.report: {exc}", file=sys.stderr)
        return 1
    failed = [r.name for r in done if not r.ok]
    if failed:
        print(f"effplan.report: {len(failed)} of {len(done)} notebook(s) FAILED ({', '.join(failed)}); "
              f"see {out / 'index.html'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
