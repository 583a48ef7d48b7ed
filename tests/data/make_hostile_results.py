"""Make ``hostile_results.jsonl``: a results file as a stranger could send it (issue 22).

    PYTHONPATH=. python tests/data/make_hostile_results.py

Hand-entered inference rows (``provenance="entered"``, figures chosen so that every candidate
is feasible and the baseline needs several instances) whose candidate, hardware and tag names
are hostile:

* ``<script>alert(1)</script>`` (the baseline) and an ``<img onerror>`` hardware name: markup
  that must show as text in every HTML surface;
* ``=HYPERLINK("http://x","y")`` and a tag ``@SUM(1+1)*cmd|' /C calc'!A0``: formulas that a
  spreadsheet must show as text;
* ``a/b`` and ``a b``: names that collide after slugging (two cards, never one overwritten);
* a name with a newline and ANSI colour codes (``\\x1b[31m``): printed, never obeyed;
* a 300-character name: a bounded file name, no ENAMETOOLONG.

Every row is validated by :func:`effplan.store.save_frame` like any results file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
HARDWARE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x","y")'
ANSI = "evil\nname \x1b[31mred\x1b[0m"
LONG = "L" * 300
#: every hostile candidate name, the baseline first
CANDIDATES = (SCRIPT, FORMULA, "a/b", "a b", ANSI, LONG)
TAG = "@SUM(1+1)*cmd|' /C calc'!A0"


def rows() -> list[dict]:
    out = []
    for i, cand in enumerate(CANDIDATES):
        for bs in (1, 8):
            lat = (4.0 - 0.5 * i) * (1 + bs / 8)            # ms per batch; the baseline slowest
            out.append({
                "candidate": cand, "hardware": HARDWARE, "hardware_id": "hostile-test",
                "mode": "inference", "batch_size": bs, "device": "cpu", "dtype": "float32",
                "latency_p50_ms": lat, "latency_p95_ms": lat * 1.2, "latency_mean_ms": lat,
                "throughput_items_per_s": bs / (lat / 1000), "energy_per_item_j": 0.05 * lat / bs,
                "idle_power_w": 20.0, "energy_source": "entered", "provenance": "entered",
                "flops_per_item": 1e8 * (6 - i), "params": 100_000 * (6 - i),
                "quality": 0.97 - 0.01 * i, "status": "ok", "stable": True,
                "tags": "baseline" if i == 0 else f"<b onmouseover=alert(3)>t{i}</b>,{TAG}",
            })
    return out


def main() -> None:
    from effplan import store

    store.save_frame(pd.DataFrame(rows()), HERE / "hostile_results.jsonl")


if __name__ == "__main__":
    main()
