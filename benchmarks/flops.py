"""FLOP counters side by side: fvcore raw, effplan, PyTorch's FlopCounterMode, and the analytic value.

Run: ``.venv/bin/python benchmarks/flops.py`` (CPU is enough; a few seconds).

All FLOP columns are in FLOPs = 2 x multiply-accumulates. fvcore counts one FLOP per MAC, so its
raw total is multiplied by 2 here ("fvcore_raw_x2"). Times are the fastest of REPEATS counts in
ms (after one warm-up call), measured with ``time.perf_counter``: the minimum is the figure least
disturbed by other processes on a shared machine.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from effplan.flops import count_flops  # noqa: E402

REPEATS = 5


def mlp() -> tuple[nn.Module, torch.Tensor, int]:
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    b = 64
    analytic_macs = b * (784 * 512 + 512 * 256 + 256 * 10)
    return model, torch.randn(b, 784), 2 * analytic_macs


def cnn() -> tuple[nn.Module, torch.Tensor, int]:
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # 32x32 -> 16x16
        nn.Conv2d(32, 64, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(2),  # -> 8x8
        nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.ReLU(),             # depthwise
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    b = 16
    analytic_macs = b * (32 * 3 * 9 * 32 * 32 + 64 * 16 * 9 * 16 * 16 + 64 * 1 * 9 * 8 * 8
                         + 64 * 10)
    return model, torch.randn(b, 3, 32, 32), 2 * analytic_macs


def encoder(seq: int, train: bool = False) -> tuple[nn.Module, torch.Tensor, int]:
    d, heads, ff, layers, b = 256, 8, 1024, 4, 8
    layer = nn.TransformerEncoderLayer(d, heads, ff, batch_first=True)
    model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).train(train)
    per_layer = b * (4 * seq * d * d + 2 * seq * seq * d + 2 * seq * d * ff)
    return model, torch.randn(b, seq, d), 2 * layers * per_layer


def lstm() -> tuple[nn.Module, torch.Tensor, int]:
    """2-layer bidirectional LSTM(64, 128), batch 8, 50 steps: gates' matmuls only."""
    model = nn.LSTM(64, 128, num_layers=2, bidirectional=True, batch_first=True)
    steps = 8 * 50
    per_step = 2 * (4 * 128 * 64 + 4 * 128 * 128) + 2 * (4 * 128 * 256 + 4 * 128 * 128)
    return model, torch.randn(8, 50, 64), 2 * steps * per_step


def gru() -> tuple[nn.Module, torch.Tensor, int]:
    model = nn.GRU(64, 128)
    return model, torch.randn(50, 8, 64), 2 * 400 * (3 * 128 * 64 + 3 * 128 * 128)


def bilinear() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], int]:
    """Bilinear(32, 48, 16), batch 64: N*O*I2*(I1 + 1) MACs (PyTorch's _trilinear order)."""
    return (nn.Bilinear(32, 48, 16), (torch.randn(64, 32), torch.randn(64, 48)),
            2 * 64 * 16 * 48 * 33)


def conv_same() -> tuple[nn.Module, torch.Tensor, int]:
    model = nn.Sequential(nn.Conv2d(3, 16, 5, padding="same"), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding="same"))
    return (model, torch.randn(4, 3, 32, 32),
            2 * 4 * 32 * 32 * (16 * 3 * 25 + 16 * 16 * 9))


def _args(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _time_ms(fn: Callable[[], int]) -> tuple[int, float]:
    value = fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return value, min(times)


def fvcore_raw(model: nn.Module, x: Any) -> int:
    from fvcore.nn import FlopCountAnalysis

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fca = FlopCountAnalysis(model, _args(x))
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return int(fca.total())


def flop_counter_mode(model: nn.Module, x: Any) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*_args(x))
    return int(counter.get_total_flops())


def effplan_total(model: nn.Module, x: Any, engine: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_flops(model, x, engine=engine).total


def main() -> pd.DataFrame:
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    torch.manual_seed(0)
    cases = {
        "MLP 784-512-256-10, b=64": mlp(),
        "CNN (grouped+depthwise), b=16": cnn(),
        "TransformerEncoder 4x256, L=128, eval": encoder(128),
        "TransformerEncoder 4x256, L=512, eval": encoder(512),
        "TransformerEncoder 4x256, L=128, train": encoder(128, train=True),
        "LSTM 2x128 bidirectional, b=8, T=50": lstm(),
        "GRU 128, b=8, T=50": gru(),
        "Bilinear(32, 48, 16), b=64": bilinear(),
        "Conv2d padding='same', b=4": conv_same(),
    }
    rows = []
    for name, (model, x, analytic) in cases.items():
        fv, fv_ms = _time_ms(lambda: fvcore_raw(model, x))
        ef, ef_ms = _time_ms(lambda: effplan_total(model, x, "auto"))
        efd, efd_ms = _time_ms(lambda: effplan_total(model, x, "dispatch"))
        fcm, fcm_ms = _time_ms(lambda: flop_counter_mode(model, x))
        rows.append({
            "model": name,
            "analytic": analytic,
            "fvcore_raw_x2": 2 * fv,
            "effplan(auto)": ef,
            "effplan(dispatch)": efd,
            "FlopCounterMode": fcm,
            "fvcore_ms": fv_ms,
            "effplan_ms": ef_ms,
            "effplan_dispatch_ms": efd_ms,
            "FlopCounterMode_ms": fcm_ms,
        })
    df = pd.DataFrame(rows)
    gflop_cols = ["analytic", "fvcore_raw_x2", "effplan(auto)", "effplan(dispatch)",
                  "FlopCounterMode"]
    shown = df.copy()
    for col in gflop_cols:
        shown[col] = (df[col] / 1e9).map(lambda v: f"{v:.4f}")
    for col in [c for c in df.columns if c.endswith("_ms")]:
        shown[col] = df[col].map(lambda v: f"{v:.1f}")
    shown = shown.rename(columns={c: f"{c} GFLOP" for c in gflop_cols})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; FLOPs = 2 x MACs "
          "(fvcore's raw count is per MAC and is shown x2); times: fastest of "
          f"{REPEATS} after a warm-up, ms")
    print(shown.to_string(index=False))
    exact = df["effplan(auto)"].eq(df["analytic"]) & df["effplan(dispatch)"].eq(
        df["analytic"])
    print(f"effplan == analytic on {int(exact.sum())}/{len(df)} models")
    ratios = pd.DataFrame({
        "model": df["model"],
        "fvcore / analytic": (df["fvcore_raw_x2"] / df["analytic"]).map(lambda v: f"{v:.3f}"),
        "FlopCounterMode / analytic": (df["FlopCounterMode"] / df["analytic"]).map(lambda v: f"{v:.3f}"),
        "effplan time / fvcore time": (df["effplan_ms"] / df["fvcore_ms"]).map(lambda v: f"{v:.2f}x"),
    })
    print("\nshare of the analytic count each alternative reports, and effplan's extra time:")
    print(ratios.to_string(index=False))
    return df


if __name__ == "__main__":
    main()
