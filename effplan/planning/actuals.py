"""Budget vs actuals: a plan against the cloud bill (FOCUS), the variance per option and month,
split into volume and rate, and a re-forecast of the rest of the horizon. numpy/pandas only
(the bill is read by :mod:`effplan.billing`).

``effplan.actuals(plan, billing, start="2026-10")`` -> :class:`Actuals`.

Which billing rows count (the audit trail)
------------------------------------------
* **Mapping.** A row belongs to option ``<candidate>@<hardware>`` of the plan when its ``Tags``
  hold ``option_tag`` (default ``effplan-option``) with that value -- exactly, or in the form
  :func:`effplan.billing.option_key` gives (lower case, ``@`` as ``_``: GCP labels and
  Kubernetes label values allow no ``@``). Rows without the tag may be mapped by ``mapping=``:
  ``{ResourceId prefix or SkuId: "<candidate>@<hardware>"}`` (the longest matching ResourceId
  prefix first, then an exact SkuId). A tag naming no option of the plan maps nothing.
* **Counted** for an option: its ``Usage`` and ``Purchase`` rows whose ServiceCategory is Compute
  or AI and Machine Learning, and its ``Tax``, ``Credit`` and ``Adjustment`` rows whose
  ServiceCategory is one of those or Other -- shown as their own lines (``tax_cost_usd`` ...).
  A Purchase counts through the cost column: with ``EffectiveCost`` (the budget view) a
  commitment's upfront fee is 0 on its Purchase row and amortised over the usage it covers;
  with ``BilledCost`` (the invoice view) the fee counts on its Purchase row and the covered usage
  bills 0. Either way it is counted once.
* **Month**: the calendar month (UTC) of ``ChargePeriodStart`` (``ChargePeriodEnd`` is the
  exclusive end); plan month ``m`` is ``start + m``. Rows outside the plan's months are not in
  the variance (:attr:`Actuals.excluded` says how many and how much).
* **Instance-hours**: ``ConsumedQuantity`` of Usage rows whose ``ConsumedUnit`` is an hour
  (:data:`effplan.billing.HOUR_UNITS`; never GB-Hours).
* **Unmapped**: every Compute / AI and Machine Learning row no option claims is listed in
  :attr:`Actuals.unmapped` with its cost and why; every other row not counted is summed in
  :attr:`Actuals.excluded` by reason. Nothing is dropped silently: the variance's actual cost plus
  the excluded cost is the bill's total.
* **Money** is USD: other currencies need ``fx`` (US dollars per unit); the rates used are in
  :attr:`Actuals.currency`.

The variance (one row per option that appears in the bill x month the bill covers)
----------------------------------------------------------------------------------
With ``C`` cost and ``H`` instance-hours, planned (the plan's own monthly ``cost_usd`` and
``instance_hours``) and actual, and ``r = C / H`` the cost per instance-hour:

* ``variance_usd = C_actual - C_planned``; ``variance_pct = variance_usd / C_planned``;
* ``volume_variance_usd = (H_actual - H_planned) x r_planned`` (with no planned hours, ``r_planned``
  is taken as ``r_actual``: the whole variance is volume);
* ``rate_variance_usd = (r_actual - r_planned) x H_actual``, computed as ``variance_usd -
  volume_variance_usd`` (the same number; so volume + rate = variance exactly, also for a month
  with cost but no hours, where ``r_actual`` is undefined and the rate part is what was paid
  without hours);
* ``outside_band``: ``|variance_pct| > band`` (default 0.12, :data:`effplan.defaults.VARIANCE_BAND`).

Quarter rows (:attr:`Actuals.quarters`) sum the months of each calendar quarter ("2026-Q4"), so
their volume + rate = variance too; :attr:`Actuals.monthly_totals` / ``quarterly_totals`` add up
the options that were really billed (they all ran: a sum is right here).

The re-forecast (:meth:`Actuals.reforecast`)
-------------------------------------------
Per option of the variance, over the months the bill covers completely (``month_complete``), with
``m*`` the last of them:

* observed rate ``r_obs = sum C_actual / sum H_actual`` (the plan's rate when no hours were billed);
* volume ratio ``k_m = (H_actual / hours of the calendar month) / (H_planned / hours_per_month)``
  (instances per hour: a 31-day month is not growth) -- or, given ``requests_per_day=`` (a usage export:
  requests actually served per day, by month), ``k_m = served / planned requests per day``;
  the level is ``k* = k_{m*}``;
* observed growth ``g_obs = (1 + g_plan) x (k_{m*} / k_{m0})^(1 / (m* - m0)) - 1`` over the first
  and last complete months ``m0 < m*`` (one month: ``g_obs = g_plan``, the plan's monthly growth);
* months ``m <= m*`` are the actuals (``source="actual"``); a later month is re-planned from the
  plan's own instance-hours: ``H(m) = H_planned(m) x k* x ((1 + g_obs) / (1 + g_plan))^(m - m*)``,
  ``C(m) = H(m) x r_obs`` (``source="reforecast"``);
* Monte Carlo (``samples``): per sample a traffic multiplier and a price multiplier (triangular,
  mode 1, the plan's :class:`Uncertainty` ranges, default (0.8, 1.2) and (0.9, 1.1)) and a growth
  drawn around ``g_obs`` with the plan's growth range shifted to it; P10/P50/P90 of every
  re-planned month, quarter and the horizon (actual months add without spread). Energy and CO2
  are not in a bill: they are NaN in the re-forecast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import settings as _defaults
from ..errors import ValidationError
from .calendar import calendar_quarter, month_label, month_number, parse_month, plan_quarter_labels
from .engine import _percentiles, _tri
from .inputs import Uncertainty
from .result import Plan

__all__ = ["Actuals", "actuals", "VARIANCE_COLUMNS", "REFORECAST_MONTHLY_COLUMNS"]

#: column -> description, for every row of :attr:`Actuals.variance`
VARIANCE_COLUMNS: dict[str, str] = {
    "candidate": "candidate name", "hardware": "hardware name",
    "option": "'<candidate>@<hardware>', the value of the option tag",
    "month": "calendar month, 'YYYY-MM' (ChargePeriodStart, UTC)",
    "quarter": "calendar quarter of the month, '2026-Q4'",
    "plan_month": "0-based month of the plan",
    "planned_cost_usd": "the plan's cost of the month (its monthly cost_usd)",
    "actual_cost_usd": "billed cost of the month in the chosen cost column (Actuals.cost_column)",
    "variance_usd": "actual_cost_usd - planned_cost_usd",
    "variance_pct": "variance_usd / planned_cost_usd (a fraction)",
    "volume_variance_usd": "(actual - planned instance-hours) x planned cost per instance-hour",
    "rate_variance_usd": "(actual - planned cost per instance-hour) x actual instance-hours",
    "planned_instance_hours": "the plan's instance-hours of the month",
    "actual_instance_hours": "ConsumedQuantity of Usage rows in hours",
    "planned_usd_per_hour": "planned_cost_usd / planned_instance_hours",
    "actual_usd_per_hour": "actual_cost_usd / actual_instance_hours",
    "outside_band": "True when |variance_pct| > Actuals.band (0.12)",
    "billed_cost_usd": "BilledCost of the same rows, USD (invoice view)",
    "effective_cost_usd": "EffectiveCost of the same rows, USD (budget view, amortised)",
    "usage_cost_usd": "Usage rows, chosen cost column", "purchase_cost_usd": "Purchase rows",
    "tax_cost_usd": "Tax rows", "credit_cost_usd": "Credit rows (negative)",
    "adjustment_cost_usd": "Adjustment rows", "rows": "billing rows counted",
    "month_complete": "True when the bill covers the whole month (its last ChargePeriodEnd)",
    "note": "why a figure is missing ('' when none is)",
}

#: the re-forecast's monthly columns (besides the plan's labels)
REFORECAST_MONTHLY_COLUMNS: dict[str, str] = {
    "source": "'actual' (from the bill), 'reforecast' (re-planned) or 'plan' (an elapsed month "
              "the bill does not cover: the plan's figure)",
    "cost_usd": "actual or re-forecast cost of the month",
    "instance_hours": "actual or re-forecast instance-hours",
    "planned_cost_usd": "the original plan's cost of the month",
    "planned_instance_hours": "the original plan's instance-hours",
    "usd_per_hour": "cost per instance-hour used (actual, or the observed rate)",
}

_LINES = ("usage", "purchase", "tax", "credit", "adjustment")


@dataclass(frozen=True, eq=False)
class Actuals:
    """A plan against its bill. Frozen; the frames are copies you may modify.

    Attributes
    ----------
    variance: one row per option x month (:data:`VARIANCE_COLUMNS`).
    quarters: the same per option x calendar quarter (sums of its months).
    monthly_totals / quarterly_totals: every billed option added up, per month / quarter.
    lines: option x month x ChargeCategory: rows, cost in the chosen column, BilledCost and
        EffectiveCost in USD (both views, labelled).
    unmapped: every Compute / AI and Machine Learning row no option claims, with its cost and why.
    excluded: every other row not counted, summed by reason, ServiceCategory and ChargeCategory.
    currency: per BillingCurrency the rate used (US dollars per unit), its source and the totals
        before and after conversion.
    plan: the :class:`Plan` compared; start: its month 0, "YYYY-MM"; band: the variance band.
    cost_column / cost_view: "EffectiveCost" -> "budget view (EffectiveCost, amortised)", or
        "BilledCost" -> "invoice view (BilledCost)".
    through: the bill's last ChargePeriodEnd (ISO 8601, UTC); bill_total_usd: the whole bill in the
        cost column; notes: what a reader should know (unmapped spend, rows outside the plan).
    """

    variance: pd.DataFrame
    quarters: pd.DataFrame
    monthly_totals: pd.DataFrame
    quarterly_totals: pd.DataFrame
    lines: pd.DataFrame
    unmapped: pd.DataFrame
    excluded: pd.DataFrame
    currency: pd.DataFrame
    plan: Plan
    start: str
    band: float
    cost_column: str
    cost_view: str
    option_tag: str
    through: str
    bill_total_usd: float
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The variance (one row per option x month)."""
        return self.variance.copy()

    def to_csv(self, directory: str | Path) -> list[Path]:
        """variance, quarters, monthly_totals, quarterly_totals, lines, unmapped, excluded and
        currency as CSV files in ``directory`` (created); returns the paths."""
        from ..safe import spreadsheet_frame

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name in ("variance", "quarters", "monthly_totals", "quarterly_totals", "lines",
                     "unmapped", "excluded", "currency"):
            p = d / f"{name}.csv"
            spreadsheet_frame(getattr(self, name)).to_csv(p, index=False)  # formulas stay text
            out.append(p)
        return out

    def sentence(self) -> str:
        """The comparison in one sentence (plain text)."""
        t = self.monthly_totals
        if t.empty:
            return (f"No billing row maps to an option of the plan (tag {self.option_tag!r}); "
                    f"${self.bill_total_usd:,.0f} of spend is unmapped or outside the plan.")
        plan_c, act_c = float(t["planned_cost_usd"].sum()), float(t["actual_cost_usd"].sum())
        pct = (act_c - plan_c) / plan_c if plan_c else float("nan")
        out = int(self.variance["outside_band"].sum())
        s = (f"{t['month'].iloc[0]} to {t['month'].iloc[-1]}: actual ${act_c:,.0f} against "
             f"${plan_c:,.0f} planned ({pct:+.1%}, {self.cost_view}); {out} of "
             f"{len(self.variance)} option-months outside the ±{self.band:.0%} band")
        um = float(self.unmapped["cost_usd"].sum()) if len(self.unmapped) else 0.0
        if um:
            s += f"; ${um:,.0f} of compute spend is unmapped"
        return s + "."

    def reforecast(self, *, samples: int | None = None, seed: int = 0,
                   uncertainty: Uncertainty | Mapping[str, Any] | None = None,
                   requests_per_day: Mapping[str, float] | pd.DataFrame | None = None) -> Plan:
        """A :class:`Plan` for the billed options in which the months the bill covers completely
        are the actuals and the rest are re-planned from the observed rate, volume and growth
        (formulas: the module docstring), with a Monte Carlo band over the re-planned months.

        ``samples``: Monte Carlo samples (default: the plan's, else
        :data:`effplan.defaults.SAMPLES`; 0: none). ``uncertainty``: ranges (default: the plan's,
        else ``Uncertainty()``). ``requests_per_day``: requests actually served per day by month
        (``{"2026-10": 1.2e6}`` or a frame with ``month`` and ``requests_per_day``), from a usage
        export; it replaces the instance-hours as the volume signal."""
        return _reforecast(self, samples=samples, seed=seed, uncertainty=uncertainty,
                           requests_per_day=requests_per_day)

    def __repr__(self) -> str:
        return (f"Actuals({self.variance[['candidate', 'hardware']].drop_duplicates().shape[0]} "
                f"billed option(s), {self.variance['month'].nunique() if len(self.variance) else 0}"
                f" month(s), {self.cost_view}, {len(self.unmapped)} unmapped row(s))")

    def _repr_html_(self) -> str:
        from ..formatting import styled

        from ..safe import html_text

        return (f"<p>{html_text(self.sentence())}</p>"
                + styled(self.variance[[c for c in VARIANCE_COLUMNS if c in self.variance.columns
                                        and c not in ("option", "plan_month", "note")]]).to_html())


# ------------------------------------------------------------------------------ building it
def _plan_of(plan: Any) -> Plan:
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, (str, Path)):
        return Plan.from_csv(plan)
    raise ValidationError("plan", f"expected a Plan or the folder effplan plan --out wrote, got "
                                  f"{type(plan).__name__}")


def _options(monthly: pd.DataFrame) -> tuple[list[tuple[str, str]], dict[str, int], dict[str, int]]:
    """(candidate, hardware) pairs of the plan in order, and label / key -> index."""
    from ..records.billing import option_key

    pairs = list(dict.fromkeys(zip(monthly["candidate"].astype(str),
                                   monthly["hardware"].astype(str))))
    labels = {f"{c}@{h}": i for i, (c, h) in enumerate(pairs)}
    keys: dict[str, int] = {}
    for label, i in labels.items():
        k = option_key(label)
        if k in keys and keys[k] != i:
            raise ValidationError("option_tag", f"options {list(labels)[keys[k]]!r} and {label!r} "
                                                f"have the same tag form {k!r}: rename one")
        keys[k] = i
    return pairs, labels, keys


def _match(value: str, labels: Mapping[str, int], keys: Mapping[str, int]) -> int:
    from ..records.billing import option_key

    if value in labels:
        return labels[value]
    return keys.get(option_key(value), -1)


def _mapping_codes(bill: Any, mapping: Mapping[str, str] | None, labels: Mapping[str, int],
                   keys: Mapping[str, int]) -> np.ndarray:
    """Option index per row from ``mapping`` (ResourceId prefix, longest first; then SkuId);
    -1 where nothing maps."""
    n = bill.rows
    if not mapping:
        return np.full(n, -1, dtype=np.int32)
    if not isinstance(mapping, Mapping):
        raise ValidationError("mapping", f"expected {{ResourceId prefix or SkuId: "
                                         f"'<candidate>@<hardware>'}}, got {type(mapping).__name__}")
    target: dict[str, int] = {}
    for k, v in mapping.items():
        i = _match(str(v), labels, keys)
        if i < 0:
            raise ValidationError("mapping", f"{k!r} -> {v!r} names no option of the plan "
                                             f"(options: {', '.join(labels)})")
        if not str(k):
            raise ValidationError("mapping", "an empty key would match every resource")
        target[str(k)] = i
    by_len = sorted(target, key=len, reverse=True)
    res = np.array([next((target[k] for k in by_len if r.startswith(k)), -1) for r in bill.resources]
                   + [-1], dtype=np.int32)
    sku = np.array([target.get(s, -1) for s in bill.skus] + [-1], dtype=np.int32)
    out = res[bill.resource_code]
    return np.where(out >= 0, out, sku[bill.sku_code]).astype(np.int32)


def _ns_of_month(number: int) -> int:
    return int(np.datetime64(f"{month_label(number)}-01", "ns").astype(np.int64))


def actuals(plan: Any, billing: Any, *, start: str | None = None,
            option_tag: str = _defaults.OPTION_TAG, cost_column: str = _defaults.COST_COLUMN,
            fx: Mapping[str, float] | None = None, mapping: Mapping[str, str] | None = None,
            band: float = _defaults.VARIANCE_BAND) -> Actuals:
    """Compare ``plan`` with its bill (see the module docstring for every rule).

    Parameters
    ----------
    plan: a :class:`Plan`, or the folder ``effplan plan --out`` / :meth:`Plan.to_csv` wrote.
    billing: FOCUS data: a CSV or Parquet file, a folder of them (Hive-partitioned too), a
        DataFrame, or a list of these (:func:`effplan.billing.load_billing`).
    start: the calendar month of the plan's month 0, "YYYY-MM". Default: the plan's own (a
        workload given ``start=``); one of the two is needed, and they must agree.
    option_tag: the tag key whose value is ``"<candidate>@<hardware>"``.
    cost_column: ``"EffectiveCost"`` (budget view, amortised; default) or ``"BilledCost"``
        (invoice view). Both are in every frame, labelled.
    fx: US dollars per unit of every BillingCurrency other than USD (``{"EUR": 1.08}``); a
        currency without one raises :class:`~effplan.errors.CurrencyError`.
    mapping: ``{ResourceId prefix or SkuId: "<candidate>@<hardware>"}`` for untagged rows.
    band: the variance band (0.12: +/-12%).
    """
    from ..records.billing import CHARGE_CATEGORIES, SERVICE_CATEGORIES, load_billing
    from ..records.schema import number

    p = _plan_of(plan)
    band = number("band", band, lo=0, lo_open=True)
    if cost_column not in ("EffectiveCost", "BilledCost"):
        raise ValidationError("cost_column", f"{cost_column!r}: give 'EffectiveCost' (budget view, "
                                             "amortised) or 'BilledCost' (invoice view)")
    own = p.inputs.get("start") if isinstance(p.inputs, Mapping) else None
    if start is None and own is None:
        raise ValidationError("start", "give the calendar month of the plan's month 0, e.g. "
                                       "start='2026-10' (the plan has none: its workload had no "
                                       "start=)")
    start = parse_month(start if start is not None else own, "start")
    if own is not None and parse_month(own) != start:
        raise ValidationError("start", f"{start} differs from the plan's own start {own}")
    monthly = p.monthly
    if monthly is None or monthly.empty:
        raise ValidationError("plan", "the plan has no monthly frame (a training-only plan has no "
                                      "months to compare with a bill)")
    pairs, labels, keys = _options(monthly)
    K = len(pairs)
    M = int(pd.to_numeric(monthly["month"]).max()) + 1
    bill = load_billing(billing, option_tag=option_tag, fx=fx)
    m0 = month_number(start)

    # option per row: tag, else mapping -------------------------------------------------
    tag_opt = np.array([_match(v, labels, keys) for v in bill.tag_values] + [-1], dtype=np.int32)
    opt = tag_opt[bill.tag_code]
    unknown_tag = (bill.tag_code >= 0) & (opt < 0)
    mapped = _mapping_codes(bill, mapping, labels, keys)
    opt = np.where((opt < 0) & (bill.tag_code < 0), mapped, opt).astype(np.int64)
    rel = bill.month - m0
    in_plan = (rel >= 0) & (rel < M)
    cat = bill.category
    usage_like = np.isin(cat, [CHARGE_CATEGORIES.index("Usage"), CHARGE_CATEGORIES.index("Purchase")])
    other_ix = SERVICE_CATEGORIES.index("Other")
    countable = np.where(usage_like, bill.compute, bill.compute | (bill.service == other_ix))
    counted = (opt >= 0) & in_plan & countable
    cost = bill.cost_usd(cost_column)

    # months of the variance: those the bill covers within the plan --------------------
    through_ns = int(bill.end_ns.max()) if bill.rows else 0
    covered = rel[in_plan]
    months = np.arange(int(covered.min()), int(covered.max()) + 1) if covered.size else np.empty(0, int)
    billed_opts = np.unique(opt[counted]).astype(int)
    Mv = len(months)

    # sums per option x plan month (bincount over counted rows) -------------------------
    key = (opt * M + rel)[counted]
    size = K * M

    def sums(x: np.ndarray) -> np.ndarray:
        return np.bincount(key, weights=x[counted], minlength=size).reshape(K, M)

    a_cost, a_hours = sums(cost), sums(bill.hours)
    a_billed, a_eff = sums(bill.billed_usd), sums(bill.effective_usd)
    a_rows = np.bincount(key, minlength=size).reshape(K, M)
    lines = np.bincount(key * 5 + cat[counted], weights=cost[counted],
                        minlength=size * 5).reshape(K, M, 5)

    # planned figures from the plan's own monthly frame ----------------------------------
    mi = monthly.assign(_o=[labels[f"{c}@{h}"] for c, h in zip(monthly["candidate"].astype(str),
                                                              monthly["hardware"].astype(str))])
    p_cost = np.full((K, M), np.nan)
    p_hours = np.full((K, M), np.nan)
    mm = pd.to_numeric(mi["month"]).to_numpy(int)
    p_cost[mi["_o"].to_numpy(int), mm] = pd.to_numeric(mi["cost_usd"], errors="coerce").to_numpy(float)
    p_hours[mi["_o"].to_numpy(int), mm] = pd.to_numeric(mi["instance_hours"], errors="coerce").to_numpy(float)
    reason = {}
    if "infeasible_reason" in monthly.columns:
        reason = dict(zip(mi["_o"], mi["infeasible_reason"].astype(str)))

    # the variance frame ---------------------------------------------------------------
    oo = np.repeat(billed_opts, Mv)
    mo = np.tile(months, len(billed_opts))
    C_p, H_p = p_cost[oo, mo], p_hours[oo, mo]
    C_a, H_a = a_cost[oo, mo], a_hours[oo, mo]
    with np.errstate(divide="ignore", invalid="ignore"):
        r_p = np.where(H_p > 0, C_p / H_p, np.nan)
        r_a = np.where(H_a > 0, C_a / H_a, np.nan)
        var = C_a - C_p
        pct = np.where(C_p != 0, var / C_p, np.nan)
    r_p_used = np.where(H_p > 0, r_p, np.where(H_a > 0, r_a, 0.0))
    volume = (H_a - H_p) * r_p_used
    rate = var - volume
    nums = m0 + mo
    complete = np.array([through_ns >= _ns_of_month(n + 1) for n in nums], dtype=bool)
    note = np.where(np.isnan(C_p), [f"the plan has no cost for this option: "
                                    f"{reason.get(o, '') or 'no price'}" for o in oo], "")
    note = np.where((note == "") & ~complete, "month not complete in the bill (it ends "
                    f"{_iso(through_ns)})", note)
    variance = pd.DataFrame({
        "candidate": [pairs[o][0] for o in oo], "hardware": [pairs[o][1] for o in oo],
        "option": [f"{pairs[o][0]}@{pairs[o][1]}" for o in oo],
        "month": [month_label(n) for n in nums], "quarter": [calendar_quarter(n) for n in nums],
        "plan_month": mo.astype(int),
        "planned_cost_usd": C_p, "actual_cost_usd": C_a, "variance_usd": var,
        "variance_pct": pct, "volume_variance_usd": volume, "rate_variance_usd": rate,
        "planned_instance_hours": H_p, "actual_instance_hours": H_a,
        "planned_usd_per_hour": r_p, "actual_usd_per_hour": r_a,
        "outside_band": np.abs(np.nan_to_num(pct)) > band,
        "billed_cost_usd": a_billed[oo, mo], "effective_cost_usd": a_eff[oo, mo],
        **{f"{name}_cost_usd": lines[oo, mo, j] for j, name in enumerate(_LINES)},
        "rows": a_rows[oo, mo].astype(int), "month_complete": complete, "note": note,
    }, columns=list(VARIANCE_COLUMNS))

    quarters = _group(variance, ["candidate", "hardware", "option", "quarter"], band)
    monthly_totals = _group(variance, ["month", "quarter"], band)
    quarterly_totals = _group(variance, ["quarter"], band)

    # lines: option x month x ChargeCategory, both views ----------------------------------
    lk = (key * 5 + cat[counted])
    nl = size * 5
    l_rows = np.bincount(lk, minlength=nl)
    hit = np.flatnonzero(l_rows)
    l_cost = np.bincount(lk, weights=cost[counted], minlength=nl)[hit]
    l_bill = np.bincount(lk, weights=bill.billed_usd[counted], minlength=nl)[hit]
    l_eff = np.bincount(lk, weights=bill.effective_usd[counted], minlength=nl)[hit]
    lo, lm, lc = hit // (M * 5), (hit // 5) % M, hit % 5
    lines_df = pd.DataFrame({
        "candidate": [pairs[o][0] for o in lo], "hardware": [pairs[o][1] for o in lo],
        "month": [month_label(m0 + m) for m in lm], "charge_category": [CHARGE_CATEGORIES[c] for c in lc],
        "rows": l_rows[hit].astype(int), "cost_usd": l_cost,
        "billed_cost_usd": l_bill, "effective_cost_usd": l_eff})

    # unmapped compute / AI rows -------------------------------------------------------
    um_mask = bill.compute & (opt < 0)
    unmapped = bill.frame(um_mask)
    why = np.where(unknown_tag[um_mask],
                   np.array([f"{option_tag}={v!r} names no option of the plan"
                             for v in bill.tag_values] + [""], dtype=object)[bill.tag_code[um_mask]],
                   np.where(bill.tags_bad[um_mask], "Tags is not a JSON object",
                            f"no {option_tag} tag and no mapping= entry"))
    um_months, um_inv = np.unique(bill.month[um_mask], return_inverse=True)
    unmapped.insert(2, "month", np.array([month_label(n) for n in um_months], dtype=object)[um_inv])
    unmapped["cost_usd"] = cost[um_mask]
    unmapped["billed_cost_usd"] = bill.billed_usd[um_mask]
    unmapped["effective_cost_usd"] = bill.effective_usd[um_mask]
    unmapped["reason"] = why

    # everything else not counted, by reason -----------------------------------------
    reasons = ("unmapped compute or AI (listed in Actuals.unmapped)",
               f"before the plan's start ({start})",
               f"after the plan's last month ({month_label(m0 + M - 1)})",
               "not planned: the plan covers Compute and AI and Machine Learning",
               "no option claims it")
    rc = np.full(bill.rows, -1, dtype=np.int64)
    rc[~counted & (opt >= 0) & ~countable] = 3
    rc[~counted & (opt < 0) & ~bill.compute & ~countable] = 3
    rc[~counted & (opt < 0) & ~bill.compute & countable] = 4
    rc[~counted & (opt >= 0) & countable & (rel >= M)] = 2
    rc[~counted & (opt >= 0) & countable & (rel < 0)] = 1
    rc[um_mask] = 0
    ex = rc >= 0
    nsvc, ncat = len(SERVICE_CATEGORIES), len(CHARGE_CATEGORIES)
    ek = (rc * nsvc + bill.service) * ncat + cat
    ne = len(reasons) * nsvc * ncat
    e_rows = np.bincount(ek[ex], minlength=ne)
    hit = np.flatnonzero(e_rows)
    excluded = pd.DataFrame({
        "reason": [reasons[h // (nsvc * ncat)] for h in hit],
        "service_category": [SERVICE_CATEGORIES[(h // ncat) % nsvc] for h in hit],
        "charge_category": [CHARGE_CATEGORIES[h % ncat] for h in hit],
        "rows": e_rows[hit].astype(int),
        "cost_usd": np.bincount(ek[ex], weights=cost[ex], minlength=ne)[hit],
        "billed_cost_usd": np.bincount(ek[ex], weights=bill.billed_usd[ex], minlength=ne)[hit],
        "effective_cost_usd": np.bincount(ek[ex], weights=bill.effective_usd[ex], minlength=ne)[hit],
    })
    view = ("budget view (EffectiveCost, amortised)" if cost_column == "EffectiveCost"
            else "invoice view (BilledCost)")
    notes = []
    if len(unmapped):
        notes.append(f"{len(unmapped):,} compute/AI billing row(s) (${unmapped['cost_usd'].sum():,.2f}) "
                     f"carry no {option_tag} tag naming an option of the plan: see Actuals.unmapped")
    for r, n, c in excluded.groupby("reason", sort=False)[["rows", "cost_usd"]].sum().itertuples():
        if r != reasons[0]:
            notes.append(f"{n:,} row(s) (${c:,.2f}) not in the variance: {r}")
    if bill.rows and not counted.any():
        notes.append(f"no billing row maps to an option of the plan (tag {option_tag!r}, options: "
                     f"{', '.join(list(labels)[:6])}{', ...' if K > 6 else ''})")
    return Actuals(variance=variance, quarters=quarters, monthly_totals=monthly_totals,
                   quarterly_totals=quarterly_totals, lines=lines_df, unmapped=unmapped,
                   excluded=excluded, currency=bill.currency_table.copy(), plan=p, start=start,
                   band=float(band), cost_column=cost_column, cost_view=view,
                   option_tag=option_tag, through=_iso(through_ns) if bill.rows else "",
                   bill_total_usd=float(cost.sum()), notes=tuple(notes),
                   sources=tuple(w for w, _, _ in bill.sources))


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _group(variance: pd.DataFrame, by: list[str], band: float) -> pd.DataFrame:
    """Sums of the money and hour columns over ``by``, with the percentage and band recomputed
    (volume + rate = variance holds for sums)."""
    money = ["planned_cost_usd", "actual_cost_usd", "variance_usd", "volume_variance_usd",
             "rate_variance_usd", "planned_instance_hours", "actual_instance_hours",
             "billed_cost_usd", "effective_cost_usd", *[f"{n}_cost_usd" for n in _LINES], "rows"]
    if variance.empty:
        return pd.DataFrame(columns=by + ["months"] + money + ["variance_pct", "outside_band",
                                                               "complete"])
    g = variance.groupby(by, sort=False)
    out = g[money].sum(min_count=1).reset_index()
    out.insert(len(by), "months", g["month"].nunique().to_numpy())
    # a quarter is complete when the bill covers all its months completely (3, or fewer where
    # the plan ends inside it); a month row is complete when its month is
    full = 1 if "month" in by else 3
    out["complete"] = (g["month_complete"].all().to_numpy()
                       & (out["months"].to_numpy() >= full))
    with np.errstate(divide="ignore", invalid="ignore"):
        out["variance_pct"] = np.where(out["planned_cost_usd"] != 0,
                                       out["variance_usd"] / out["planned_cost_usd"], np.nan)
    out["outside_band"] = np.abs(np.nan_to_num(out["variance_pct"].to_numpy(float))) > band
    return out


# ------------------------------------------------------------------------------ re-forecast
def _served(requests_per_day: Any) -> dict[str, float]:
    from ..records.schema import number

    if requests_per_day is None:
        return {}
    if isinstance(requests_per_day, pd.DataFrame):
        if not {"month", "requests_per_day"} <= set(requests_per_day.columns):
            raise ValidationError("requests_per_day", "a frame needs columns month ('YYYY-MM') and "
                                                      "requests_per_day")
        items = zip(requests_per_day["month"], requests_per_day["requests_per_day"])
    elif isinstance(requests_per_day, Mapping):
        items = requests_per_day.items()
    else:
        raise ValidationError("requests_per_day", "expected {'YYYY-MM': requests per day} or a frame")
    return {parse_month(k, "requests_per_day"): number(f"requests_per_day[{k!r}]", v, lo=0)
            for k, v in items}


def _reforecast(a: Actuals, *, samples: int | None, seed: int, uncertainty: Any,
                requests_per_day: Any) -> Plan:
    from ..records.schema import number

    p = a.plan
    inputs = dict(p.inputs or {})
    wl = inputs.get("inference") or inputs.get("generation") or {}
    g_plan = float(wl.get("monthly_growth", 0.0) or 0.0) if isinstance(wl, Mapping) else 0.0
    hpm = float(wl.get("hours_per_month", 730.0)) if isinstance(wl, Mapping) else 730.0
    if samples is None:
        samples = int(inputs.get("samples") or 0) or _defaults.SAMPLES
    samples = int(number("samples", samples, lo=0, hi=1_000_000, integer=True))
    if uncertainty is None:
        raw = inputs.get("uncertainty")
        unc = Uncertainty.from_dict({k: v for k, v in raw.items() if k in ("traffic", "growth",
                                                                           "price")}) \
            if isinstance(raw, Mapping) else Uncertainty()
    else:
        unc = uncertainty if isinstance(uncertainty, Uncertainty) else Uncertainty.from_dict(uncertainty)
    served = _served(requests_per_day)
    v = a.variance
    monthly = p.monthly
    M = int(pd.to_numeric(monthly["month"]).max()) + 1
    m0 = month_number(a.start)
    opts = list(dict.fromkeys(zip(v["candidate"], v["hardware"])))
    K = len(opts)
    if K == 0:
        raise ValidationError("billing", "nothing to re-forecast: no billing row maps to an option "
                                         "of the plan")
    # plan arrays (K, M)
    pm = monthly.assign(_k=list(zip(monthly["candidate"].astype(str), monthly["hardware"].astype(str))))
    pm = pm[pm["_k"].isin(opts)]
    idx = {o: i for i, o in enumerate(opts)}
    ki = pm["_k"].map(idx).to_numpy(int)
    mi = pd.to_numeric(pm["month"]).to_numpy(int)

    def arr(col: str) -> np.ndarray:
        out = np.full((K, M), np.nan)
        if col in pm.columns:
            out[ki, mi] = pd.to_numeric(pm[col], errors="coerce").to_numpy(float)
        return out

    C_p, H_p, R_p = arr("cost_usd"), arr("instance_hours"), arr("requests")
    # actuals (K, M) over complete months
    C_a = np.full((K, M), np.nan)
    H_a = np.full((K, M), np.nan)
    done = v[v["month_complete"]]
    C_a[done[["candidate", "hardware"]].apply(tuple, axis=1).map(idx).to_numpy(int),
        done["plan_month"].to_numpy(int)] = done["actual_cost_usd"].to_numpy(float)
    H_a[done[["candidate", "hardware"]].apply(tuple, axis=1).map(idx).to_numpy(int),
        done["plan_month"].to_numpy(int)] = done["actual_instance_hours"].to_numpy(float)
    have = np.isfinite(C_a)
    if not have.any():
        raise ValidationError("billing", f"the bill covers no month completely (it ends "
                                         f"{a.through}): nothing elapsed to re-forecast from")
    last = int(np.flatnonzero(have.any(axis=0)).max())          # m*: the last complete month
    r_obs = np.empty(K)
    k_star = np.ones(K)
    g_obs = np.full(K, g_plan)
    detail = []
    for i in range(K):
        ms = np.flatnonzero(have[i])
        hs, cs = np.nansum(H_a[i, ms]), np.nansum(C_a[i, ms])
        plan_r = np.nansum(C_p[i, ms]) / np.nansum(H_p[i, ms]) if np.nansum(H_p[i, ms]) > 0 else np.nan
        r_obs[i] = cs / hs if hs > 0 else plan_r
        if served:
            labels = [month_label(m0 + m) for m in ms]
            plan_rpd = R_p[i, ms] / (hpm / 24.0)
            k = np.array([served.get(lab, np.nan) for lab in labels]) / plan_rpd
        else:   # instances per hour, so a 31-day month is not read as growth
            cal = np.array([_hours_in_month(m0 + m) for m in ms])
            with np.errstate(divide="ignore", invalid="ignore"):
                k = np.where(H_p[i, ms] > 0, (H_a[i, ms] / cal) / (H_p[i, ms] / hpm), np.nan)
        ok = np.isfinite(k) & (k > 0)
        if ok.any():
            k_star[i] = k[ok][-1]
            first, lastm = ms[ok][0], ms[ok][-1]
            if lastm > first:
                g_obs[i] = (1.0 + g_plan) * (k[ok][-1] / k[ok][0]) ** (1.0 / (lastm - first)) - 1.0
        detail.append({"candidate": opts[i][0], "hardware": opts[i][1],
                       "observed_usd_per_hour": float(r_obs[i]),
                       "planned_usd_per_hour": float(plan_r), "volume_ratio": float(k_star[i]),
                       "observed_growth": float(g_obs[i]), "planned_growth": g_plan,
                       "months_actual": int(len(ms)), "volume_signal": "requests served" if served
                       else "instance-hours"})
    # deterministic re-forecast
    steps = np.arange(M) - last                                    # m - m*
    factor = k_star[:, None] * ((1.0 + g_obs[:, None]) / (1.0 + g_plan)) ** steps[None, :]
    H_f = H_p * factor
    C_f = H_f * r_obs[:, None]
    elapsed = np.arange(M) <= last
    actual_here = have & elapsed[None, :]
    src = np.where(actual_here, "actual", np.where(elapsed[None, :], "plan", "reforecast"))
    H = np.where(actual_here, H_a, np.where(elapsed[None, :], H_p, H_f))
    C = np.where(actual_here, C_a, np.where(elapsed[None, :], C_p, C_f))
    Q = -(-M // 3)
    qn = np.arange(M) // 3
    # Monte Carlo over the re-planned months
    pct_m = pct_q = pct_t = None
    if samples > 0:
        rng = np.random.default_rng([seed, 25])
        tr = _tri(rng, *((unc.traffic[0], 1.0, unc.traffic[1]) if unc.traffic else (1, 1, 1)), samples)
        pr = _tri(rng, *((unc.price[0], 1.0, unc.price[1]) if unc.price else (1, 1, 1)), samples)
        gu = rng.random(samples) if unc.growth else None
        fut = ~elapsed
        # growth per option and sample: the plan's range shifted to the observed growth
        if unc.growth:
            lo, hi = unc.growth[0] - g_plan, unc.growth[1] - g_plan
            g_s = np.stack([_tri_at(gu, g + lo, g, g + hi) for g in g_obs])          # (K, S)
        else:
            g_s = np.repeat(g_obs[:, None], samples, axis=1)
        fac = k_star[:, None, None] * tr[None, None, :] * ((1.0 + g_s[:, None, :]) / (1.0 + g_plan)) \
            ** steps[None, :, None]                                                 # (K, M, S)
        Cs = np.where(fut[None, :, None], H_p[:, :, None] * fac * r_obs[:, None, None] * pr[None, None, :],
                      C[:, :, None])
        q_sum = np.stack([Cs[:, qn == q].sum(axis=1) for q in range(Q)], axis=1)   # (K, Q, S)
        pct_m = _percentiles(Cs)
        pct_q = _percentiles(q_sum)
        pct_t = _percentiles(Cs.sum(axis=1))
    # frames
    rep = lambda x: np.repeat(np.asarray(x, dtype=object), M)  # noqa: E731
    first_rows = pm.drop_duplicates("_k").set_index("_k")

    def label(col: str, default: Any = "") -> list[Any]:
        return [first_rows[col].get(o, default) if col in first_rows.columns else default
                for o in opts]

    mon = pd.DataFrame({
        "candidate": rep([o[0] for o in opts]), "hardware": rep([o[1] for o in opts]),
        "catalog_name": rep(label("catalog_name")), "provenance": rep(label("provenance")),
        "energy_source": rep(label("energy_source")),
        "month": np.tile(np.arange(M), K), "quarter": np.tile(qn + 1, K),
        "month_label": np.tile([month_label(m0 + m) for m in range(M)], K),
        "calendar_quarter": np.tile([calendar_quarter(m0 + m) for m in range(M)], K),
        "quarter_label": np.tile(plan_quarter_labels(a.start, qn + 1), K),
        "source": src.ravel(), "instance_hours": H.ravel(), "cost_usd": C.ravel(),
        "planned_cost_usd": C_p.ravel(), "planned_instance_hours": H_p.ravel(),
        "usd_per_hour": np.where(H.ravel() > 0, C.ravel() / np.where(H.ravel() > 0, H.ravel(), 1), np.nan),
        "energy_kwh": np.nan, "co2_kg": np.nan, "feasible": True, "infeasible_reason": "",
    })
    qsum = lambda x: np.stack([np.nansum(x[:, qn == q], axis=1) for q in range(Q)], axis=1)  # noqa: E731
    qt = pd.DataFrame({
        "candidate": np.repeat([o[0] for o in opts], Q), "hardware": np.repeat([o[1] for o in opts], Q),
        "catalog_name": np.repeat(label("catalog_name"), Q),
        "provenance": np.repeat(label("provenance"), Q),
        "energy_source": np.repeat(label("energy_source"), Q),
        "quarter": np.tile(np.arange(1, Q + 1), K),
        "quarter_label": np.tile(plan_quarter_labels(a.start, np.arange(1, Q + 1)), K),
        "months_in_quarter": np.tile(np.minimum(3, M - 3 * np.arange(Q)), K),
        "months_actual": np.stack([(src == "actual")[:, qn == q].sum(axis=1) for q in range(Q)],
                                  axis=1).ravel(),
        "instance_hours": qsum(H).ravel(), "cost_usd": qsum(C).ravel(),
        "planned_cost_usd": qsum(C_p).ravel(), "energy_kwh": np.nan, "co2_kg": np.nan,
        "feasible": True, "infeasible_reason": ""})
    det = pd.DataFrame(detail)
    summ = pd.DataFrame({
        "candidate": [o[0] for o in opts], "hardware": [o[1] for o in opts],
        "catalog_name": label("catalog_name"), "provenance": label("provenance"),
        "energy_source": label("energy_source"), "feasible": True, "infeasible_reason": "",
        "cost_usd": C.sum(axis=1), "planned_cost_usd": np.nansum(C_p, axis=1),
        "actual_to_date_usd": np.where(actual_here, C, 0.0).sum(axis=1),
        "price_per_hour_usd": r_obs, "instance_hours": H.sum(axis=1),
        "energy_kwh": np.nan, "co2_kg": np.nan})
    summ = summ.merge(det, on=["candidate", "hardware"], how="left")
    if pct_m is not None:
        for j, q in enumerate((10, 50, 90)):
            mon[f"cost_usd_p{q}"] = pct_m[j].ravel()
            qt[f"cost_usd_p{q}"] = pct_q[j].ravel()
            summ[f"cost_usd_p{q}"] = pct_t[j]
    inputs.update({"reforecast": {
        "through": a.through, "last_actual_month": month_label(m0 + last),
        "cost_column": a.cost_column, "samples": samples, "seed": seed,
        "uncertainty": {k: (list(x) if x else None) for k, x in
                        (("traffic", unc.traffic), ("growth", unc.growth), ("price", unc.price))},
        "options": det.to_dict(orient="records"),
        "volume_signal": "requests served" if served else "instance-hours"},
        "start": a.start, "samples": samples})
    return Plan(monthly=mon, quarterly=qt, summary=summ, training=None, inputs=inputs)


def _hours_in_month(number: int) -> float:
    """Hours of the calendar month ``number`` (:func:`month_number`)."""
    return (_ns_of_month(number + 1) - _ns_of_month(number)) / 3.6e12


def _tri_at(u: np.ndarray, lo: float, mode: float, hi: float) -> np.ndarray:
    """Triangular(lo, mode, hi) at uniforms ``u`` (inverse CDF); a point when lo == hi."""
    if hi <= lo:
        return np.full(len(u), mode)
    fc = (mode - lo) / (hi - lo)
    return np.where(u < fc, lo + np.sqrt(u * (hi - lo) * (mode - lo)),
                    hi - np.sqrt((1 - u) * (hi - lo) * (hi - mode)))
