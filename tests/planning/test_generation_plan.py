"""Generation planning by hand: entered rows (as a team would type them from a vLLM benchmark on
its own GPUs), a case where the KV-cache memory binds and one where TPOT binds -- instances, cost,
energy and CO2 per month computed here with the documented formulas written out -- plus
infeasible cases, projection to catalog GPUs, Monte Carlo and the validation of the inputs."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest

import effplan
from effplan.errors import PlanWarning, ValidationError
from effplan.planning import GenerationUncertainty, GenerationWorkload, Prices

KV = 131072.0          # bytes per token of context per sequence
PARAMS = 16e9          # bytes of weights
E_PROMPT, E_OUT, IDLE_W = 0.002, 0.5, 30.0
#  c: (ttft_p50, ttft_p95, tpot_p50, tpot_p95) at prompt length 1024, on an L4 (24 GB)
FIG = {8: (200, 250, 20, 25), 16: (400, 500, 25, 30), 32: (800, 1000, 35, 40), 64: (1600, 1900, 60, 70)}


def _rows(hardware: str = "L4") -> pd.DataFrame:
    rows = [{"candidate": "llm-8b", "hardware": hardware, "mode": "generation", "batch_size": c,
             "prompt_tokens": 1024, "ttft_p50_ms": t50, "ttft_p95_ms": t95, "tpot_p50_ms": d50,
             "tpot_p95_ms": d95, "kv_cache_bytes_per_token": KV, "param_bytes": PARAMS,
             "energy_per_prompt_token_j": E_PROMPT, "energy_per_output_token_j": E_OUT, "idle_power_w": IDLE_W}
            for c, (t50, t95, d50, d95) in FIG.items()]
    # a shorter prompt length, fast at high concurrency: must NOT be used for a 1000-token prompt
    rows.append({**rows[-1], "prompt_tokens": 512, "ttft_p95_ms": 10, "tpot_p95_ms": 1, "ttft_p50_ms": 5,
                 "tpot_p50_ms": 1, "batch_size": 128})
    return pd.DataFrame(rows)


PRICES = Prices(price_per_hour={"L4": 1.0}, pue=1.0, grid_gco2_per_kwh=400)


def _workload(**kw) -> GenerationWorkload:
    base = dict(requests_per_day=1_000_000, prompt_tokens=1000, output_tokens=200, slo_ttft_p95_ms=2000,
                slo_tpot_p95_ms=100, monthly_growth=0.1, peak_to_average=2.0, target_utilization=0.5,
                min_replicas=1, months=3, hours_per_month=730)
    base.update(kw)
    return GenerationWorkload(**base)


def _interp(c: int, lo: int, hi: int, k: int) -> float:
    """Figure k of FIG at concurrency lo < c < hi, log-log between the measured neighbours
    (the rule of effplan.batching, written out): log y = log y_lo + x (log y_hi - log y_lo)."""
    x = math.log(c / lo) / math.log(hi / lo)
    return FIG[lo][k] * (FIG[hi][k] / FIG[lo][k]) ** x


def _hand(c: int, months: int = 3, t50: float | None = None, d50: float | None = None) -> dict[str, list[float]]:
    """The documented baseline, written out for the entered row at concurrency c (or for the
    interpolated figures t50 / d50 at a concurrency between measured ones)."""
    if t50 is None:
        t50, _, d50, _ = FIG[c]
    rate = c / ((t50 + 200 * d50) / 1000)                       # requests/s per instance
    out = {"instances": [], "cost": [], "energy": [], "co2": []}
    for m in range(months):
        daily = 1_000_000 * 1.1 ** m
        peak = daily / 86400 * 2.0
        inst = max(1, math.ceil(peak / (rate * 0.5)))
        requests = daily * 730 / 24
        epr = 1000 * E_PROMPT + 200 * E_OUT                     # 102 J per response
        idle_s = inst * 730 * 3600 - requests / rate
        kwh = (requests * epr + IDLE_W * idle_s) / 3.6e6 * 1.0
        out["instances"].append(inst)
        out["cost"].append(inst * 730 * 1.0)
        out["energy"].append(kwh)
        out["co2"].append(kwh * 400 / 1000)
    return out


def test_memory_binds_hand_computed():
    # memory: 16e9 + c * 1200 * 131072 <= 0.9 * 24 GiB (the L4's "24 GB" are GiB: 23.19e9 bytes)
    # -> c <= 45.7: the interpolated c = 42 (grid 32 x 2^(j/5): 36, 42, 48, 55) fits, 48 does not;
    # the SLOs hold at every c (the slot wait at 50% utilization of 42 slots is 0), so memory binds
    p = effplan.plan(_rows(), generation=_workload(), prices=PRICES)
    mo = p.monthly
    assert set(mo["concurrency"]) == {42.0}
    assert set(mo["binding_constraint"]) == {"memory"} and mo["feasible"].all()
    assert set(mo["prompt_tokens_measured"]) == {1024.0}
    h = _hand(42, t50=_interp(42, 32, 64, 0), d50=_interp(42, 32, 64, 2))
    assert h["instances"] == [11, 12, 13]                       # ceil(10.69), ceil(11.76), ceil(12.94)
    assert mo["instances"].tolist() == h["instances"]
    assert mo["cost_usd"].tolist() == pytest.approx([8030.0, 8760.0, 9490.0])
    assert mo["energy_kwh"].tolist() == pytest.approx(h["energy"], rel=1e-12)
    assert mo["co2_kg"].tolist() == pytest.approx(h["co2"], rel=1e-12)
    assert mo["memory_needed_gb"].iloc[0] == pytest.approx((16e9 + 42 * 1200 * KV) / 1e9)
    assert mo["memory_limit_gb"].iloc[0] == pytest.approx(0.9 * 24 * 2**30 / 1e9)
    assert p.summary["memory_limit_gib"].iloc[0] == pytest.approx(21.6)
    # cost per 1M output tokens and energy per response
    assert mo["cost_per_1m_output_tokens_usd"].iloc[0] == pytest.approx(8030 / (1e6 * 730 / 24 * 200) * 1e6)
    assert mo["energy_per_response_wh"].iloc[0] == pytest.approx(102 / 3600)
    # quarterly: one quarter = the three months
    q = p.quarterly.iloc[0]
    assert q["cost_usd"] == pytest.approx(8030 + 8760 + 9490) and q["instances"] == 13
    assert q["energy_kwh"] == pytest.approx(sum(h["energy"])) and q["co2_kg"] == pytest.approx(sum(h["co2"]))
    s = p.summary.iloc[0]
    assert s["provenance"] == "entered" and s["concurrency"] == 42 and s["memory_check"] == "checked"
    assert s["slot_wait_p95_ms"] == 0.0 and s["ttft_e2e_p95_ms"] == pytest.approx(_interp(42, 32, 64, 1))


def test_tpot_binds_hand_computed():
    # TPOT p95 <= 32 ms: c = 16 (30 ms) holds, c = 32 (40 ms) does not. Between them the
    # concurrencies 18, 21, 24, 28 are interpolated log-log (effplan.batching's grid: geometric
    # points 16 x 2^(j/5)): at 18, x = log2(18/16), TPOT p95 = 30 x (40/30)^x = 31.50 ms <= 32; at 21
    # it is 33.58 ms > 32 -> c = 18 (interpolated, neighbours 16-32), TPOT binds.
    # (Before interpolation this test chose the measured c = 16: instances 16, 18, 19.)
    p = effplan.plan(_rows(), generation=_workload(slo_tpot_p95_ms=32), prices=PRICES)
    mo = p.monthly
    assert set(mo["concurrency"]) == {18.0} and set(mo["binding_constraint"]) == {"tpot"}
    assert set(mo["concurrency_source"]) == {"interpolated"} and set(mo["concurrency_neighbours"]) == {"16-32"}
    assert _interp(18, 16, 32, 3) == pytest.approx(31.5029678, rel=1e-8)
    assert _interp(21, 16, 32, 3) == pytest.approx(33.5843462, rel=1e-8)
    assert mo["tpot_p95_ms"].iloc[0] == pytest.approx(_interp(18, 16, 32, 3))
    assert mo["ttft_p95_ms"].iloc[0] == pytest.approx(562.5)     # 500 x 18/16 (TTFT doubles with c)
    t50 = _interp(18, 16, 32, 0)                                 # 400 x 18/16 = 450 ms
    d50 = _interp(18, 16, 32, 2)                                 # 25 x 1.4^x = 26.471 ms
    assert t50 == pytest.approx(450.0) and d50 == pytest.approx(26.4710285, rel=1e-8)
    h = _hand(18, t50=t50, d50=d50)
    assert h["instances"] == [15, 17, 18]                       # ceil(14.77), ceil(16.25), ceil(17.88)
    assert mo["instances"].tolist() == h["instances"]
    assert mo["cost_usd"].tolist() == pytest.approx([10950.0, 12410.0, 13140.0])
    assert mo["energy_kwh"].tolist() == pytest.approx(h["energy"], rel=1e-12)
    assert mo["co2_kg"].tolist() == pytest.approx(h["co2"], rel=1e-12)
    assert mo["requests_per_s_per_instance"].iloc[0] == pytest.approx(18 / ((450 + 200 * d50) / 1000))
    assert p.summary["concurrency_note"].iloc[0] == ""


def test_measured_point_keeps_the_documented_baseline():
    # with a TPOT target the measured c = 16 meets and the first interpolated point (18) misses,
    # the measured figures are used unchanged: 31 ms sits between 30 (c = 16) and 31.50 (c = 18)
    p = effplan.plan(_rows(), generation=_workload(slo_tpot_p95_ms=31), prices=PRICES)
    mo = p.monthly
    assert set(mo["concurrency"]) == {16.0} and set(mo["concurrency_source"]) == {"measured"}
    assert set(mo["binding_constraint"]) == {"tpot"} and set(mo["concurrency_neighbours"]) == {""}
    h = _hand(16)
    assert h["instances"] == [16, 18, 19]                       # ceil(15.63), ceil(17.19), ceil(18.91)
    assert mo["instances"].tolist() == h["instances"]
    assert mo["cost_usd"].tolist() == pytest.approx([11680.0, 13140.0, 13870.0])
    assert mo["energy_kwh"].tolist() == pytest.approx(h["energy"], rel=1e-12)
    assert mo["requests_per_s_per_instance"].iloc[0] == pytest.approx(16 / 5.4)


def test_ttft_binds_and_largest_measured():
    # TTFT p95 <= 600 ms: interpolated 500 x c/16 -> 562.5 at c = 18 holds, 656.25 at c = 21 does not
    # (before interpolation: the measured c = 16)
    p = effplan.plan(_rows(), generation=_workload(slo_ttft_p95_ms=600), prices=PRICES)
    assert p.summary["concurrency"].iloc[0] == 18 and p.summary["binding_constraint"].iloc[0] == "ttft"
    assert p.summary["concurrency_source"].iloc[0] == "interpolated"
    assert p.summary["ttft_p95_ms"].iloc[0] == pytest.approx(562.5)
    # on an 80 GB H100 with loose targets nothing binds up to the largest measured concurrency,
    # and nothing past it is claimed (never extrapolated): the note says what to measure
    prices = Prices(price_per_hour={"H100 SXM": 2.0})
    p = effplan.plan(_rows("H100 SXM"), generation=_workload(), prices=prices)
    s = p.summary.iloc[0]
    assert s["concurrency"] == 64 and s["binding_constraint"] == "max-measured"
    assert s["concurrency_source"] == "measured"
    assert "measure concurrency 128 to go further" in s["concurrency_note"]


def test_infeasible_is_flagged_not_zero():
    p = effplan.plan(_rows(), generation=_workload(slo_ttft_p95_ms=100), prices=PRICES)
    s = p.summary.iloc[0]
    assert not s["feasible"] and s["binding_constraint"] == "ttft" and "violates ttft" in s["infeasible_reason"]
    assert p.monthly["cost_usd"].isna().all() and p.monthly["energy_kwh"].isna().all()
    p = effplan.plan(_rows(), generation=_workload(prompt_tokens=2000), prices=PRICES)
    s = p.summary.iloc[0]
    assert not s["feasible"] and "no measured prompt length >= 2000" in s["infeasible_reason"]
    assert math.isnan(s["cost_usd"])


def test_projection_decode_is_memory_bound():
    """Entered A100 rows projected to an H100: with FLOPs known but tiny, both phases are
    memory-bound, so times scale by the bandwidth ratio (calibrated on the A100)."""
    cat = effplan.load_catalog().set_index("name")
    rows = _rows("A100 80GB").assign(flops_per_prompt_token=1.0, flops_per_output_token=1.0,
                                     output_tokens=200, dtype="float16")
    p = effplan.plan(rows, generation=_workload(), hardware=["H100 SXM"],
                     prices=Prices(price_per_hour={"A100 80GB": 1.0, "H100 SXM": 2.0}))
    s = p.summary.set_index("hardware")
    assert s.loc["H100 SXM", "provenance"] == "projected" and s.loc["H100 SXM", "projected_from"] == "A100 80GB"
    # no operator counts in entered rows: no launch floor, and the label says so (never silent)
    assert s.loc["H100 SXM", "efficiency_source"] == (
        "calibrated on A100 80GB; no launch floor: operator calls unknown (operator_calls_prefill / "
        "operator_calls_decode not recorded), so this projection is optimistic")
    ratio = cat.at["A100 80GB", "memory_bandwidth_gb_s"] / cat.at["H100 SXM", "memory_bandwidth_gb_s"]
    c = s.loc["H100 SXM", "concurrency"]
    assert s.loc["H100 SXM", "tpot_p95_ms"] == pytest.approx(FIG[int(c)][3] * ratio)
    rated = cat.at["H100 SXM", "rated_power_w"]
    # projected energy per response = rated power x projected time
    t_pre = FIG[int(c)][0] * ratio / 1000
    t_dec = FIG[int(c)][2] * ratio / 1000
    e = 1000 * rated * t_pre / (c * 1024) + 200 * rated * t_dec / c
    assert s.loc["H100 SXM", "energy_per_response_wh"] == pytest.approx(e / 3600)


def test_unknown_memory_is_not_checked_and_says_so():
    with pytest.warns(PlanWarning, match="NOT checked"):
        p = effplan.plan(_rows("my laptop"), generation=_workload(),
                         prices=Prices(price_per_hour={"my laptop": 0.1}))
    s = p.summary.iloc[0]
    assert s["memory_check"].startswith("not checked") and s["binding_constraint"] == "max-measured"
    assert math.isnan(s["memory_limit_gb"])


def test_monte_carlo_brackets_the_baseline():
    wl = _workload()
    p = effplan.plan(_rows(), generation=wl, prices=PRICES, samples=300, seed=1)
    s = p.summary.iloc[0]
    assert s["cost_usd_p10"] <= s["cost_usd_p50"] <= s["cost_usd_p90"]
    assert s["energy_kwh_p10"] < s["energy_kwh_p90"]
    # with every range closed, the samples equal the deterministic plan
    unc = GenerationUncertainty(traffic=None, price=None, prompt_tokens=None, output_tokens=None)
    p0 = effplan.plan(_rows(), generation=wl, prices=PRICES, samples=20, uncertainty=unc)
    m = p0.monthly
    assert m["cost_usd_p50"].tolist() == pytest.approx(m["cost_usd"].tolist())
    assert m["energy_kwh_p90"].tolist() == pytest.approx(m["energy_kwh"].tolist())
    # longer responses only (output x 1.5): energy per month rises
    unc = GenerationUncertainty(traffic=None, price=None, prompt_tokens=None, output_tokens=(1.0, 1.5))
    p1 = effplan.plan(_rows(), generation=wl, prices=PRICES, samples=50, uncertainty=unc)
    assert (p1.monthly["energy_kwh_p90"] > p1.monthly["energy_kwh"]).all()


def test_workload_validation():
    with pytest.raises(ValidationError, match="prompt_tokens"):
        _workload(prompt_tokens=0)
    with pytest.raises(ValidationError, match="memory_fraction"):
        _workload(memory_fraction=1.5)
    with pytest.raises(ValidationError, match="slo_tpot_p95_ms"):
        _workload(slo_tpot_p95_ms=-1)
    with pytest.raises(ValidationError, match="output_tokens"):
        GenerationUncertainty(output_tokens=(1.2, 2.0))
    assert GenerationWorkload.from_dict(_workload().to_dict()) == _workload()
    inference_rows = pd.DataFrame([{"candidate": "a", "hardware": "L4", "mode": "inference", "batch_size": 1,
                                    "latency_p95_ms": 1, "throughput_items_per_s": 1, "energy_per_item_j": 1,
                                    "idle_power_w": 1}])
    with pytest.raises(ValidationError, match="generation"):
        effplan.plan(inference_rows, generation=_workload())


def test_quality_metrics_join_a_generation_plan():
    p = effplan.plan(_rows(), generation=_workload(), prices=PRICES, quality={"llm-8b": {"accuracy": 0.9}})
    assert p.summary["accuracy"].tolist() == [0.9] and set(p.monthly["accuracy"]) == {0.9}
    assert p.inputs["quality"][0]["candidate"] == "llm-8b"


def _tiny(hardware: str, **kw) -> pd.DataFrame:
    """A tiny decoder: 2 MB of weights, 1 KiB of KV cache per token, 60 operator calls per prefill
    and per decode step -- launching kernels, not FLOPs or bytes, is what takes time on a GPU."""
    row = {"candidate": "tiny", "hardware": hardware, "mode": "generation", "batch_size": 1,
           "prompt_tokens": 128, "output_tokens": 64, "ttft_p50_ms": 4.0, "ttft_p95_ms": 4.4,
           "tpot_p50_ms": 3.0, "tpot_p95_ms": 3.3, "kv_cache_bytes_per_token": 1024.0, "param_bytes": 2e6,
           "flops_per_prompt_token": 4e6, "flops_per_output_token": 4e6, "dtype": "float16",
           "operator_calls_prefill": 60, "operator_calls_decode": 60,
           "energy_per_prompt_token_j": 0.01, "energy_per_output_token_j": 0.1, "idle_power_w": 5.0}
    row.update(kw)
    return pd.DataFrame([row])


def _tiny_plan(rows: pd.DataFrame, src: str) -> pd.Series:
    wl = _workload(requests_per_day=1000, prompt_tokens=128, output_tokens=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)   # "my laptop": memory not in the catalog
        p = effplan.plan(rows, generation=wl, hardware=["H100 SXM"],
                         prices=Prices(price_per_hour={src: 0.1, "H100 SXM": 2.0}))
    return p.summary.set_index("hardware").loc["H100 SXM"]


def test_projected_tpot_hits_the_launch_floor():
    """A tiny model measured on a laptop (not in the catalog: efficiency assumed) projected to an
    H100: the roofline says microseconds, the launch floor says 60 calls x 2.5 us (cpu) = 150 us on
    the source, scaled to 20 us per call on the GPU = 1.2 ms."""
    cat = effplan.load_catalog().set_index("name")
    ovh = effplan.reference.overhead_per_operator_s("gpu")[0]
    assert ovh == pytest.approx(20e-6)                           # cuda row of kernel_overhead.csv
    bw = cat.at["H100 SXM", "memory_bandwidth_gb_s"] * 1e9       # 3.35e12 B/s
    peak = cat.at["H100 SXM", "peak_fp16_flops"]                 # 9.894e14 FLOP/s
    eff = effplan.planning.inputs.ASSUMED_EFFICIENCY             # 0.4
    s = _tiny_plan(_tiny("my laptop"), "my laptop")
    # decode step, context 128 + 64/2 = 160: max(4e6 / peak, (2e6 + 160 x 1024) / bw) = 6.459e-7 s
    mem_dec = (2e6 + 160 * 1024) / bw
    assert mem_dec > 4e6 / peak
    tpot = mem_dec / eff + 60 * ovh                              # 1.6e-6 + 1.2e-3 s
    assert tpot * 1e3 == pytest.approx(1.2016149, rel=1e-6)
    assert s["tpot_p95_ms"] == pytest.approx(tpot * 1e3 * 3.3 / 3.0)   # measured p95/p50 ratio kept
    # prefill: max(128 x 4e6 / peak, (2e6 + 128 x 1024) / bw) = max(5.175e-7, 6.361e-7) s, at the
    # assumed 0.4 capped by the best published MLPerf share of the H100's peak (0.367)
    share = effplan.reference.published_peak_share(cat.loc[["H100 SXM"], "peak_int8_ops"].astype(float))
    share = float(share.at["H100 SXM", "peak_share"])
    assert share == pytest.approx(0.367, abs=5e-4)
    ttft = max(128 * 4e6 / peak, (2e6 + 128 * 1024) / bw) / min(eff, share) + 60 * ovh
    assert "prefill capped at 0.367" in s["efficiency_source"]
    assert s["ttft_p95_ms"] == pytest.approx(ttft * 1e3 * 4.4 / 4.0)
    assert s["tpot_p95_ms"] >= 60 * ovh * 1e3                     # never below the floor
    assert "launch floor calibrated on the source" in s["efficiency_source"] and "20 us per call" in s["efficiency_source"]
    assert s["efficiency_source"].startswith("assumed 0.4")


def test_launch_floor_with_local_calibration():
    """Measured on an A100 (in the catalog): the local launch share (60 x 20 us = 1.2 ms, under
    half of the 3 ms TPOT) is taken off before calibrating; the target adds its own floor back:
    TPOT(H100) = 60 x 20 us + (3 ms - 1.2 ms) x bw(A100) / bw(H100) (memory-bound both sides)."""
    cat = effplan.load_catalog().set_index("name")
    ratio = cat.at["A100 80GB", "memory_bandwidth_gb_s"] / cat.at["H100 SXM", "memory_bandwidth_gb_s"]
    s = _tiny_plan(_tiny("A100 80GB"), "A100 80GB")
    tpot_ms = 60 * 0.02 + (3.0 - 1.2) * ratio
    assert s["tpot_p95_ms"] == pytest.approx(tpot_ms * 3.3 / 3.0)
    assert s["efficiency_source"].startswith("calibrated on A100 80GB")
    # without the operator counts the same row is projected with no floor, and says so
    s0 = _tiny_plan(_tiny("A100 80GB", operator_calls_prefill=float("nan"),
                          operator_calls_decode=float("nan")), "A100 80GB")
    assert s0["tpot_p95_ms"] == pytest.approx(3.0 * ratio * 3.3 / 3.0)
    assert "no launch floor: operator calls unknown" in s0["efficiency_source"]


def test_no_concurrency_beyond_the_largest_measured():
    # only c = 8 and 16 measured, targets that a larger c would meet: c = 16 and nothing past it
    rows = _rows()
    rows = rows[rows["batch_size"].isin([8, 16])]
    p = effplan.plan(rows, generation=_workload(), prices=PRICES)
    s = p.summary.iloc[0]
    assert s["concurrency"] == 16 and s["binding_constraint"] == "max-measured"
    assert s["concurrency_source"] == "measured"
    assert s["concurrency_note"] == ("the largest measured concurrency (16) was chosen: measure "
                                     "concurrency 32 to go further (never extrapolated)")


def test_dynamic_int8_is_never_projected_to_a_gpu():
    """Dynamic int8 (qint8) has CPU kernels only: a GPU option is infeasible with the reason,
    never a projected figure (the CPU option it was measured on still plans)."""
    rows = _rows("AWS c7i.4xlarge").assign(flops_per_prompt_token=1.0, flops_per_output_token=1.0,
                                           output_tokens=200, dtype="qint8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlanWarning)
        p = effplan.plan(rows, generation=_workload(), hardware=["H100 SXM"],
                         prices=Prices(price_per_hour={"AWS c7i.4xlarge": 1.0, "H100 SXM": 2.0}))
    s = p.summary.set_index("hardware")
    assert not s.loc["H100 SXM", "feasible"] and math.isnan(s.loc["H100 SXM", "cost_usd"])
    assert s.loc["H100 SXM", "infeasible_reason"].startswith("infeasible on H100 SXM: qint8 cannot run on a gpu")
    assert s.loc["AWS c7i.4xlarge", "feasible"]
