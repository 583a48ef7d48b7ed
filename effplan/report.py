"""Headless reports: execute the notebooks with papermill and export HTML for readers offline.

``python -m effplan.report --params reports.yaml --out reports`` (what ``make report`` runs):

1. :func:`run_notebooks` executes every notebook of ``notebooks/`` in order (``01_`` first: it
   writes the results file the others read) with the papermill parameters of ``reports.yaml``,
   into ``reports/<name>.ipynb``. Each executed notebook is checked with
   :func:`check_widget_metadata` (a ``metadata.widgets`` block without ``state`` breaks
   GitHub's and nbviewer's rendering).
2. :func:`export_html` writes ``reports/<name>.html`` with input cells hidden
   (``HTMLExporter(exclude_input=True)``). By default (``widgets="static"``) the HTML needs no
   internet at all: no ``<script src="https://...">`` is emitted (no require.js, MathJax,
   Mermaid or widget manager from a CDN), live widget views are replaced by a one-line note,
   and every table and chart is there because the notebooks' report mode displays them as
   HTML tables and embedded PNG images (:func:`show`). ``widgets="embed"`` keeps the saved
   widget state and loads the widget manager from ``widget_renderer_url`` (a vendored copy
   next to the HTML, or the CDN when empty) for readers who are online.

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

Notebook helpers (keep notebook cells thin): :func:`notebook_measurements` (load a results file
or, when there is none, measure a quick digits sweep) and :func:`show` (display a Figure, a
frame or a dict of them as static PNG / HTML).
"""

from __future__ import annotations

import argparse
import copy
import html as _html
import io
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EffplanError, EffplanWarning, ValidationError

__all__ = [
    "ReportParams",
    "load_params",
    "run_notebooks",
    "export_html",
    "check_widget_metadata",
    "notebook_measurements",
    "measure_settings",
    "QUICK_SETTINGS",
    "prices_for",
    "measured_vs_estimated",
    "candidates_table",
    "trainable",
    "training_figure",
    "show",
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

    Raises :class:`EffplanError` naming the notebook when execution fails (papermill still
    writes the partly executed notebook, with the error, to ``out_dir``) or when the executed
    notebook's widget metadata is invalid (:func:`check_widget_metadata`).
    """
    import nbformat
    import papermill

    if isinstance(params, ReportParams):
        rp = params
    elif isinstance(params, (str, os.PathLike)):
        rp = load_params(params)
    elif isinstance(params, Mapping):
        rp = ReportParams(defaults=dict(params), base_dir=Path.cwd())
    elif params is None:
        rp = ReportParams(base_dir=Path.cwd())
    else:
        raise ValidationError("params", f"expected a path, mapping or ReportParams, got "
                                        f"{type(params).__name__}")
    nb_dir = Path(notebooks_dir)
    if not nb_dir.is_absolute() and not nb_dir.exists():
        nb_dir = rp.base_dir / nb_dir
    run_dir = Path(cwd) if cwd is not None else rp.base_dir
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    executed: list[Path] = []
    for src in _notebook_list(notebooks, nb_dir, rp):
        wanted = rp.for_notebook(src.name)
        declared = declared_parameters(src)
        given = {k: v for k, v in wanted.items() if k in declared}
        dest = out / src.name
        try:
            papermill.execute_notebook(
                str(src), str(dest), parameters=given, cwd=str(run_dir),
                kernel_name=kernel_name, execution_timeout=timeout_s,
                log_output=log_output, progress_bar=progress, report_mode=False)
        except papermill.PapermillExecutionError as exc:
            raise EffplanError(f"{src.name} failed in cell {exc.exec_count} "
                               f"({exc.ename}: {exc.evalue}); the partly executed notebook is "
                               f"{dest}") from exc
        nb = nbformat.read(dest, as_version=4)
        problems = check_widget_metadata(nb)
        if problems:
            raise EffplanError(f"{dest}: invalid widget metadata: " + "; ".join(problems))
        executed.append(dest)
    return executed


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
        nb = nbformat.read(src, as_version=4)
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


def remote_scripts(html_text: str) -> list[str]:
    """``src`` of every ``<script>`` loaded from the network (http:, https: or //host)."""
    return re.findall(r"""<script\b[^>]*\bsrc\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""",
                      html_text, flags=re.I)


# ------------------------------------------------------------------------------ notebook helpers
def notebook_measurements(results_path: str | os.PathLike | Iterable[str | os.PathLike] | None,
                          *, batch_sizes: Sequence[int] = (1, 8, 32), quick: bool = True,
                          mode: str = "inference", save: bool = True,
                          progress: bool = False) -> Any:
    """Measurements for a notebook: load ``results_path`` when it exists, else measure.

    * ``results_path`` (a file, folder of ``*.jsonl``, glob, or a list of them) that exists:
      :meth:`Measurements.load` merges them (results of 01, or of several machines). Rows of
      other modes are kept; the planner picks what it needs.
    * Otherwise: the built-in digits family (:func:`effplan.examples.digits_candidates`) is
      measured in ``mode`` at ``batch_sizes`` on this machine; ``quick`` uses a short timing
      budget (a few seconds for the whole sweep). When ``save`` and ``results_path`` is a single
      path, the points are written there so the next notebook reuses them.

    ``measurements.attrs``-like provenance is in the frame itself (``provenance``,
    ``energy_source`` columns): nothing here turns an estimate into a measurement.
    """
    from . import examples
    from .measurement import Measurements, measure

    single: Path | None = None
    if results_path is not None:
        items = ([results_path] if isinstance(results_path, (str, os.PathLike))
                 else list(results_path))
        existing = [p for p in items if _has_results(p)]
        if existing:
            loaded = Measurements.load(existing)
            if any(r.get("mode") == mode for r in loaded.rows):
                return loaded
            warnings.warn(f"{', '.join(map(str, existing))} has no {mode!r} rows; measuring a "
                          f"quick digits sweep in {mode} mode instead", EffplanWarning,
                          stacklevel=2)
        if len(items) == 1 and not os.fspath(items[0]).endswith(os.sep):
            single = Path(items[0])
    kwargs = measure_settings(quick)
    candidates = examples.digits_candidates()
    if mode == "training":
        candidates = trainable(candidates)
    return measure(candidates, batch_sizes=list(batch_sizes), mode=mode, device="cpu",
                   progress=progress,
                   results_path=single if (save and single is not None) else None, **kwargs)


#: ``measure`` settings of a quick run (``quick=True`` in the notebooks): a short timing budget
#: per point, short energy and idle windows. Timing then stops well before the 2% confidence
#: target; ``latency_ci_rel`` on each row says how tight the median really is.
QUICK_SETTINGS: Mapping[str, float] = {"time_budget_s": 0.2, "energy_window_s": 0.2, "idle_s": 0.2}


def measure_settings(quick: bool) -> dict[str, Any]:
    """Keyword arguments for :func:`effplan.measure`: :data:`QUICK_SETTINGS` when ``quick``,
    else none (measure's defaults: until the median's 95% CI is within 2%, at most 2 s/point)."""
    return dict(QUICK_SETTINGS) if quick else {}


def prices_for(measurements: Any, price_per_hour: Mapping[str, float] | None = None,
               **prices_kwargs: Any) -> Any:
    """:class:`effplan.Prices` that also price the machine the notebook runs on.

    The shipped catalog has no row for an arbitrary workstation or server, so its cost would be
    NaN. For measured hardware without a price (in ``price_per_hour`` or the catalog) that is
    THIS machine, the price of ``load_catalog(include_this_machine=True)`` is used (a generic
    per-core estimate for an unknown CPU; its source is in the catalog row). Prices you give
    always win. Other keyword arguments go to ``Prices`` (``pue``, ``grid_region``, ...).
    """
    from . import catalog as cat_mod
    from .planning import Prices

    given = {str(k): float(v) for k, v in (price_per_hour or {}).items()}
    frame = measurements.to_frame() if hasattr(measurements, "to_frame") else measurements
    shipped = cat_mod.load_catalog()
    row = cat_mod.this_machine_row(shipped)
    for hw in dict.fromkeys(str(h) for h in frame["hardware"]):
        if hw in given:
            continue
        known = cat_mod.find_hardware(hw, shipped)
        if known is not None and known.get("price_per_hour_usd") == known.get("price_per_hour_usd"):
            continue  # the catalog prices it
        if row is not None and str(row.get("name")) == hw:
            price = row.get("price_per_hour_usd")
            if price is not None and price == price:
                given[hw] = float(price)
    return Prices(price_per_hour=given or None, **prices_kwargs)


def measured_vs_estimated(frame: Any) -> Any:
    """One row per candidate x hardware x mode saying where each figure comes from.

    ``timing`` is the rows' ``provenance`` (measured / estimated / projected / entered);
    ``energy`` is ``measured (<source>)`` for NVML/RAPL, ``ESTIMATED (rated power)`` for
    ``estimated-tdp``, else the source; ``flops`` is ``counted`` when every operator was
    counted, else ``lower bound (<coverage>% of operator calls counted)``; ``memory`` is the
    memory source. Failed points are listed with their error.
    """
    import numpy as np
    import pandas as pd

    df = frame.to_frame() if hasattr(frame, "to_frame") else frame
    keys = ["candidate", "hardware", "mode"]
    g = df.groupby(keys, sort=False)

    def energy_label(s: pd.Series) -> str:
        src = ", ".join(sorted({str(v) for v in s if str(v)}))
        if not src:
            return "not measured"
        if set(src.split(", ")) <= {"nvml-counter", "nvml-power", "rapl"}:
            return f"measured ({src})"
        if "estimated-tdp" in src:
            return "ESTIMATED (rated power x utilization)"
        return src

    def flops_label(s: pd.Series) -> str:
        cov = pd.to_numeric(s, errors="coerce")
        if cov.isna().all():
            return "not counted"
        low = float(np.nanmin(cov.to_numpy()))
        return "counted" if low >= 1.0 else f"lower bound ({low:.0%} of operator calls counted)"

    out = g.agg(points=("batch_size", "size"),
                timing=("provenance", lambda s: ", ".join(sorted(set(map(str, s))))),
                energy=("energy_source", energy_label),
                flops=("flops_coverage", flops_label),
                memory=("memory_source", lambda s: ", ".join(sorted({str(v) for v in s if str(v)}))),
                failed=("status", lambda s: int((s.astype(str) != "ok").sum())),
                ).reset_index()
    errs = df[df["status"].astype(str) != "ok"].groupby(keys, sort=False)["error"].first()
    out["error"] = [errs.get(tuple(k), "") for k in out[keys].itertuples(index=False)]
    return out


def trainable(candidates: Iterable[Any]) -> list[Any]:
    """The candidates that can be trained: a (dynamic-)quantized model cannot, and measuring it
    in training mode would only give error rows."""
    return [c for c in candidates if not c.is_quantized]


def candidates_table(candidates: Iterable[Any]) -> Any:
    """name, tags, quality (with its metric), dtype and device of each :class:`Candidate`."""
    import pandas as pd

    return pd.DataFrame([{
        "candidate": c.name, "tags": ", ".join(c.tags), "quality": c.quality,
        "quality_metric": getattr(c, "quality_metric", None) or "",
        "dtype": c.dtype or "float32", "device": c.device or "(sweep device)"}
        for c in candidates])


def training_figure(plan: Any) -> Any:
    """Training over the horizon per candidate x hardware: device-hours and cost (bars).

    Rows that could not be projected (NaN) are left out and named in the title."""
    import numpy as np
    from matplotlib.figure import Figure

    tr = getattr(plan, "training", None)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    if tr is None or tr.empty:
        ax1.text(0.5, 0.5, "no training workload", ha="center", va="center")
        return fig
    tot = tr.groupby(["candidate", "hardware", "provenance"], sort=False)[
        ["device_hours", "cost_usd"]].sum(min_count=1).reset_index()
    missing = tot[tot["cost_usd"].isna()]
    tot = tot[tot["cost_usd"].notna()]
    labels = [f"{c}\n{h}" + (" (projected)" if p == "projected" else "")
              for c, h, p in tot[["candidate", "hardware", "provenance"]].itertuples(index=False)]
    y = np.arange(len(tot))
    ax1.barh(y, tot["device_hours"], color="#4c72b0")
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.set_xlabel("device-hours over the horizon")
    ax2.barh(y, tot["cost_usd"], color="#dd8452")
    ax2.set_yticks(y, [""] * len(y))
    ax2.set_xlabel("training cost over the horizon (USD)")
    for ax in (ax1, ax2):
        ax.invert_yaxis()
    title = "Training budget"
    if len(missing):
        title += f" (no cost for: {', '.join(sorted(set(missing['candidate'])))})"
    fig.suptitle(title, fontsize=10)
    return fig


def _has_results(path: str | os.PathLike) -> bool:
    text = os.fspath(path)
    if os.path.isdir(text):
        return any(Path(text).glob("*.jsonl"))
    if os.path.isfile(text):
        return os.path.getsize(text) > 0
    import glob

    return bool(glob.glob(text, recursive=True))


def _png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi or 100, bbox_inches="tight")
    return buf.getvalue()


def show(obj: Any, title: str | None = None) -> None:
    """Display ``obj`` as static output that survives export: a matplotlib Figure as an
    embedded PNG, a DataFrame/Styler as an HTML table, a dict/list as each of its items (dict
    keys as headings). Figures are closed afterwards only if they live in pyplot's registry."""
    from IPython.display import HTML, Image, display

    if title:
        display(HTML(f"<h4>{_html.escape(str(title))}</h4>"))
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            show(value, title=str(key).replace("_", " "))
        return
    if isinstance(obj, (list, tuple)):
        for value in obj:
            show(value)
        return
    if hasattr(obj, "savefig"):
        display(Image(data=_png_bytes(obj), format="png"))
        return
    if hasattr(obj, "to_html"):
        try:
            display(HTML(obj.to_html(index=False, na_rep="")))
        except TypeError:  # a pandas Styler takes no index/na_rep
            display(HTML(obj.to_html()))
        return
    display(obj)


# ------------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m effplan.report``: run notebooks, check widget metadata, export HTML."""
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
        executed = run_notebooks(args.notebook, params=params, out_dir=out,
                                 notebooks_dir=Path(args.notebooks_dir).resolve(),
                                 kernel_name=args.kernel, timeout_s=args.timeout,
                                 log_output=False, progress=False)
        for nb in executed:
            print(f"executed {nb}")
        if not args.no_html:
            for page in export_html(executed, out, widgets=args.widgets,
                                    widget_renderer_url=args.widget_renderer_url):
                print(f"wrote    {page}")
    except EffplanError as exc:
        print(f"effplan.report: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
