"""Reports for a reader without a kernel (effplan.report_clean): no stderr block, warnings as one
short note, no local path, no empty "Parameters" heading -- in the cleaned notebook and in the
HTML page exported from it."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from effplan import report
from effplan.views.report_clean import NOTE_CLASS, reader_copy, strip_paths, warning_notes

STDERR = (
    "/work/wt/x/effplan/energy.py:724: EnergyFallbackWarning: EnergyMeter(cpu): no RAPL powercap "
    "interface at /sys/class/powercap (No such file or directory). Energy is ESTIMATED.\n"
    "  meter = EnergyMeter(device, backend=backend)\n"
    "/tmp/ipykernel_662/4014916668.py:6: PlanWarning: plan(): 16 measured row(s) are NOT stable. "
    "Rows: a, b, c.\n"
    "100%|##########| 16/16 [00:03<00:00,  4.2it/s]\n"
    "/work/wt/x/effplan/energy.py:724: EnergyFallbackWarning: EnergyMeter(cpu): no RAPL powercap "
    "interface at /sys/class/powercap (No such file or directory). Energy is ESTIMATED.\n")


def _nb():
    params = new_code_cell("samples = 200")
    params.metadata["tags"] = ["parameters"]
    return new_notebook(cells=[
        new_markdown_cell("# Budget"), new_markdown_cell("## Parameters"), params,
        new_code_cell("plan()", outputs=[
            new_output("stream", name="stderr", text=STDERR),
            new_output("stream", name="stdout", text="wrote /work/wt/x/reports/results/digits.jsonl\n"),
            new_output("display_data", data={"text/html": "<b>the answer</b>"})]),
        new_code_cell("again()", outputs=[new_output("stream", name="stderr", text=STDERR)]),
    ])


def test_warning_notes_and_paths_by_hand():
    assert warning_notes(STDERR) == [
        ("EnergyFallbackWarning", "EnergyMeter(cpu): no RAPL powercap interface at powercap (No "
                                  "such file or directory)."),
        ("PlanWarning", "plan(): 16 measured row(s) are NOT stable."),
    ]
    assert strip_paths("see /work/wt/x/results/a.jsonl and /tmp/y.py:3") == "see a.jsonl and y.py:3"
    assert strip_paths("https://example.org/a/b.html") == "https://example.org/a/b.html"


def test_reader_copy_has_no_stderr_one_note_per_warning_and_no_heading():
    clean = reader_copy(_nb())
    outs = [o for c in clean.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.get("name") == "stderr"]
    notes = [o["data"]["text/html"] for o in outs if NOTE_CLASS in o.get("data", {}).get("text/html", "")]
    assert len(notes) == 2       # two distinct warnings, each once (the second cell repeats them)
    assert "<b>EnergyFallbackWarning:</b>" in notes[0] and "<b>note:</b> plan()" in notes[1]
    stdout = [o["text"] for o in outs if o.get("name") == "stdout"]
    assert stdout == ["wrote digits.jsonl\n"]
    assert [c.source for c in clean.cells if c.cell_type == "markdown"] == ["# Budget"]


def test_exported_html_has_no_stderr_and_no_local_path(tmp_path):
    import nbformat

    src = tmp_path / "budget.ipynb"
    nbformat.write(_nb(), src)
    (page,) = report.export_html(src, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    # the template's CSS names the stderr type; no OUTPUT carries it
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in text
    assert "EnergyMeter(device" not in text      # the stderr block's source line
    assert "/work/" not in text and "/tmp/" not in text and "ipykernel" not in text
    assert "the answer" in text and text.count(NOTE_CLASS) >= 2
    assert ">Parameters<" not in text
