"""Text that came from data, made safe for where it goes (a results file from someone else).

Candidate, hardware and tag names travel: a colleague's results file becomes an HTML report, a
CSV a manager opens in a spreadsheet, card files, lines in a terminal. This module is the ONE
home of the rules that keep such a name as text everywhere (stdlib only; pandas for frames):

* HTML -- :func:`html_text`: ``<``, ``>``, ``&``, ``"`` and ``'`` as entities, for element text
  and attribute values alike. Every HTML surface (notebook tables, the dashboard's tables,
  charts, tooltips and SVG, cards rendered to HTML, the exported report) escapes through it;
  :func:`effplan.formatting.styled` applies it to every cell, header and caption of a Styler.
* Spreadsheets -- :func:`spreadsheet_cell` / :func:`spreadsheet_frame`: a text cell that a
  spreadsheet would evaluate as a formula (it starts with ``=``, ``+``, ``@``, a tab, a carriage
  return, or ``-`` not followed by a number) gets a leading ``'`` (OWASP "CSV injection").
  Numbers stay numbers (a numeric column is never touched; text that IS a number, such as
  ``-5`` or ``+1.5e3``, is left as it is). The rule is reversible: :func:`unspreadsheet_frame`
  gives back the exact names (a name that itself starts with quotes before a trigger gets one
  more quote), so ``Plan.from_csv`` reads the names that ``Plan.to_csv`` was given.
* File names -- :func:`file_stem`: a stable slug (``[A-Za-z0-9._-]``), plus ``-`` and the first
  8 hex digits of the SHA-256 of the exact name whenever the slug is not the name itself (so
  ``a/b`` and ``a b`` differ), cut to :data:`MAX_STEM_CHARS`; :func:`path_inside` refuses a
  path that leaves its folder.
* Terminals -- :func:`terminal_text`: control characters (C0 but newline and tab, DEL, C1,
  and the bidirectional overrides that reorder text on screen) shown as visible ``\\x1b``
  escapes, so an ANSI sequence in a name is printed, never obeyed; :class:`TerminalStream`
  applies it to everything written to a stream (the CLI's stdout).
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["html_text", "markdown_text", "code_fence", "spreadsheet_cell", "spreadsheet_frame", "unspreadsheet_cell",
           "unspreadsheet_frame", "FORMULA_TRIGGERS", "file_stem", "path_inside", "MAX_STEM_CHARS",
           "terminal_text", "TerminalStream"]


# ------------------------------------------------------------------------------------- HTML
def html_text(value: Any) -> str:
    """``value`` as text that HTML shows and never runs: ``str(value)`` with ``& < > " '`` as
    entities (safe in element text and in quoted attribute values). ``None`` -> ``""``."""
    return "" if value is None else html.escape(str(value), quote=True)


_MARKDOWN_SPECIAL = re.compile(r"([\\`\[\]|<>&])")


def markdown_text(value: Any) -> str:
    """``value`` as literal text inside Markdown (a compute card): on one line (line breaks ->
    spaces), other control characters as visible escapes (:func:`terminal_text`), and the
    characters that make links, code, table cells or HTML (``\\ ` [ ] | < > &``) backslash-escaped
    (CommonMark's escapes: a renderer shows them as the characters, ``<`` as ``&lt;``), so a
    name can neither open a link, end a table cell nor inject a tag into the rendered HTML
    (``*`` and ``_`` stay: at worst they set a word in italics, and ``python_version`` stays
    readable in the plain file)."""
    text = re.sub(r"[\r\n\u2028\u2029]+", " ", "" if value is None else str(value))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", terminal_text(text))


def code_fence(text: str, lang: str = "") -> list[str]:
    """``text`` as a fenced Markdown code block whose fence (backticks) is longer than any run
    of backticks inside it, so the text cannot close the block early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + lang, text, fence]


# ------------------------------------------------------------------------------ spreadsheets
#: first characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")


def _is_formula(text: str) -> bool:
    if not text or text[0] not in FORMULA_TRIGGERS:
        return False
    return not _NUMBER.fullmatch(text)  # "-5", "+1.5e3": a number, shown as one


def spreadsheet_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: text starting with a formula trigger (see
    :data:`FORMULA_TRIGGERS`; not a plain number) gets a leading ``'``; so does text that
    starts with quotes followed by a trigger (that keeps :func:`unspreadsheet_cell` exact).
    Anything but text is returned unchanged (numbers stay numbers)."""
    if not isinstance(value, str):
        return value
    if _is_formula(value.lstrip("'")):
        return "'" + value
    return value


def unspreadsheet_cell(value: Any) -> Any:
    """The exact text :func:`spreadsheet_cell` was given (one leading ``'`` before a trigger
    removed)."""
    if isinstance(value, str) and value[:1] == "'" and _is_formula(value.lstrip("'")):
        return value[1:]
    return value


def _map_text(df: Any, fn: Any) -> Any:
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out[c] = col.astype(object).map(fn)
    out.columns = [fn(c) for c in out.columns]
    return out


def spreadsheet_frame(df: Any, *, excel: bool = False) -> Any:
    """A copy of ``df`` for a CSV / Excel export: every text cell and column name through
    :func:`spreadsheet_cell`; numeric columns untouched. ``excel=True`` (a workbook) also shows
    control characters as visible escapes (:func:`terminal_text`): a worksheet cannot hold them."""
    if excel:
        return _map_text(df, lambda v: spreadsheet_cell(terminal_text(v)) if isinstance(v, str) else v)
    return _map_text(df, spreadsheet_cell)


def unspreadsheet_frame(df: Any) -> Any:
    """The frame :func:`spreadsheet_frame` was given (read back from its CSV)."""
    return _map_text(df, unspreadsheet_cell)


# -------------------------------------------------------------------------------- file names
#: longest file-name stem derived from a name (a card adds ``.card.json``: far below the
#: 255 bytes most file systems allow)
MAX_STEM_CHARS = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: names Windows reserves whatever the extension (a card shared on a Windows drive)
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def name_hash(name: str, digits: int = 8) -> str:
    """The first ``digits`` hex digits of the SHA-256 of ``name`` (UTF-8)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:digits]


def file_stem(name: Any, *, max_chars: int = MAX_STEM_CHARS, hash_digits: int = 8,
              fallback: str = "candidate") -> str:
    """A file-name stem for ``name``: the name itself when it is already a short, clean slug
    (``[A-Za-z0-9._-]``, not starting with ``.`` or ``-``, not a reserved device name);
    otherwise its slug (runs of other characters -> ``_``) cut to fit, ``-`` and
    :func:`name_hash` of the exact name. Stable across runs and machines; never more than
    ``max_chars`` characters; never a path (no ``/``, ``\\``, ``..`` alone)."""
    text = str(name)
    slug = _UNSAFE.sub("_", text).strip("._-")
    clean = (slug == text and len(text) <= max_chars and slug.split(".")[0].lower() not in _RESERVED)
    if clean:
        return text
    keep = max(1, max_chars - hash_digits - 1)
    base = slug[:keep].rstrip("._-") or fallback
    return f"{base}-{name_hash(text, hash_digits)}"


def path_inside(directory: str | os.PathLike, filename: str) -> Path:
    """``directory / filename``, refused (:class:`~effplan.errors.ValidationError`) when it
    would resolve outside ``directory`` (``..``, an absolute name, a link pointing out)."""
    from .errors import ValidationError

    d = Path(directory)
    p = d / filename
    root = d.resolve()
    target = p.resolve()
    if target.parent != root and root not in target.parents:
        raise ValidationError("file name", f"{filename!r} would be written outside {d}",
                              where=str(d))
    return p


# --------------------------------------------------------------------------------- terminals
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_text(value: Any, *, newlines: bool = True) -> str:
    """``str(value)`` with every control character shown as a visible escape (``ESC`` ->
    ``\\x1b``): C0 controls but tab (and newline, unless ``newlines=False``), DEL, C1 and the
    bidirectional overrides. A terminal prints the result; it never obeys it."""
    text = _CONTROL.sub(_visible, str(value))
    return text.replace("\n", "\\n") if not newlines else text


class TerminalStream:
    """A text stream that passes everything written through :func:`terminal_text` (newlines
    and tabs kept) to ``stream``: the CLI's stdout, so no name from a results file can move the
    cursor, recolour or clear a terminal."""

    def __init__(self, stream: Any, *, keep: str = "") -> None:
        self._stream = stream
        self._keep = keep  # control characters let through (stderr: "\r" for progress bars)

    def write(self, text: str) -> int:
        if self._keep:
            parts = text.split(self._keep[0])
            self._stream.write(self._keep[0].join(terminal_text(p) for p in parts))
        else:
            self._stream.write(terminal_text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty...
        return getattr(self._stream, name)
