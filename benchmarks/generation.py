"""TTFT and TPOT measured by effplan against a plain timing loop over the same model, in one run.

Run: ``.venv/bin/python benchmarks/generation.py [--threads 1] [--concurrency 1,8]
[--prompt-tokens 64,256] [--output-tokens 32] [--rounds 3] [--train-steps 200] [--device cuda]``

For the built-in ``decoder-base`` and ``decoder-slim`` (:mod:`effplan.decoders`) x concurrency x
prompt length, on the same model object, prompt and thread count, under ``torch.inference_mode``:

* effplan: :func:`effplan.generation.measure_generation` (default :class:`TimingPolicy`, energy off):
  ``ttft_p50_ms`` and ``tpot_p50_ms``;
* plain: ``time.perf_counter`` around each call: 3 warm-up prefills, then 30 timed prefills
  (median = TTFT); then, from a fresh prefill, ``output_tokens`` decode steps timed one by one
  (greedy), repeated until 300 steps are timed (median = TPOT).

The two are interleaved ``--rounds`` times and the medians of the rounds are compared (so slow
drift of a shared machine affects both alike). Printed: each ratio effplan/plain, the median
ratio, and whether every ratio is within 10%. No figure is asserted (a loaded machine can move
either side); the script exits non-zero only when a measurement fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from effplan import decoders  # noqa: E402
from effplan.errors import EffplanWarning  # noqa: E402
from effplan.generation import measure_generation  # noqa: E402

TOLERANCE = 0.10


def _plain(model, ids, n_out, prefills=30, steps=300):
    sync = torch.cuda.synchronize if ids.is_cuda else (lambda: None)  # the clock waits for the GPU
    with torch.inference_mode():
        for _ in range(3):
            model.prefill(ids)
        pre = []
        for _ in range(prefills):
            sync()
            t0 = time.perf_counter()
            cache = model.prefill(ids)
            sync()
            pre.append(time.perf_counter() - t0)
        dec = []
        while len(dec) < steps:
            cache = model.prefill(ids)
            tok = ids[:, -1:]
            for _ in range(n_out):
                sync()
                t0 = time.perf_counter()
                logits, cache = model.step(tok, cache)
                tok = logits.argmax(dim=-1, keepdim=True)
                sync()
                dec.append(time.perf_counter() - t0)
    return statistics.median(pre) * 1e3, statistics.median(dec) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--concurrency", default="1,8")
    ap.add_argument("--prompt-tokens", default="64,256")
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=decoders.BASE_CONFIG.train_steps)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (CUDA timing synchronises)")
    args = ap.parse_args(argv)
    conc = [int(c) for c in args.concurrency.split(",")]
    prompts = [int(p) for p in args.prompt_tokens.split(",")]
    cfg = decoders.DecoderConfig(train_steps=args.train_steps)
    cands = [c for c in decoders.decoder_candidates(config=cfg) if c.name in ("decoder-base", "decoder-slim")]
    prev = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    rows = []
    try:
        for cand in cands:
            model = cand.build(args.device)
            same = type(cand)(cand.name, lambda m=model: m, vocab_size=cand.vocab_size)
            for c in conc:
                for p in prompts:
                    ids = torch.randint(0, cand.vocab_size, (c, p), generator=torch.Generator().manual_seed(0)).to(args.device)
                    ours, plain = [], []
                    for _ in range(args.rounds):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", EffplanWarning)
                            m = measure_generation(same, batch_sizes=c, prompt_tokens=p,
                                                   output_tokens=args.output_tokens, device=args.device,
                                                   energy=False, progress=False, raise_errors=True)
                        r = m.to_frame().iloc[0]
                        ours.append((r["ttft_p50_ms"], r["tpot_p50_ms"]))
                        plain.append(_plain(model, ids, args.output_tokens))
                    e_ttft = statistics.median(o[0] for o in ours)
                    e_tpot = statistics.median(o[1] for o in ours)
                    p_ttft = statistics.median(q[0] for q in plain)
                    p_tpot = statistics.median(q[1] for q in plain)
                    rows.append((cand.name, c, p, e_ttft, p_ttft, e_ttft / p_ttft, e_tpot, p_tpot, e_tpot / p_tpot))
    finally:
        torch.set_num_threads(prev)
    print(f"{'candidate':16} {'conc':>4} {'prompt':>6} {'TTFT eff ms':>11} {'plain ms':>9} {'ratio':>6} "
          f"{'TPOT eff ms':>11} {'plain ms':>9} {'ratio':>6}")
    for name, c, p, et, pt, rt, ed, pd_, rd in rows:
        print(f"{name:16} {c:>4} {p:>6} {et:>11.3f} {pt:>9.3f} {rt:>6.3f} {ed:>11.3f} {pd_:>9.3f} {rd:>6.3f}")
    ttft = [r[5] for r in rows]
    tpot = [r[8] for r in rows]
    within = all(abs(x - 1) <= TOLERANCE for x in ttft + tpot)
    print(f"\nTTFT ratio effplan/plain: median {statistics.median(ttft):.3f}x "
          f"(min {min(ttft):.3f}, max {max(ttft):.3f})")
    print(f"TPOT ratio effplan/plain: median {statistics.median(tpot):.3f}x "
          f"(min {min(tpot):.3f}, max {max(tpot):.3f})")
    print(f"every ratio within {TOLERANCE:.0%}: {'yes' if within else 'NO'} "
          f"({args.device}, {args.threads} thread(s), {args.rounds} round(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
