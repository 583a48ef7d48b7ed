"""The KV cache a sequence holds when some layers attend over a sliding window (numpy only).

``context_tokens`` / ``kv_window_tokens`` / ``kv_window_layer_share`` come from the model's config
(:func:`effplan.models.architecture.context_facts`); the memory check of generation plans caps the
windowed share of the layers at the window.
"""

from __future__ import annotations

from typing import Any

__all__ = ["kv_tokens_held"]


def kv_tokens_held(tokens: Any, window: Any, share: Any) -> Any:
    """Tokens' worth of KV cache one sequence of ``tokens`` holds (numpy-broadcast):
    ``tokens - share x max(0, tokens - window)``; ``tokens`` where the window is unknown (NaN)."""
    import numpy as np

    L = np.asarray(tokens, dtype=float)
    W = np.asarray(window, dtype=float)
    S = np.asarray(share, dtype=float)
    capped = L - np.where(np.isfinite(S), S, 1.0) * np.maximum(0.0, L - W)
    return np.where(np.isfinite(W) & (W > 0), capped, L)
