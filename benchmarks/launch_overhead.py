"""Per-operator launch + dispatch overhead, measured, against effplan/data/kernel_overhead.csv.

Run: ``.venv/bin/python benchmarks/launch_overhead.py`` (CPU; on a CUDA machine the GPU too).

What is measured: a chain of ``N`` dependent eager ``x = torch.relu(x)`` calls on a one-element tensor
(no autograd), on each available device; per-operator overhead = wall time / N (fastest of
REPEATS chains, after a warm-up; CUDA is synchronised before the clock is read). The work per
call is negligible, so the time is the framework dispatch plus, on CUDA, the kernel launch.
Then a deep narrow MLP (``LAYERS`` x Linear(64, 64) + ReLU, batch 1) is timed and compared with
the floor ``operator calls x per-operator overhead`` (operator calls from
:attr:`effplan.flops.FlopCount.operator_calls`): measured / floor should be >= 1 (it is a floor)
and near 1 for such an overhead-bound model. The shipped CSV row for the device family is
printed beside the measurement, with the ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

N = 2000
REPEATS = 5
LAYERS = 24


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def per_op_us(device: str, n: int = N, repeats: int = REPEATS) -> float:
    x = torch.zeros(1, device=device)
    best = float("inf")
    with torch.no_grad():
        for rep in range(repeats + 1):
            y = x
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                y = torch.relu(y)
            _sync(device)
            dt = time.perf_counter() - t0
            if rep:  # the first chain is the warm-up
                best = min(best, dt)
    return best / n * 1e6


def mlp_us(device: str, layers: int = LAYERS, repeats: int = 20) -> tuple[float, nn.Module,
                                                                             torch.Tensor]:
    blocks = []
    for _ in range(layers):
        blocks += [nn.Linear(64, 64), nn.ReLU()]
    model = nn.Sequential(*blocks).to(device).eval()
    x = torch.randn(1, 64, device=device)
    best = float("inf")
    with torch.no_grad():
        for rep in range(repeats + 1):
            _sync(device)
            t0 = time.perf_counter()
            model(x)
            _sync(device)
            if rep:
                best = min(best, time.perf_counter() - t0)
    return best * 1e6, model, x


def main(n: int = N, layers: int = LAYERS) -> list[dict]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        from effplan.flops import count_flops
        from effplan.refdata.reference import kernel_overhead
        table = kernel_overhead()
    except ImportError as err:  # the device machine may lack effplan's dependencies
        count_flops, table = None, None
        print(f"(effplan not importable here: {err}; printing the measurement only)")
    rows = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for device in devices:
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        op_us = per_op_us(device, n)
        model_us, model, x = mlp_us(device, layers)
        calls = None
        if count_flops is not None:
            calls = count_flops(model.cpu(), x.cpu(), engine="dispatch").operator_calls
        else:
            calls = 2 * layers  # addmm + relu per block (t() is a view)
        floor_us = calls * op_us
        row = {"device": name, "per_op_us": op_us, "mlp_operator_calls": calls,
               "mlp_measured_us": model_us, "floor_us": floor_us,
               "measured/floor": model_us / floor_us}
        if table is not None:
            family = "cuda" if device == "cuda" else "cpu"
            ref = table[table["family"] == family].iloc[0]
            row["csv_per_op_us"] = float(ref["overhead_us"])
            row["measured/csv"] = op_us / float(ref["overhead_us"])
        rows.append(row)
    print(f"torch {torch.__version__}; per-operator overhead = fastest of {REPEATS} chains of "
          f"{n} dependent torch.relu calls; MLP = {layers} x (Linear(64,64) + ReLU), batch 1")
    for row in rows:
        print("  " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items()))
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=N, help="calls per timed chain")
    ap.add_argument("--layers", type=int, default=LAYERS, help="Linear+ReLU blocks of the MLP")
    a = ap.parse_args()
    main(a.n, a.layers)
