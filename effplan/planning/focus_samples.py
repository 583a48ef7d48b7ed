"""Generated FOCUS billing exports for tests, the benchmark and notebook 06 -- from the FOCUS 1.0
column definitions, seeded and deterministic, never hand-edited numbers.

``sample_plan()`` plans two built-in-style candidates on two machines from hand-entered
measurement rows (``provenance="entered"``); ``focus_export(plan)`` writes the bill a fleet
running three of its options would get, and says in each row's ``ChargeDescription`` what it is:

* ``digits-mlp@L4`` runs **over plan in hours**: ``ceil(1.25 x planned instances)`` instances,
  at the plan's price;
* ``digits-mlp-student@L4`` runs as planned at a **discounted rate** (a negotiated 28% discount:
  BilledCost = EffectiveCost = 0.72 x ListCost), with a promotional **Credit** and a compute row
  in **GB-Hours** (model-cache memory: cost, no instance-hours);
* ``digits-mlp-student@AWS c7i.4xlarge`` runs as planned under a **reserved instance**: one
  all-upfront **Purchase** row (BilledCost = a year of hours x 60% of list, EffectiveCost 0) and
  usage rows with BilledCost 0 and EffectiveCost the amortised hourly fee. Its rows are billed
  from a European account in **EUR** (their own file, ``focus_eur``), at ``usd_per_eur``;
* **untagged compute**: two on-demand instances with no ``effplan-option`` tag;
* **storage**: a tagged 200 GB volume per L4 option, in GB-Hours (ServiceCategory Storage);
* **Tax**: 8% of each USD option's usage each month, tagged (EffectiveCost from EffectiveCost);
* one tagged usage row in **the month before the start**.

Hourly rows by default (``granularity="hour"``: one row per instance per hour); ``"day"`` writes
one row per instance per day (24 hours), the shipped sample's form. ``fleet`` multiplies every
instance count (the benchmark's million rows). Run ``python -m effplan.focus_samples --out DIR``
(or ``benchmarks/make_focus_samples.py``) to write a plan folder and the CSV files.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SAMPLE_START", "USD_PER_EUR", "sample_measurements", "sample_plan", "focus_export",
           "write_sample", "SAMPLE_DIR", "sample_paths", "SCENARIO", "inputs_or_sample"]

#: the month the sample plan starts in
SAMPLE_START = "2026-10"
#: the exchange rate the EUR file is written at (US dollars per euro): an input of the sample,
#: entered, not a market quote
USD_PER_EUR = 1.08
#: the option tags of the scenario (see the module docstring)
SCENARIO = {"over": "digits-mlp@L4", "discount": "digits-mlp-student@L4",
            "reserved": "digits-mlp-student@AWS c7i.4xlarge"}
OVER_FACTOR = 1.25
DISCOUNT = 0.28
RI_SHARE = 0.60
TAX_RATE = 0.08
CREDIT_USD = -40.0
#: the shipped sample (package data): a plan folder and two FOCUS CSV files
SAMPLE_DIR = "actuals_sample"

_SKU = {"L4": ("g6.xlarge", "NVIDIA L4"), "AWS c7i.4xlarge": ("c7i.4xlarge", "Intel Xeon 8488C")}


def sample_measurements() -> pd.DataFrame:
    """Hand-entered measurement rows: ``digits-mlp`` (tagged baseline) and its distilled
    ``digits-mlp-student`` on an L4 and on an AWS c7i.4xlarge, three batch sizes each."""
    rows = []
    for cand, tags, scale in (("digits-mlp", "baseline", 1.0), ("digits-mlp-student", "", 2.6)):
        for hw, base in (("L4", 9000.0), ("AWS c7i.4xlarge", 4000.0)):
            for b, lat, tp in ((1, 0.4, 0.25), (8, 1.2, 0.7), (32, 3.5, 1.0)):
                rows.append(dict(candidate=cand, hardware=hw, mode="inference", batch_size=b,
                                 latency_p95_ms=lat / scale ** 0.5,
                                 throughput_items_per_s=base * tp * scale, energy_per_item_j=0.05,
                                 idle_power_w=30.0, provenance="entered", energy_source="entered",
                                 tags=tags, quality=0.97 if cand == "digits-mlp" else 0.96))
    return pd.DataFrame(rows)


def sample_plan(start: str = SAMPLE_START, months: int = 12, samples: int = 0) -> Any:
    """The plan the sample bill is compared with: 2 candidates x 2 machines, 12,000 requests/s
    growing 3%/month, peak 2x, prices of the shipped catalog (L4 $0.80/h, c7i.4xlarge $0.714/h)
    entered explicitly so the sample does not move with the catalog."""
    from . import InferenceWorkload, Prices, plan

    wl = InferenceWorkload(requests_per_day=12_000 * 86_400, monthly_growth=0.03, peak_to_average=2.0,
                           slo_p95_ms=50.0, target_utilization=0.6, months=months, start=start)
    pr = Prices(price_per_hour={"L4": 0.80, "AWS c7i.4xlarge": 0.714}, pue=1.2)
    return plan(sample_measurements(), inference=wl, prices=pr, samples=samples)


def _month_starts(start: str, n: int) -> np.ndarray:
    base = np.datetime64(f"{start}-01", "M")
    return (base + np.arange(n + 1)).astype("datetime64[s]")


def _iso(t: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t.astype("datetime64[s]"), unit="s"), "Z")


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"i-0{x:016x}" for x in rng.integers(0, 2 ** 63, size=n)], dtype=object)


def focus_export(plan: Any = None, *, months: int = 3, granularity: str = "hour", seed: int = 0,
                 fleet: int = 1, usd_per_eur: float = USD_PER_EUR) -> dict[str, pd.DataFrame]:
    """``{"focus_usd": frame, "focus_eur": frame}``: the bill of the scenario (module docstring)
    for the first ``months`` months of ``plan`` (default :func:`sample_plan`), FOCUS 1.0 columns."""
    if granularity not in ("hour", "day"):
        raise ValueError("granularity: 'hour' or 'day'")
    plan = sample_plan() if plan is None else plan
    start = plan.inputs["start"]
    rng = np.random.default_rng(seed)
    edges = _month_starts(start, months)
    step = np.timedelta64(1, "h") if granularity == "hour" else np.timedelta64(1, "D")
    per = 1.0 if granularity == "hour" else 24.0
    m = plan.monthly
    usd_parts: list[dict[str, Any]] = []
    eur_parts: list[dict[str, Any]] = []

    def block(option: str | None, hw: str, n_inst: int, month: int, rate: float, *,
              billed: float, effective: float, ids: np.ndarray, pricing: str = "Standard",
              commitment: str | None = None, desc: str = "") -> dict[str, Any]:
        t0, t1 = edges[month], edges[month + 1]
        starts = np.arange(t0, t1, step)
        k = len(starts)
        res = np.repeat(ids[:n_inst], k)
        st = np.tile(starts, n_inst)
        sku, name = _SKU.get(hw, (hw, hw))
        return dict(option=option, hw=hw, res=res, start=st, end=st + step, qty=np.full(len(st), per),
                    unit="Hours", list_rate=rate, billed=billed * per, effective=effective * per,
                    pricing=pricing, commitment=commitment, category="Usage", service="Compute",
                    service_name="Amazon Elastic Compute Cloud", sku=f"{sku}-{pricing[:4].lower()}",
                    desc=desc or f"${rate:.4g} per On Demand Linux {sku} ({name}) Instance Hour",
                    bp=(t0, t1))

    def planned(option: str) -> tuple[pd.DataFrame, float]:
        c, h = option.split("@", 1)
        rows = m[(m["candidate"] == c) & (m["hardware"] == h)].sort_values("month")
        return rows, float(rows["price_per_hour_usd"].iloc[0])

    ids = {k: _ids(rng, 64 * fleet) for k in ("over", "discount", "reserved", "untagged")}
    for key, option in SCENARIO.items():
        rows, rate = planned(option)
        hw = option.split("@", 1)[1]
        for mo in range(months):
            n = int(rows["instances"].iloc[mo]) * fleet
            if key == "over":
                n = math.ceil(OVER_FACTOR * int(rows["instances"].iloc[mo])) * fleet
                usd_parts.append(block(option, hw, n, mo, rate, billed=rate, effective=rate,
                                       ids=ids[key]))
            elif key == "discount":
                r = rate * (1 - DISCOUNT)
                usd_parts.append(block(option, hw, n, mo, rate, billed=r, effective=r, ids=ids[key],
                                       desc=f"${r:.4g} per Linux instance hour (negotiated "
                                            f"{DISCOUNT:.0%} discount off ${rate:.4g})"))
            else:
                r = rate * RI_SHARE
                eur_parts.append(block(option, hw, n, mo, rate, billed=0.0, effective=r,
                                       ids=ids[key], pricing="Committed", commitment="ri-effplan-1",
                                       desc="reserved instance hour (all upfront, amortised)"))
    # the reserved instance's purchase: a year of hours for the instances of month 0, upfront
    rows, rate = planned(SCENARIO["reserved"])
    n_ri = int(rows["instances"].iloc[0]) * fleet
    t0 = edges[0]
    year_end = (np.datetime64(start, "M") + 12).astype("datetime64[s]")
    eur_parts.append(dict(option=SCENARIO["reserved"], hw=SCENARIO["reserved"].split("@")[1],
                          res=np.array(["ri-effplan-1"], dtype=object), start=np.array([t0]),
                          end=np.array([year_end]), qty=np.array([np.nan]), unit=None,
                          list_rate=rate, billed=n_ri * 8760 * rate * RI_SHARE, effective=0.0,
                          pricing="Committed", commitment="ri-effplan-1", category="Purchase",
                          service="Compute", service_name="Amazon Elastic Compute Cloud",
                          sku="c7i.4xlarge-ri", desc=f"1-year all-upfront reserved instance x {n_ri}",
                          bp=(edges[0], edges[1]), frequency="One-Time"))
    # untagged compute: two on-demand c7i.4xlarge nobody tagged
    for mo in range(months):
        usd_parts.append(block(None, "AWS c7i.4xlarge", 2 * fleet, mo, 0.714, billed=0.714,
                               effective=0.714, ids=ids["untagged"]))
    # storage (GB-Hours, tagged) and a GB-Hours compute add-on
    for key in ("over", "discount"):
        option = SCENARIO[key]
        for mo in range(months):
            b = block(option, "L4", 1, mo, 0.08 / 730, billed=200 * 0.08 / 730,
                      effective=200 * 0.08 / 730, ids=np.array([f"vol-0{key}{mo}"], dtype=object),
                      desc="200 GB gp3 volume (GB-Hours)")
            b.update(qty=b["qty"] * 200, unit="GB-Hours", service="Storage",
                     service_name="Amazon Elastic Block Store", sku="gp3-storage")
            usd_parts.append(b)
    for mo in range(months):
        b = block(SCENARIO["discount"], "L4", 1, mo, 0.0002, billed=16 * 0.0002,
                  effective=16 * 0.0002, ids=np.array(["cache-01"], dtype=object),
                  desc="16 GB model cache memory (GB-Hours)")
        b.update(qty=b["qty"] * 16, unit="GB-Hours", service="AI and Machine Learning",
                 service_name="Amazon SageMaker", sku="cache-gb-hours")
        usd_parts.append(b)
    # one tagged usage hour in the month before the start
    before = np.datetime64(start, "M").astype("datetime64[s]") - np.timedelta64(1, "h")
    rows, rate = planned(SCENARIO["over"])
    usd_parts.append(dict(option=SCENARIO["over"], hw="L4", res=ids["over"][:1], start=np.array([before]),
                          end=np.array([before + np.timedelta64(1, "h")]), qty=np.array([1.0]),
                          unit="Hours", list_rate=rate, billed=rate, effective=rate,
                          pricing="Standard", commitment=None, category="Usage", service="Compute",
                          service_name="Amazon Elastic Compute Cloud", sku="g6.xlarge-stan",
                          desc="test launch before the plan's start",
                          bp=(before.astype("datetime64[M]").astype("datetime64[s]"), edges[0])))
    usd = _frame(usd_parts, "USD", 1.0)
    # tax (USD options) and the promotional credit
    extra = []
    for key in ("over", "discount"):
        option = SCENARIO[key]
        sel = usd[(usd["_option"] == option) & (usd["ChargeCategory"] == "Usage")
                  & (usd["ServiceCategory"] != "Storage")]
        for mo in range(months):
            t0, t1 = edges[mo], edges[mo + 1]
            cur = sel[sel["_month"] == t0.astype("datetime64[M]").astype(np.int64)]
            extra.append(dict(option=option, hw="L4", res=np.array([None], dtype=object),
                              start=np.array([t0]), end=np.array([t1]), qty=np.array([np.nan]),
                              unit=None, list_rate=0.0, billed=TAX_RATE * cur["BilledCost"].sum(),
                              effective=TAX_RATE * cur["EffectiveCost"].sum(), pricing="Standard",
                              commitment=None, category="Tax", service="Compute",
                              service_name="Amazon Elastic Compute Cloud", sku=None,
                              desc=f"sales tax {TAX_RATE:.0%}", bp=(t0, t1), frequency="Recurring"))
    extra.append(dict(option=SCENARIO["discount"], hw="L4", res=np.array([None], dtype=object),
                      start=np.array([edges[1]]), end=np.array([edges[2]]), qty=np.array([np.nan]),
                      unit=None, list_rate=0.0, billed=CREDIT_USD, effective=CREDIT_USD,
                      pricing="Standard", commitment=None, category="Credit", service="Compute",
                      service_name="Amazon Elastic Compute Cloud", sku=None,
                      desc="promotional credit", bp=(edges[1], edges[2]), frequency="One-Time"))
    usd = pd.concat([usd, _frame(extra, "USD", 1.0)], ignore_index=True)
    eur = _frame(eur_parts, "EUR", 1.0 / float(usd_per_eur))
    return {"focus_usd": usd.drop(columns=["_option", "_month"]),
            "focus_eur": eur.drop(columns=["_option", "_month"])}


def _frame(parts: list[dict[str, Any]], currency: str, per_usd: float) -> pd.DataFrame:
    """FOCUS 1.0 rows of the blocks; money in ``currency`` (USD amounts x ``per_usd``)."""
    frames = []
    for p in parts:
        n = len(p["start"])
        qty = np.asarray(p["qty"], dtype=float)
        tags = (json.dumps({"effplan-option": p["option"], "team": "ml-platform", "env": "prod"})
                if p["option"] else json.dumps({"team": "ml-platform"}))
        cat = p["category"]
        list_cost = (qty * p["list_rate"]) if cat == "Usage" else np.full(n, p["billed"])
        billed = np.full(n, p["billed"]) * per_usd
        eff = np.full(n, p["effective"]) * per_usd
        bp0, bp1 = p["bp"]
        sku, _name = _SKU.get(p["hw"], (p["hw"], p["hw"]))
        frames.append(pd.DataFrame({
            "BilledCost": billed, "BillingAccountId": "123456789012" if currency == "USD" else "987654321098",
            "BillingAccountName": "effplan-demo" if currency == "USD" else "effplan-demo-eu",
            "BillingCurrency": currency, "BillingPeriodStart": _iso(np.full(n, bp0)),
            "BillingPeriodEnd": _iso(np.full(n, bp1)), "ChargeCategory": cat, "ChargeClass": None,
            "ChargeDescription": p["desc"],
            "ChargeFrequency": p.get("frequency", "Usage-Based"),
            "ChargePeriodStart": _iso(p["start"]), "ChargePeriodEnd": _iso(p["end"]),
            "CommitmentDiscountCategory": "Usage" if p["commitment"] else None,
            "CommitmentDiscountId": p["commitment"], "CommitmentDiscountName": p["commitment"],
            "CommitmentDiscountStatus": "Used" if p["commitment"] and cat == "Usage" else None,
            "CommitmentDiscountType": "Reserved Instance" if p["commitment"] else None,
            "ConsumedQuantity": qty if cat == "Usage" else np.nan,
            "ConsumedUnit": p["unit"] if cat == "Usage" else None,
            "ContractedCost": billed if cat != "Usage" else np.where(p["commitment"] is None, billed, eff),
            "ContractedUnitPrice": (p["list_rate"] * per_usd) if cat == "Usage" else np.nan,
            "EffectiveCost": eff, "InvoiceIssuerName": "Amazon Web Services, Inc.",
            "ListCost": list_cost * per_usd,
            "ListUnitPrice": (p["list_rate"] * per_usd) if cat == "Usage" else np.nan,
            "PricingCategory": p["pricing"], "PricingQuantity": qty if cat == "Usage" else np.nan,
            "PricingUnit": p["unit"] if cat == "Usage" else None, "ProviderName": "AWS",
            "PublisherName": "AWS", "RegionId": "us-east-1" if currency == "USD" else "eu-west-1",
            "RegionName": "US East (N. Virginia)" if currency == "USD" else "Europe (Ireland)",
            "ResourceId": [None if r is None else
                           (f"arn:aws:ec2:us-east-1:123456789012:instance/{r}" if str(r).startswith("i-")
                            else f"arn:aws:ec2:us-east-1:123456789012:{r}") for r in p["res"]]
            if len(p["res"]) == n else None,
            "ResourceName": p["res"] if len(p["res"]) == n else None,
            "ResourceType": "Virtual Machine" if p["service"] == "Compute" else p["service"],
            "ServiceCategory": p["service"], "ServiceName": p["service_name"],
            "SkuId": p["sku"], "SkuPriceId": (f"{p['sku']}-{currency.lower()}" if p["sku"] else None),
            "SubAccountId": "210987654321", "SubAccountName": "ml-serving",
            "Tags": tags, "AvailabilityZone": "us-east-1a" if currency == "USD" else "eu-west-1a",
            "_option": p["option"],
            "_month": np.asarray(p["start"]).astype("datetime64[M]").astype(np.int64),
        }))
    out = pd.concat(frames, ignore_index=True)
    return out


def write_sample(out_dir: str | Path, *, plan: Any = None, months: int = 2,
                 granularity: str = "day", fleet: int = 1, parquet: bool = False) -> dict[str, Path]:
    """Write ``plan/`` (:meth:`Plan.to_csv`) and ``focus_usd.csv`` / ``focus_eur.csv`` (or
    ``.parquet``) into ``out_dir``; returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = sample_plan() if plan is None else plan
    plan.to_csv(out / "plan")
    paths = {"plan": out / "plan"}
    for name, df in focus_export(plan, months=months, granularity=granularity, fleet=fleet).items():
        if parquet:
            p = out / f"{name}.parquet"
            df.to_parquet(p, index=False)
        else:
            p = out / f"{name}.csv"
            df.to_csv(p, index=False, float_format="%.10g")
        paths[name] = p
    return paths


def sample_paths() -> dict[str, Path]:
    """The shipped sample (package data ``effplan/data/actuals_sample``): ``plan`` (a folder
    written by ``effplan plan --out``), ``focus_usd`` and ``focus_eur`` (FOCUS CSV files)."""
    import importlib.resources

    base = Path(str(importlib.resources.files("effplan") / "data" / SAMPLE_DIR))
    return {"plan": base / "plan", "focus_usd": base / "focus_usd.csv",
            "focus_eur": base / "focus_eur.csv"}


def inputs_or_sample(plan_dir: str | Path | None, billing: Any) -> tuple[Path, list[Any]]:
    """``(plan folder, billing sources)`` for notebook 06: the given ones, or the shipped sample
    where they are empty ("" / [])."""
    s = sample_paths()
    plan = Path(plan_dir) if plan_dir else s["plan"]
    bills = [billing] if isinstance(billing, (str, Path)) and billing else list(billing or [])
    return plan, bills or [s["focus_usd"], s["focus_eur"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write the sample plan and its FOCUS bill")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--months", type=int, default=2, help="billed months (from the plan's start)")
    ap.add_argument("--granularity", choices=("hour", "day"), default="day")
    ap.add_argument("--fleet", type=int, default=1, help="multiply every instance count")
    ap.add_argument("--parquet", action="store_true")
    args = ap.parse_args(argv)
    for name, p in write_sample(args.out, months=args.months, granularity=args.granularity,
                                fleet=args.fleet, parquet=args.parquet).items():
        print(f"{name}: {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
