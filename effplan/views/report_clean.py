"""An executed notebook made readable for a reader without a kernel (the HTML and PDF reports):

* no stderr block: a stream written to stderr (Python warnings, torch / torchao / tqdm messages)
  is removed; the Python warnings in it come back as ONE short note per distinct warning (its
  class and first sentence, no file path, no line number), at the place it was raised;
* no local paths: an absolute path in a text output (``/work/.../results/digits.jsonl``,
  ``/tmp/ipykernel_1/123.py``) is shortened to its file name;
* no developer headings: the "Parameters" heading above the papermill ``parameters`` cell (whose
  code a report hides, so the heading would stand over nothing) is dropped.

:func:`reader_copy` returns a cleaned deep copy; the executed ``.ipynb`` keeps everything.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..safe import html_text

__all__ = ["reader_copy", "warning_notes", "strip_paths", "NOTE_CLASS"]

#: the class of the note a report shows for warnings (tests look for it)
NOTE_CLASS = "effplan-note"

_WARNING = re.compile(r"(?:^|\s)(?:[^\s:]+:\d+: )?([A-Z][A-Za-z]*Warning): (.+)")
#: an absolute POSIX path of at least two parts (not a URL: no "//" before it)
_PATH = re.compile(r"(?<![\w/:.])(/(?:[\w.@+-]+/)+)([\w.@+-]+)")


def strip_paths(text: str) -> str:
    """``text`` with every absolute path shortened to its last part (the file name)."""
    return _PATH.sub(lambda m: m.group(2), text)


def _first_sentence(text: str, limit: int = 200) -> str:
    t = " ".join(text.split())
    for sep in (". ", "; "):
        i = t.find(sep)
        if 0 < i < limit:
            return t[:i + 1]
    return t if len(t) <= limit else t[:limit - 1] + "…"


def warning_notes(stderr: str) -> list[tuple[str, str]]:
    """(warning class, first sentence) of each Python warning in a stderr text, in order, once."""
    out: list[tuple[str, str]] = []
    for line in stderr.splitlines():
        hit = _WARNING.search(line)
        if hit:
            item = (hit.group(1), strip_paths(_first_sentence(hit.group(2))))
            if item not in out:
                out.append(item)
    return out


def _note_html(kind: str, text: str) -> str:
    word = "note" if kind in ("EffplanWarning", "PlanWarning", "DataWarning") else kind
    return (f'<div class="{NOTE_CLASS}" style="color:#6b5500;background:#fffbe6;border-left:3px '
            f'solid #e6c84a;padding:2px 8px;margin:2px 0;font-size:0.9em"><b>{html_text(word)}:'
            f"</b> {html_text(text)}</div>")


def _is_parameters_heading(cell: Any, nxt: Any) -> bool:
    if cell.get("cell_type") != "markdown" or nxt is None:
        return False
    tags = (nxt.get("metadata", {}) or {}).get("tags", []) or []
    text = "".join(cell.get("source", "")) if isinstance(cell.get("source"), list) else str(
        cell.get("source", ""))
    return "parameters" in tags and text.lstrip().lower().startswith("## parameters")


def reader_copy(nb: Any) -> Any:
    """A deep copy of the executed notebook ``nb`` cleaned for readers (module docstring)."""
    nb = copy.deepcopy(nb)
    seen: set[tuple[str, str]] = set()
    cells = list(nb.cells)
    keep = []
    for i, cell in enumerate(cells):
        if _is_parameters_heading(cell, cells[i + 1] if i + 1 < len(cells) else None):
            continue
        keep.append(cell)
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "stream":
                text = out.get("text", "")
                text = "".join(text) if isinstance(text, list) else str(text)
                if out.get("name") == "stderr":
                    for item in warning_notes(text):
                        if item not in seen:
                            seen.add(item)
                            outputs.append(_display_html(_note_html(*item)))
                    continue
                out["text"] = strip_paths(text)
            elif out.get("output_type") == "error":
                out["traceback"] = [strip_paths(str(t)) for t in out.get("traceback", [])]
                out["evalue"] = strip_paths(str(out.get("evalue", "")))
            else:
                data = out.get("data") or {}
                if "text/plain" in data and len(data) == 1:
                    t = data["text/plain"]
                    data["text/plain"] = strip_paths("".join(t) if isinstance(t, list) else str(t))
            outputs.append(out)
        cell["outputs"] = outputs
    nb.cells = keep
    return nb


def _display_html(markup: str) -> Any:
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/html": markup})
