"""Sweeps on Ray (effplan.fleet): targets, placement, exclusivity per node, streaming into the
store, failures and resume.

The ``ray`` tests start ONE local ``ray.cluster_utils.Cluster`` for the module: a head node that
measures nothing and two simulated nodes on this machine, one carrying ``accel_A`` and one
``accel_B`` (and each the exclusive ``effplan_node`` unit). Each node has 2 CPUs and 2 units of
its accelerator (like a node with two GPUs) while a target asks for 1, so without the exclusive
unit Ray WOULD run two measurements on a node at once: the overlap check can fail (it does when
the unit is left out of the task's resources). Nothing here contacts another host. The other
tests need no Ray running.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from effplan.records import store
from effplan.models.candidates import Candidate
from effplan.cli import main as cli
from effplan.errors import EffplanError, EffplanWarning, ValidationError
from effplan.fleet import NODE_RESOURCE, FleetOptions, Target, measure_on_ray, resolve_candidates
from effplan.fleet import _load_all as load_all  # every record: two targets here share one host
from effplan.records.samples import TimingPolicy
from effplan.measurement import measure

HERE = Path(__file__).resolve().parent
SPEC = f"{HERE / 'fleet_candidates.py'}:CANDIDATES"  # shipped by import path (file.py:attr)


def finals(path):
    """The final record of every point in ``path`` (every record, two targets on one host
    included, less the provisional ones a later pass superseded)."""
    frame = load_all(path)
    prov = frame["provisional"].astype("boolean").fillna(False) if "provisional" in frame else False
    return frame[~prov].reset_index(drop=True)


def _fast() -> dict:
    """Harness settings for tiny models: short budgets, and a stop rule that accepts any spread
    (these tests are about where and when points run, not about timing quality; a point must be
    stable to count as finished on resume, and here two simulated nodes share this machine's
    cores, so none would be). One process per task: no per-point process."""
    policy = TimingPolicy(time_budget_s=0.05, min_repeats=6, warmup_calls=1, warmup_s=0.0,
                          target_ci_rel=10.0, round_agreement_rel=10.0, stall_factor=1e6,
                          max_stall_share=0.99, min_rounds=2, min_round_s=0.0, max_contention=1e6)
    return dict(timing=policy, energy=False, threads=1, isolate=False)


FAST = _fast()


# ------------------------------------------------------------------------- no Ray needed
def test_target_parse_and_resources():
    assert Target.parse("L4") == Target(accelerator_type="L4", num_gpus=1)
    assert Target.parse("H100:2").required_resources() == {
        NODE_RESOURCE: 1.0, "CPU": 1.0, "GPU": 2.0, "accelerator_type:H100": 0.001}
    assert Target.parse("gpu").label == "gpu" and Target.parse("gpu").device == "cuda"
    assert Target.parse("cpu").label == "cpu" and Target.parse("cpu").device == "cpu"
    pool = Target.parse("pool_a=1+fast=2")
    assert pool.resources == {"fast": 2.0, "pool_a": 1.0} and pool.label == "fast=2+pool_a"
    assert pool.ray_options() == {"num_cpus": 1, "num_gpus": 0,
                                  "resources": {NODE_RESOURCE: 1, "fast": 2.0, "pool_a": 1.0}}
    assert Target.of({"accel_A": 1}).label == "accel_A"
    with pytest.raises(ValidationError, match="resources"):
        Target(resources={"GPU": 1})
    with pytest.raises(ValidationError, match="num_gpus"):
        Target(num_gpus=-1)
    with pytest.raises(ValidationError, match="target"):
        Target.parse("pool=lots")


def test_import_path_candidates_and_bad_paths():
    assert [c.name for c in resolve_candidates(SPEC)] == ["tiny-linear", "tiny-mlp"]
    with pytest.raises(ValidationError, match="import path"):
        resolve_candidates("no_colon_here")
    with pytest.raises(ValidationError, match="no file"):
        resolve_candidates("missing_dir/nothing.py:X")
    with pytest.raises(ValidationError, match="has no 'NOPE'"):
        resolve_candidates(f"{HERE / 'fleet_candidates.py'}:NOPE")


def test_ray_options_need_the_ray_executor_and_ray_missing_says_how_to_install(monkeypatch):
    cands = resolve_candidates(SPEC)
    with pytest.raises(ValidationError, match="targets.*executor='ray'"):
        measure(cands, batch_sizes=(1,), targets=["L4"])
    with pytest.raises(ValidationError, match="executor"):
        measure(cands, batch_sizes=(1,), executor="dask")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(EffplanError, match=r"pip install 'effplan\[ray\]'"):
        measure(cands, batch_sizes=(1,), executor="ray", targets=["cpu"], progress=False)


def test_cli_target_needs_ray(tmp_path, capsys):
    from effplan.cli import build_parser

    args = build_parser().parse_args(["measure", "--ray", "--target", "L4", "--target", "gpu"])
    assert args.ray == "local" and args.target == ["L4", "gpu"]
    assert build_parser().parse_args(["measure", "--ray", "auto"]).ray == "auto"
    assert cli(["measure", "--target", "L4", "--out", str(tmp_path / "x.jsonl"), "--quiet"]) == 2
    assert "--target needs --ray" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_passes_ray_and_targets_to_measure_in_both_modes(monkeypatch, tmp_path):
    import effplan.decoders
    import effplan.examples
    import effplan.measurement

    seen = []

    def fake_measure(candidates, **kwargs):
        seen.append(kwargs)
        return effplan.measurement.Measurements(rows=())

    monkeypatch.setattr(effplan.measurement, "measure", fake_measure)
    monkeypatch.setattr(effplan.examples, "digits_candidates", lambda seed=0: [])
    monkeypatch.setattr(effplan.decoders, "decoder_candidates", lambda seed=0: [])
    out = str(tmp_path / "x.jsonl")
    assert cli(["measure", "--ray", "--target", "L4", "--target", "H100", "--out", out, "--quiet"]) == 0
    assert cli(["measure", "--mode", "generation", "--ray", "ray://head:10001", "--out", out,
                "--quiet"]) == 0
    assert cli(["measure", "--out", out, "--quiet"]) == 0
    assert [(k.get("executor"), k.get("ray_address", "-"), k.get("targets", "-")) for k in seen] == [
        ("ray", None, ["L4", "H100"]), ("ray", "ray://head:10001", None), (None, "-", "-")]


# ------------------------------------------------------------------------- on a local cluster
@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # a lost node is noticed within ~2 s (Ray's default health check takes ~15 s)
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "_system_config": {"health_check_period_ms": 500,
                                          "health_check_failure_threshold": 3}})
    for res in ({"accel_A": 2}, {"accel_B": 2}):
        c.add_node(num_cpus=2, resources={**res, NODE_RESOURCE: 1},
                   object_store_memory=80 * 2**20)
    ray.init(address=c.address, log_to_driver=False)
    try:
        c.wait_for_nodes()
        by_resource = {r: [n["NodeID"] for n in ray.nodes() if n["Alive"] and r in n["Resources"]]
                       for r in ("accel_A", "accel_B")}
        yield SimpleNamespace(cluster=c, nodes=by_resource)
    finally:
        ray.shutdown()
        c.shutdown()


def _boom_candidate() -> Candidate:
    # defined here (not importable by the workers): Ray ships it with cloudpickle.
    # Linear(4, 2) fed 3 features raises a RuntimeError in forward.
    return Candidate("boom", model_fn=lambda: nn.Linear(4, 2), input_fn=lambda bs: torch.ones(bs, 3))


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_sweep_places_points_one_at_a_time_per_node_and_resumes(cluster, tmp_path):
    path = tmp_path / "fleet.jsonl"
    targets = [Target(resources={"accel_A": 1}), {"accel_B": 1}]
    cands = [SPEC, _boom_candidate()]
    with pytest.warns(EffplanWarning, match="4 of 12 points failed"):
        m = measure(cands, batch_sizes=(1, 2), executor="ray", targets=targets,
                    results_path=path, progress=True, **FAST)
    every = load_all(path)
    frame = finals(path)
    assert len(frame) == len(m.rows) == 12  # 3 candidates x 2 batch sizes x 2 targets
    # every timing pass reached the driver's store as it was saved: pass 1 of each ok point is
    # there as a provisional record, before the point's final record
    prov = every[every["provisional"].astype("boolean").fillna(False)]
    assert (prov["timing_pass"] == 1).sum() == 8 and (prov["stable"] == False).all()  # noqa: E712
    for _, p in prov[prov["timing_pass"] == 1].iterrows():
        later = every[(every["candidate"] == p["candidate"]) & (every["batch_size"] == p["batch_size"])
                      & (every["fleet_target"] == p["fleet_target"])]
        passes = list(later["timing_pass"])  # 1, 2 (and 3 when a not-stable point was retried)
        assert passes[:2] == [1, 2] and passes == sorted(passes) and not later["provisional"].iloc[-1]
    # to_frame keeps where and on which machine each point was measured
    mf = m.to_frame()
    assert mf["fleet_node_id"].str.len().gt(0).all() and mf["hw_host_hash"].str.len().gt(0).all()
    assert set(mf["fleet_target"]) == {"accel_A", "accel_B"}

    ok = frame[frame["status"] == "ok"]
    assert sorted(zip(ok["candidate"], ok["batch_size"], ok["fleet_target"])) == sorted(
        (c, b, t) for c in ("tiny-linear", "tiny-mlp") for b in (1, 2) for t in ("accel_A", "accel_B"))
    assert (ok["latency_p50_ms"] > 0).all() and (ok["provenance"] == "measured").all()
    # each point ran on a node offering the resource its target asked for
    for _, row in frame.iterrows():
        assert row["fleet_node_id"] in cluster.nodes[row["fleet_target"]], row.to_dict()
    # raw samples beside the results, one line per pass of each ok point
    assert len(store.samples_path(path).read_text().splitlines()) == 16
    # the worker's hardware identity travelled with every row
    assert (frame["hw_host_hash"].str.len() > 0).all() and (frame["hardware_id"].str.len() > 0).all()

    # a candidate that raises: error rows naming the node and the reason; the others finished
    err = frame[frame["status"] == "error"]
    assert set(err["candidate"]) == {"boom"} and len(err) == 4
    assert err["error"].str.contains("RuntimeError").all()

    # the two nodes run on ONE machine (same hw_host_hash): never two points at once on it,
    # whichever node they ran on (wall clock recorded on the workers, inside the machine lock)
    assert frame["hw_host_hash"].nunique() == 1 and frame["fleet_node_id"].nunique() == 2
    spans = sorted(zip(frame["fleet_start_unix_s"], frame["fleet_end_unix_s"]))
    assert len(spans) == 12
    for (s0, e0), (s1, _) in zip(spans, spans[1:]):
        assert s0 < e0 <= s1, f"two measurements overlapped on one machine: {spans}"

    # resume: finished points are skipped; error points are not finished, so they run again
    with pytest.warns(EffplanWarning, match="4 of 4 points failed"):
        again = measure(cands, batch_sizes=(1, 2), executor="ray", targets=targets,
                        results_path=path, resume=True, progress=False, **FAST)
    assert {r["candidate"] for r in again.rows} == {"boom"} and len(again.rows) == 4
    only_ok = measure_on_ray(SPEC, (1, 2), targets=targets, results_path=path, resume=True,
                             progress=False, **FAST)
    assert len(only_ok.rows) == 0
    assert len(finals(path)) == 16


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_crashed_worker_is_retried_a_bounded_number_of_times_and_infeasible_target_errors(
        cluster, tmp_path):
    attempts = tmp_path / "attempts.txt"
    where = str(attempts)

    def crash() -> nn.Module:  # the worker process dies, as on an OOM kill
        with open(where, "a") as fh:
            fh.write("attempt\n")
        os._exit(1)

    cand = Candidate("crash", model_fn=crash, input_fn=lambda bs: torch.ones(bs, 4))
    path = tmp_path / "crash.jsonl"
    with pytest.warns(EffplanWarning, match="4 of 4 points failed"):
        measure_on_ray([cand], (1, 2), targets=[{"accel_A": 1}, {"accel_C": 1}],
                       results_path=path, progress=False, fleet=FleetOptions(max_retries=1), **FAST)
    frame = load_all(path)
    crashed = frame[frame["fleet_target"] == "accel_A"]
    # max_retries=1: two attempts, then every point of the task not yet received is an error row
    assert attempts.read_text().count("attempt") == 2
    assert sorted(crashed["batch_size"]) == [1, 2] and (crashed["status"] == "error").all()
    assert crashed["fleet_node_id"].isin(cluster.nodes["accel_A"]).all()
    assert crashed["error"].str.contains("node ").all()
    assert crashed["error"].str.contains("Worker|died|crash", case=False).all()
    # no node offers accel_C: an error row at once, not a task that waits forever
    nowhere = frame[frame["fleet_target"] == "accel_C"]
    assert sorted(nowhere["batch_size"]) == [1, 2] and (nowhere["fleet_node_id"] == "").all()
    assert nowhere["error"].str.contains("no live node offers").all()


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_a_point_that_cannot_be_saved_stays_in_the_result_with_the_reason(cluster, tmp_path,
                                                                         monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "append", disk_full)
    path = tmp_path / "full.jsonl"
    with pytest.warns(EffplanWarning, match="2 points could not be saved"):
        m = measure_on_ray(SPEC, (1,), targets=[{"accel_C": 1}], results_path=path,
                           progress=False, **FAST)  # no node offers accel_C: error rows at once
    assert (not path.exists() or path.read_text() == "") and len(m.rows) == 2
    assert all("no live node offers" in r["error"] and "not saved to" in r["error"]
               and "No space left" in r["error"] for r in m.rows)


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_cli_measures_on_the_fleet(cluster, tmp_path, capsys):
    # the built-in digits candidate (closures in effplan.examples, cloudpickled), the harness's
    # defaults otherwise; the connection the fixture opened is used as it is
    out = tmp_path / "cli.jsonl"
    rc = cli(["measure", "--ray", "auto", "--target", "accel_B=1",
              "--candidates", "digits-mlp-student", "--batch-sizes", "1", "--time-budget-s", "0.05",
              "--energy-window-s", "0.2", "--threads", "1", "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    df = finals(out)
    assert df["fleet_target"].tolist() == ["accel_B"]
    assert (df["status"] == "ok").all() and (df["latency_p50_ms"] > 0).all()
    for _, row in df.iterrows():
        assert row["fleet_node_id"] in cluster.nodes[row["fleet_target"]]


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_interrupted_driver_keeps_every_finished_point_and_resume_completes(cluster, tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "interrupted.jsonl"
    targets = [{"accel_A": 1}, {"accel_B": 1}]
    real_append = store.append
    written = []

    def append_then_interrupt(*args, **kwargs):  # Ctrl-C right after the third point is stored
        written.append(real_append(*args, **kwargs))
        if len(written) == 3:
            raise KeyboardInterrupt
        return written[-1]

    monkeypatch.setattr(store, "append", append_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        measure_on_ray(SPEC, (1, 2, 4), targets=targets, results_path=path, progress=False, **FAST)
    monkeypatch.setattr(store, "append", real_append)
    assert len(load_all(path)) == 3  # every record received before the interrupt is on disk
    # some of them may be provisional (pass 1 of a point whose pass 2 never came): measured again
    kept = len(finals(path))

    # resume="unfinished" (resume=True): a finished point is kept even if it is not stable (on
    # 2 shared cores one may not be; the old rule measured it again, and this test then found a
    # duplicate point once in a while)
    rest = measure_on_ray(SPEC, (1, 2, 4), targets=targets, results_path=path, resume=True,
                          progress=False, **FAST)
    assert len(rest.rows) == 12 - kept
    frame = finals(path)
    keys = list(zip(frame["candidate"], frame["fleet_target"], frame["batch_size"]))
    assert len(keys) == len(set(keys)) == 12 and (frame["status"] == "ok").all()


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_lost_node_gives_error_rows_naming_it_and_the_sweep_ends(cluster, tmp_path):
    import ray

    node = cluster.cluster.add_node(num_cpus=1, resources={"accel_C": 1, NODE_RESOURCE: 1},
                                    object_store_memory=80 * 2**20)
    cluster.cluster.wait_for_nodes()
    started = tmp_path / "started.txt"
    where = str(started)

    def slow() -> nn.Module:  # long enough for the node to be removed under it
        Path(where).write_text("started")
        time.sleep(120)
        return nn.Linear(4, 2)

    def remove_once_started() -> None:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        cluster.cluster.remove_node(node, allow_graceful=False)

    lost_id = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "accel_C" in n["Resources"]]
    remover = threading.Thread(target=remove_once_started, daemon=True)
    remover.start()
    path = tmp_path / "lost.jsonl"
    t0 = time.monotonic()
    with pytest.warns(EffplanWarning, match="2 of 2 points failed"):
        measure_on_ray([Candidate("slow", slow, lambda bs: torch.ones(bs, 4))], (1, 2),
                       targets=[{"accel_C": 1}], results_path=path, progress=False,
                       fleet=FleetOptions(max_retries=1), **FAST)
    remover.join(timeout=60)
    assert time.monotonic() - t0 < 110  # ended well before the 120 s sleep would have
    frame = load_all(path)
    assert sorted(frame["batch_size"]) == [1, 2] and (frame["status"] == "error").all()
    assert (frame["fleet_node_id"] == lost_id[0]).all()
    # Ray retried the task (max_retries=1) but no live node offers accel_C any more
    assert frame["error"].str.contains("any more: node lost").all()
    assert frame["error"].str.startswith(f"node {frame['fleet_node_ip'].iloc[0]}/{lost_id[0][:6]}").all()


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_generation_points_on_the_fleet_one_row_per_prompt_length(cluster, tmp_path):
    transformers = pytest.importorskip("transformers")
    from effplan.generation import hf_candidate

    cfg = transformers.LlamaConfig(num_hidden_layers=1, hidden_size=32, intermediate_size=64,
                                   num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                                   max_position_embeddings=64)
    path = tmp_path / "gen.jsonl"
    m = measure(hf_candidate("llama-tiny", cfg), batch_sizes=(1, 2), mode="generation",
                prompt_tokens=(4, 8), output_tokens=2, executor="ray", targets=[{"accel_A": 1}],
                results_path=path, progress=False, **FAST)
    frame = finals(path)
    assert len(m.rows) == len(frame) == 4 and (frame["status"] == "ok").all(), frame["error"].tolist()
    assert sorted(zip(frame["batch_size"], frame["prompt_tokens"])) == [(1, 4), (1, 8), (2, 4), (2, 8)]
    assert (frame["mode"] == "generation").all() and (frame["ttft_p50_ms"] > 0).all()
    assert frame["fleet_node_id"].isin(cluster.nodes["accel_A"]).all()


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_a_fleet_task_measures_its_batch_sizes_in_one_worker_process(cluster, tmp_path):
    # the local harness's worker reuse on the fleet: one worker per task (candidate x target),
    # alive across the task's batch sizes and passes, ended with the task
    path = tmp_path / "fleet.jsonl"
    # threads=None: the one thread rule of local sweeps (effplan.bench.threads), not "every CPU of
    # the node": these tiny models (64 and 384 FLOPs a call at batch 1) are timed on 1 thread
    m = measure(SPEC, batch_sizes=(1, 2, 4), executor="ray", targets=[{"accel_B": 1}],
                results_path=path, progress=False,
                **{**FAST, "isolate": True, "passes": 2, "threads": None})
    frame = finals(path)
    assert len(m.rows) == len(frame) == 6 and (frame["status"] == "ok").all(), frame["error"].tolist()
    assert set(frame["isolation"]) == {"worker"} and set(frame["timing_pass"]) == {2}
    assert set(frame["threads"]) == {1}
    pids = frame.groupby("candidate")["worker_pid"].nunique()
    assert pids.to_dict() == {"tiny-linear": 1, "tiny-mlp": 1}
    assert frame["worker_pid"].nunique() == 2


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_worker_side_effplan_error_is_readable_and_file_candidates_travel_as_objects(
        cluster, tmp_path, monkeypatch):
    # resolving the candidates raises an effplan ValidationError on the node (its __init__
    # takes (field, message): Ray could not rebuild it and sent "UnserializableException")
    monkeypatch.setenv("EFFPLAN_TEST_DRIVER", "1")
    path = tmp_path / "err.jsonl"
    with pytest.warns(EffplanWarning, match="2 of 2 points failed"):
        measure_on_ray(f"{HERE / 'fleet_candidates.py'}:only_on_the_driver", (1,),
                       targets=[{"accel_A": 1}], results_path=path, progress=False,
                       fleet=FleetOptions(preflight=False), **FAST)
    err = load_all(path)
    assert len(err) == 2 and (err["status"] == "error").all()
    assert err["error"].str.contains(
        "ValidationError: candidates: these candidates are built on the driver only").all(), err["error"]
    assert err["fleet_node_id"].isin(cluster.nodes["accel_A"]).all()  # it names the node
    # Candidates loaded from a file.py path, passed as OBJECTS: shipped by value by Ray's own
    # cloudpickle (they failed with "No module named '_effplan_fleet_...'")
    objs = resolve_candidates(SPEC)
    m = measure_on_ray(objs[:1], (1,), targets=[{"accel_A": 1}], progress=False,
                       fleet=FleetOptions(preflight=False), **{**FAST, "passes": 1})
    assert [r["status"] for r in m.rows] == ["ok"], [r["error"] for r in m.rows]


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_cli_exits_non_zero_when_every_fleet_point_fails(cluster, tmp_path, capsys):
    out = tmp_path / "none.jsonl"
    rc = cli(["measure", "--ray", "auto", "--target", "accel_C=1", "--candidates", "digits-mlp-student",
              "--batch-sizes", "1", "2", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 4
    assert ("effplan measure: FAILED: 2 of 2 points failed (more than 50% allowed, --max-failed-share); "
            "first: digits-mlp-student bs=1: no node: no live node offers") in err
    assert (load_all(out)["status"] == "error").all()


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_preflight_lists_nodes_per_target_and_the_shared_host(cluster):
    import ray

    from effplan.bench.fleet_check import preflight

    check = preflight(ray, [{"accel_A": 1}, {"accel_B": 1}, {"accel_C": 1}], timeout_s=120,
                      address=cluster.cluster.address)
    assert check.ok, check.report()
    assert len(check.nodes) == 2 and all(not n.error for n in check.nodes)
    assert {t: len(n) for t, n in check.targets.items()} == {"accel_A": 1, "accel_B": 1, "accel_C": 0}
    assert len({n.host_id for n in check.nodes}) == 1 and len({n.lock for n in check.nodes}) == 1
    report = check.report()
    assert "share host" in report and "one at a time (exclusive='host')" in report
    assert "no measuring node offers target 'accel_C'" in report and "OK: ready to measure" in report
    assert all(n.ray_version == ray.__version__ and n.effplan_version for n in check.nodes)


def _driver(tmp_path, script, env=None, timeout=300):
    import subprocess

    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(HERE.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        **(env or {})}
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_preflight_catches_a_token_mismatch(cluster, tmp_path):
    # a driver with Ray token authentication (RAY_AUTH_MODE=token, as after any local ray.init()
    # wrote ~/.ray/auth_token) against this cluster, started without a token: the nodes'
    # replies never reach it; the preflight says so and names the fix
    script = ("import sys; from effplan.cli import main; "
              f"sys.exit(main(['fleet', 'check', {cluster.cluster.address!r}, '--timeout-s', '10']))")
    done = _driver(tmp_path, script, env={"RAY_AUTH_MODE": "token", "HOME": str(tmp_path),
                                          "RAY_AUTH_TOKEN": "0123456789abcdef0123456789abcdef"})
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "did not complete a round trip" in out and "RAY_AUTH_MODE=token" in out, out
    assert "RAY_AUTH_MODE=disabled" in out and "NOT READY" in out, out


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_a_job_level_runtime_env_ships_a_file_path_candidate(cluster, tmp_path):
    # the candidates file exists only in the job's working_dir (the driver's folder here): the
    # job-level runtime environment ships it to every node, where the relative path resolves
    (tmp_path / "mycands.py").write_text((HERE / "fleet_candidates.py").read_text())
    script = f"""
import json
import effplan
from effplan.fleet import FleetOptions
from effplan.measurement import TimingPolicy
policy = TimingPolicy(time_budget_s=0.05, min_repeats=6, warmup_calls=1, warmup_s=0.0,
                      target_ci_rel=10.0, round_agreement_rel=10.0, stall_factor=1e6,
                      max_stall_share=0.99, min_rounds=2, min_round_s=0.0, max_contention=1e6)
m = effplan.measure("mycands.py:CANDIDATES", batch_sizes=(1,), executor="ray",
                    ray_address={cluster.cluster.address!r}, targets=[{{"accel_B": 1}}],
                    results_path="out.jsonl", progress=False, timing=policy, energy=False,
                    threads=1, isolate=False, passes=1,
                    fleet=FleetOptions(runtime_env={{"working_dir": "."}}, preflight=False))
print(json.dumps([[r["candidate"], r["status"], r["error"], r["fleet_node_id"]] for r in m.rows]))
"""
    done = _driver(tmp_path, script)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(c, s) for c, s, _, _ in rows] == [("tiny-linear", "ok"), ("tiny-mlp", "ok")], rows
    assert all(node in cluster.nodes["accel_B"] for *_, node in rows)


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_a_second_address_is_refused_while_connected(cluster):
    with pytest.raises(ValidationError, match="already connected"):
        measure_on_ray(SPEC, (1,), ray_address="203.0.113.9:6379", progress=False, **FAST)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_losing_the_head_ends_the_sweep_with_error_rows_and_the_resume_line(tmp_path):
    # a cluster of its own (this test kills its head), the CLI as a user runs it
    import subprocess

    pytest.importorskip("ray")
    mark, go, out = tmp_path / "started", tmp_path / "go", tmp_path / "lost.jsonl"
    env = {**os.environ, "EFFPLAN_TEST_MARK": str(mark), "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    head = subprocess.Popen([sys.executable, str(HERE / "fleet_head.py"), str(go)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = head.stdout.readline().strip()
        assert address, "the test cluster did not start"

        def kill_head_once_a_point_runs() -> None:
            deadline = time.monotonic() + 240
            while not mark.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            go.write_text("go")

        threading.Thread(target=kill_head_once_a_point_runs, daemon=True).start()
        done = subprocess.run(
            [sys.executable, "-m", "effplan.cli", "measure", "--ray", address, "--candidates-from",
             f"{HERE / 'fleet_slow.py'}:CANDIDATES", "--batch-sizes", "1", "2", "--threads", "1",
             "--time-budget-s", "0.05", "--out", str(out), "--quiet"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    finally:
        head.stdin.close()
        head.wait(timeout=120)
    err = done.stderr
    # ended by effplan (status 4), not by Ray's core after 60 s (status 1), and it says so
    assert done.returncode == 4, err[-3000:]
    assert "the Ray head (GCS) at" in err and "did not answer for 15 s: the sweep ended" in err
    assert f"2 points saved to {out}; re-run with --resume" in err
    frame = load_all(out)
    assert sorted(frame["batch_size"]) == [1, 2] and (frame["status"] == "error").all()
    assert frame["error"].str.contains("the Ray head \\(GCS\\) at .* did not answer", regex=True).all()
