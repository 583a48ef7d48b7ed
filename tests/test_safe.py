"""Safe to share (issue 22): names from someone else's results file are shown as text, never run,
and never overwrite each other. The shipped ``tests/data/hostile_results.jsonl``
(``make_hostile_results.py``) goes through every export here; assertions are on the bytes
written. The notebook report and the Voila app are checked in ``test_safe_browser.py``."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

import effplan
from effplan import safe, store
from effplan.cli import main
from effplan.errors import EffplanWarning, ValidationError

DATA = Path(__file__).resolve().parent / "data"
HOSTILE = DATA / "hostile_results.jsonl"
SCRIPT = "<script>alert(1)</script>"
HARDWARE = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://x","y")'
ANSI = "evil\nname \x1b[31mred\x1b[0m"
LONG = "L" * 300
TAG = "@SUM(1+1)*cmd|' /C calc'!A0"
ROW = {"candidate": "a", "hardware": "h", "mode": "inference", "batch_size": 1}


def _raw_markup(text: str) -> list[str]:
    """The hostile markup that must never appear unescaped in HTML."""
    return [s for s in (SCRIPT, HARDWARE, "<b onmouseover", "<script>alert", "<img src=x") if s in text]


@pytest.fixture(scope="module")
def hostile():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        return store.load(HOSTILE)


@pytest.fixture(scope="module")
def hostile_plan(hostile):
    prices = effplan.Prices(price_per_hour={HARDWARE: 1.0})
    wl = effplan.InferenceWorkload(requests_per_day=2e6, months=3, slo_p95_ms=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        return effplan.plan(hostile, inference=wl, prices=prices, hardware=["T4"], samples=0)


# ----------------------------------------------------------------------------- the one helper
def test_the_shipped_file_holds_every_hostile_name(hostile):
    assert list(dict.fromkeys(hostile["candidate"])) == [SCRIPT, FORMULA, "a/b", "a b", ANSI, LONG]
    assert set(hostile["hardware"]) == {HARDWARE}
    assert TAG in hostile["tags"].iloc[2]


def test_html_text_escapes_markup_and_quotes():
    assert safe.html_text(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert safe.html_text('" onmouseover=\'x\'') == "&quot; onmouseover=&#x27;x&#x27;"
    assert safe.html_text(None) == "" and safe.html_text(1.5) == "1.5"


@pytest.mark.parametrize("cell, expected", [
    (FORMULA, "'" + FORMULA), ("+1+cmd", "'+1+cmd"), ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("-", "'-"),
    ("-5", "-5"), ("+1.5e3", "+1.5e3"), ("12%", "12%"), ("a=b", "a=b"), ("", ""),
    ("'=x", "''=x"), ("'abc", "'abc"), (5, 5), (-2.5, -2.5), (None, None)])
def test_spreadsheet_cells_that_would_run_get_a_quote_and_read_back_exactly(cell, expected):
    assert safe.spreadsheet_cell(cell) == expected
    assert safe.unspreadsheet_cell(safe.spreadsheet_cell(cell)) == cell


def test_spreadsheet_frame_keeps_numbers_numbers():
    df = pd.DataFrame({"candidate": [FORMULA, "ok"], "cost_usd": [-1.5, 2.0], "=h": [1, 2]})
    out = safe.spreadsheet_frame(df)
    assert list(out["candidate"]) == ["'" + FORMULA, "ok"] and list(out.columns) == ["candidate", "cost_usd", "'=h"]
    assert out["cost_usd"].dtype == float and list(out["cost_usd"]) == [-1.5, 2.0]
    pd.testing.assert_frame_equal(safe.unspreadsheet_frame(out), df, check_dtype=False)


def test_file_stems_are_stable_bounded_and_distinct():
    assert safe.file_stem("digits-mlp") == "digits-mlp"          # a clean name stays itself
    a, b = safe.file_stem("a/b"), safe.file_stem("a b")
    assert a != b and a.startswith("a_b-") and b.startswith("a_b-") and len(a) == len("a_b-") + 8
    assert a == f"a_b-{safe.name_hash('a/b')}" == safe.file_stem("a/b")   # stable
    assert len(safe.file_stem(LONG)) == safe.MAX_STEM_CHARS
    for name in ("..", "../../etc/passwd", "/abs", "CON", ".hidden", "\x1b[31m"):
        stem = safe.file_stem(name)
        assert "/" not in stem and stem not in ("..", ".") and not stem.startswith(".")


def test_path_inside_refuses_a_way_out(tmp_path):
    assert safe.path_inside(tmp_path, "x.md") == tmp_path / "x.md"
    with pytest.raises(ValidationError, match="outside"):
        safe.path_inside(tmp_path, "../x.md")
    os.symlink("/tmp", tmp_path / "out")
    with pytest.raises(ValidationError, match="outside"):
        safe.path_inside(tmp_path, "out/x.md")


def test_terminal_text_shows_control_characters():
    assert safe.terminal_text(ANSI) == "evil\nname \\x1b[31mred\\x1b[0m"
    assert safe.terminal_text(ANSI, newlines=False) == "evil\\nname \\x1b[31mred\\x1b[0m"
    assert safe.terminal_text("a\rb\u202ec\x9b\tz") == "a\\x0db\\u202ec\\x9b\tz"
    buf = io.StringIO()
    safe.TerminalStream(buf, keep="\r").write("50%\r\x1b[2J")
    assert buf.getvalue() == "50%\r\\x1b[2J"


def test_markdown_text_is_literal():
    md = safe.markdown_text("[x](javascript:y) a|b\n<img src=x onerror=1> &amp; `c`")
    assert md == "\\[x\\](javascript:y) a\\|b \\<img src=x onerror=1\\> \\&amp; \\`c\\`"
    assert safe.code_fence("a ```` b", "json") == ["`````json", "a ```` b", "`````"]


# ----------------------------------------------------------------------------- HTML surfaces
def test_styled_and_notebook_tables_escape_cells_headers_and_captions(hostile):
    from effplan.formatting import styled
    from effplan.notebook import table

    df = hostile[["candidate", "hardware", "tags", "latency_p95_ms"]].rename(columns={"tags": "<i>tags"})
    html = styled(df, caption=SCRIPT).to_html()
    assert _raw_markup(html) == []
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2 + 1   # two rows + the caption
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;i&gt;tags" in html
    assert _raw_markup(table(df, caption=SCRIPT).data) == []


def test_repr_html_of_results_objects_escapes_names(hostile, hostile_plan):
    from effplan.notebook import answer, summary_view
    from effplan.planning import budget_table

    for html in (hostile_plan._repr_html_(), answer(hostile_plan, hostile).data,
                 effplan.notebook.table(summary_view(hostile_plan.summary)).data,
                 effplan.notebook.table(budget_table(hostile_plan)).data):
        assert _raw_markup(html) == [], html[:300]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer(hostile_plan, hostile).data


def test_dashboard_html_escapes_every_name_and_its_csv_neutralises_formulas(hostile, tmp_path):
    from effplan.widgets import BudgetDashboard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EffplanWarning)
        dash = BudgetDashboard(hostile, inference=effplan.InferenceWorkload(requests_per_day=2e6, months=3),
                               prices=effplan.Prices(price_per_hour={HARDWARE: 1.0}), hardware=["T4"],
                               samples=0, export_dir=tmp_path)
    assert dash.error in ("", None)
    dash.set(quarters=True)
    pieces = [ctl.value for ctl in _html_widgets(dash.widget)]
    html = "\n".join(pieces)
    assert _raw_markup(html) == [], [s for s in pieces if _raw_markup(s)][:1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Quarter by quarter" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    csv_text, _json = dash.export_payload()
    csv_path, _ = dash.export()
    for text in (csv_text, csv_path.read_text(encoding="utf-8")):
        cells = pd.read_csv(io.StringIO(text), keep_default_na=False)
        assert "'" + FORMULA in set(cells["candidate"]) and FORMULA not in set(cells["candidate"])
        assert not any(str(v).startswith(safe.FORMULA_TRIGGERS) and not _number(v)
                       for col in cells.columns for v in cells[col])


def _number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def _html_widgets(root):
    import ipywidgets as w

    todo, out = [root], []
    while todo:
        x = todo.pop()
        if isinstance(x, w.HTML):
            out.append(x)
        todo.extend(getattr(x, "children", ()))
    return out


def test_results_objects_repr_html_escapes(hostile_plan):
    from effplan.selection import cheapest_meeting

    sel = cheapest_meeting(hostile_plan)
    assert _raw_markup(sel._repr_html_()) == []


# ----------------------------------------------------------------------------- CSV / Excel
def _csv_candidates(text: str) -> list[str]:
    return list(pd.read_csv(io.StringIO(text), keep_default_na=False)["candidate"])


def test_plan_format_csv_and_out_neutralise_formulas(tmp_path, capsysbinary):
    out = tmp_path / "plan"
    code = main(["plan", str(HOSTILE), "--hardware", "T4", "--requests-per-day", "2e6",
                 "--months", "3", "--format", "csv", "--out", str(out)])
    assert code == 0
    printed = capsysbinary.readouterr().out.decode("utf-8")
    csv_part = printed.split("\nwrote ")[0]
    assert b"\x1b" not in printed.encode() and "\\x1b[31m" in csv_part
    names = _csv_candidates(csv_part)
    assert "'" + FORMULA in names and FORMULA not in names
    raw = (out / "summary.csv").read_bytes()
    assert b'"\'=HYPERLINK(""http://x"",""y"")"' in raw and b'\n"=HYPERLINK' not in raw
    assert b"\x1b[31m" in raw               # a file keeps the exact name; only formulas change
    back = effplan.Plan.from_csv(out)        # ... and reads back exactly
    assert FORMULA in set(back.summary["candidate"]) and ANSI in set(back.summary["candidate"])


def test_plan_to_excel_neutralises_formulas(hostile_plan, tmp_path):
    pytest.importorskip("openpyxl")
    import openpyxl

    p = hostile_plan.to_excel(tmp_path / "plan.xlsx")
    ws = openpyxl.load_workbook(p)["summary"]
    values = [c.value for row in ws.iter_rows() for c in row]
    assert "'" + FORMULA in values and FORMULA not in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)
    assert any(isinstance(v, float) for v in values)                 # numbers stay numbers
    assert "evil\nname \\x1b[31mred\\x1b[0m" in values                # a worksheet holds no ESC


def test_cli_prints_control_characters_as_text(capsys):
    assert main(["plan", str(HOSTILE), "--hardware", "T4", "--requests-per-day", "2e6",
                 "--months", "3"]) == 0
    out, err = capsys.readouterr()
    assert "\x1b" not in out and "\x1b" not in err
    assert "evil\\nname \\x1b[" in out  # one table row, the escape visible


# ----------------------------------------------------------------------------- compute cards
def test_cards_of_the_hostile_file_two_for_colliding_names_bounded_literal(tmp_path, hostile):
    from effplan.cards import write_cards

    paths = write_cards(hostile, tmp_path)
    assert len(paths) == len(set(paths)) == 6
    assert len({p.name.lower() for p in tmp_path.iterdir()}) == 18        # 6 x (.md + .json + .html)
    by_name = {json.loads(p.with_name(p.name.replace(".card.md", ".card.json")).read_text())["candidate"]: p
               for p in paths}
    assert set(by_name) == {SCRIPT, FORMULA, "a/b", "a b", ANSI, LONG}   # none lost
    assert by_name["a/b"] != by_name["a b"]
    assert all(len(p.name) <= safe.MAX_STEM_CHARS + len(".card.json") for p in tmp_path.iterdir())
    assert all(p.parent == tmp_path for p in tmp_path.iterdir())
    md = by_name[SCRIPT].read_bytes()
    assert re.findall(rb"(?<!\\)[<>]", md) == [] and b"\\<script\\>alert(1)\\</script\\>" in md
    ansi = by_name[ANSI].read_bytes()
    assert b"\x1b" not in ansi and b"# Compute card: evil name \\\\x1b[31mred" in ansi.replace(b"\\[", b"[")
    from effplan.cards import load_card

    html = load_card(by_name[SCRIPT].with_name(by_name[SCRIPT].name.replace(".md", ".json"))).to_html()
    assert _raw_markup(html) == [] and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_card_file_of_another_candidate_is_never_overwritten(tmp_path):
    from handtyped import hand_measurements

    from effplan.cards import compute_card

    df = hand_measurements()
    crafted = f"a_b-{safe.name_hash('a b')}"            # the file name 'a b' gets
    df = pd.concat([df.assign(candidate=df["candidate"].map({"small": "a b", "large": crafted}))])
    first = compute_card("a b", df, out_dir=tmp_path)
    second = compute_card(crafted, df, out_dir=tmp_path)
    assert first.json_path != second.json_path
    assert json.loads(first.json_path.read_text())["candidate"] == "a b"
    assert json.loads(second.json_path.read_text())["candidate"] == crafted
    again = compute_card("a b", df, out_dir=tmp_path)   # its own card is refreshed in place
    assert again.json_path == first.json_path


# ----------------------------------------------------------------------------- named errors
def test_store_errors_are_named(tmp_path):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(ValidationError, match="paths: .*loop cannot be resolved"):
        store.load(tmp_path / "loop")
    with pytest.raises(ValidationError, match="is a folder"):
        store.append(tmp_path, [ROW])
    with pytest.raises(ValidationError, match="is a folder"):
        store.save_frame(pd.DataFrame([ROW]), tmp_path)


def test_plan_of_a_symlink_loop_exits_2_without_a_traceback(tmp_path, capsys):
    os.symlink(tmp_path / "loop.jsonl", tmp_path / "loop.jsonl")
    assert main(["plan", str(tmp_path / "loop.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "effplan plan: error: paths:" in err and "Traceback" not in err


def test_bad_sidecar_lines_are_skipped_and_reported(tmp_path):
    res = tmp_path / "r.jsonl"
    store.append(res, [ROW])
    store.samples_path(res).write_text("null\n5\n[1,2]\n")
    with pytest.warns(EffplanWarning, match=r"3 unreadable line\(s\) .*line 1: expected a JSON object, "
                                            r"got NoneType; line 2: .*int; line 3: .*list"):
        assert store.load_samples(res) == {}


def test_a_duplicate_key_skips_the_record_with_the_reason(tmp_path):
    p = tmp_path / "dup.jsonl"
    store.append(p, [ROW])
    with open(p, "a", encoding="utf-8") as fh:
        fh.write('{"candidate": "a", "candidate": "b", "hardware": "h", "mode": "inference", '
                 f'"batch_size": 2, "schema_version": {store.SCHEMA_VERSION}}}\n')
    with pytest.warns(EffplanWarning, match=r"dup.jsonl:2: record: bad JSON: key 'candidate' appears twice"):
        frame = store.load(p)
    assert list(frame["candidate"]) == ["a"] and frame.attrs["errors"][0]["line"] == 2


def test_save_frame_through_a_symlink_replaces_the_target(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    os.symlink(target, link)
    store.save_frame(pd.DataFrame([ROW]), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["candidate"] == "a"


@pytest.mark.slow  # one real point measured in a worker (~20 s on a busy 2-core machine)
def test_a_full_disk_leaves_no_partial_line_and_says_what_was_saved(tmp_path, monkeypatch):
    """ENOSPC on the raw-samples write: the record IS on disk and is labelled so; a failed record
    write leaves the file exactly as it was (no cut-off line)."""
    from effplan.examples import digits_candidates

    import builtins

    res = tmp_path / "r.jsonl"
    state = {"fail": "samples"}
    real_open = builtins.open

    def fake_append_text(p, text, _orig=store._append_text):
        if (state["fail"] == "samples" and str(p).endswith(".samples")) or state["fail"] == "all":
            size = p.stat().st_size if p.exists() else 0
            with real_open(p, "a+b") as fh:      # half a line reaches the disk, then ENOSPC
                fh.write(text.encode()[: len(text) // 2])
                store._truncate(fh, size)
            raise OSError(errno.ENOSPC, "No space left on device", str(p))
        return _orig(p, text)

    monkeypatch.setattr(store, "_append_text", fake_append_text)
    cand = digits_candidates()[:1]
    with pytest.warns(EffplanWarning, match=r"could not be saved .*\(raw samples only\)"):
        m = effplan.measure(cand, batch_sizes=[1], device="cpu", results_path=res, progress=False,
                            time_budget_s=0.05, energy_window_s=0.05, idle_s=0.05, passes=1)
    row = m.to_frame().iloc[0]
    assert "record saved to" in row["error"] and "raw samples not saved" in row["error"]
    assert "not saved to" not in row["error"].split("raw samples")[0]
    assert len(store.load(res)) == 1 and not store.samples_path(res).read_text(errors="ignore")


def test_a_failed_append_truncates_its_partial_line(tmp_path, monkeypatch):
    p = tmp_path / "r.jsonl"
    store.append(p, [ROW])
    before = p.read_bytes()
    calls = {"n": 0}
    real_fsync = os.fsync

    def full_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_fsync)
    with pytest.raises(OSError, match="No space"):
        store.append(p, [dict(ROW, batch_size=2)])
    assert p.read_bytes() == before


def test_measure_resume_says_how_many_points_were_appended(tmp_path, capsys):
    from effplan.cli import _appended

    p = tmp_path / "r.jsonl"
    store.append(p, [ROW, dict(ROW, batch_size=8)])
    assert _appended(p, 2, 2) == f"\n0 point(s) appended to {p}; 2 row(s) shown were already there (--resume)"
    store.append(p, [dict(ROW, batch_size=32)])
    assert _appended(p, 2, 3) == f"\n1 point(s) appended to {p}; 2 row(s) shown were already there (--resume)"
    assert _appended(p, 0, 3) == f"\n3 point(s) appended to {p}"
