"""Sweeps on Slurm through submitit (effplan.bench.slurm), run with submitit's LOCAL executor (no
Slurm here): the array tasks are subprocesses of this machine, so they also show that the
machine lock keeps them from timing at the same time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from effplan.models.candidates import Candidate
from effplan.errors import EffplanWarning, ValidationError
from effplan.bench.fleet_sink import _load_all as load_all
from effplan.measurement import TimingPolicy, measure

submitit = pytest.importorskip("submitit")

from effplan.bench.slurm import SlurmOptions  # noqa: E402

HERE = Path(__file__).resolve().parent
SPEC = f"{HERE / 'fleet_candidates.py'}:CANDIDATES"
POLICY = TimingPolicy(time_budget_s=0.05, min_repeats=6, warmup_calls=1, warmup_s=0.0,
                      target_ci_rel=10.0, round_agreement_rel=10.0, stall_factor=1e6,
                      max_stall_share=0.99, min_rounds=2, min_round_s=0.0, max_contention=1e6)
FAST = dict(timing=POLICY, energy=False, threads=1, isolate=False)


def finals(path):
    frame = load_all(path)
    return frame[~frame["provisional"].astype("boolean").fillna(False)].reset_index(drop=True)


def _boom() -> Candidate:  # a closure: shipped by value; Linear(4, 2) fed 3 features raises
    return Candidate("boom", model_fn=lambda: nn.Linear(4, 2), input_fn=lambda bs: torch.ones(bs, 3))


def _crash() -> Candidate:  # the array task's process dies, as on an OOM kill
    return Candidate("crash", model_fn=lambda: os._exit(3), input_fn=lambda bs: torch.ones(bs, 4))


def test_slurm_options_are_validated_and_translated():
    opts = SlurmOptions(partition="gpu", gpus_per_task=1, time_limit_min=30, cpus_per_task=8,
                        extra={"slurm_account": "proj"})
    assert opts.label == "gpu" and SlurmOptions().label == "slurm"
    assert opts.parameters("slurm") == {
        "timeout_min": 30, "tasks_per_node": 1, "nodes": 1, "name": "effplan-measure",
        "gpus_per_node": 1, "cpus_per_task": 8, "slurm_array_parallelism": 16,
        "slurm_partition": "gpu", "slurm_exclusive": True, "slurm_account": "proj"}
    # exclusive="gpu": no whole-node allocation; the local executor gets no slurm_* keys
    assert "slurm_exclusive" not in SlurmOptions(exclusive="gpu").parameters("slurm")
    assert not any(k.startswith("slurm_") for k in SlurmOptions(partition="p").parameters("local"))
    for bad in (dict(gpus_per_task=-1), dict(time_limit_min=0), dict(exclusive="node"),
                dict(cluster="pbs"), dict(cpus_per_task=0)):
        with pytest.raises(ValidationError):
            SlurmOptions(**bad)
    with pytest.raises(ValidationError, match="targets are Ray resources"):
        measure(SPEC, batch_sizes=(1,), executor="slurm", targets=["L4"], progress=False)
    with pytest.raises(ValidationError, match="SlurmOptions"):
        measure(SPEC, batch_sizes=(1,), executor="slurm", fleet=object(), progress=False)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_slurm_local_executor_sweep_with_error_rows_exclusivity_and_resume(tmp_path):
    path = tmp_path / "slurm.jsonl"
    opts = SlurmOptions(folder=tmp_path / "submitit", cluster="local", poll_s=0.2, name="cpu-pool")
    with pytest.warns(EffplanWarning, match="4 of 8 points failed"):
        m = measure([SPEC, _boom(), _crash()], batch_sizes=(1, 2), executor="slurm", fleet=opts,
                    results_path=path, progress=False, **FAST)
    frame = finals(path)
    assert len(frame) == len(m.rows) == 8
    assert set(frame["fleet_target"]) == {"cpu-pool"}
    ok = frame[frame["status"] == "ok"]
    assert sorted(zip(ok["candidate"], ok["batch_size"])) == [
        ("tiny-linear", 1), ("tiny-linear", 2), ("tiny-mlp", 1), ("tiny-mlp", 2)]
    assert (ok["latency_p50_ms"] > 0).all() and ok["fleet_node_id"].str.startswith("slurm:").all()
    # every pass streamed into the driver's store: each ok point's pass 1 is there, provisional
    every = load_all(path)
    prov = every[every["provisional"].astype("boolean").fillna(False)]
    assert (prov["timing_pass"] == 1).sum() == 4
    # a candidate that raises: error rows with the reason; a job that died: rows naming the job
    boom = frame[frame["candidate"] == "boom"]
    assert len(boom) == 2 and boom["error"].str.contains("RuntimeError").all()
    crash = frame[frame["candidate"] == "crash"]
    assert len(crash) == 2 and crash["error"].str.contains("Slurm job .* ended", regex=True).all()
    # the array tasks ran at the same time as subprocesses of this machine, but the machine lock
    # let only one of them time a point at once
    spans = sorted(zip(ok["fleet_start_unix_s"], ok["fleet_end_unix_s"]))
    for (s0, e0), (s1, _) in zip(spans, spans[1:]):
        assert s0 < e0 <= s1, f"two points overlapped on one machine: {spans}"
    assert m.to_frame()["fleet_node_id"].str.startswith("slurm:").all()

    # resume (unfinished): only the error rows run again
    with pytest.warns(EffplanWarning, match="2 of 2 points failed"):
        again = measure([SPEC, _boom()], batch_sizes=(1, 2), executor="slurm", fleet=opts,
                        results_path=path, resume=True, progress=False, **FAST)
    assert {r["candidate"] for r in again.rows} == {"boom"} and len(again.rows) == 2
    assert len(finals(path)) == 10
