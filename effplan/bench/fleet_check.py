"""The preflight of a Ray sweep (``effplan fleet check [ADDRESS]``; run by every Ray sweep before
its first point).

1. **A round trip per measuring node.** A tiny task, pinned to each node that offers the
   exclusive ``effplan_node`` resource, reports back what it sees. A reply that never arrives
   is the failure a sweep would hit on every point: most often Ray's token authentication on
   one side only (a driver whose HOME holds ``~/.ray/auth_token`` -- written by any local
   ``ray.init()`` of Ray 2.60 -- or ``RAY_AUTH_MODE=token``, against a cluster started without
   a token: the workers' replies are refused and every point would read ``OwnerDiedError``).
   The preflight names that fix instead of a sweep of error rows.
2. **What measures what.** The measuring nodes per target, with their host and GPUs.
3. **Versions.** Ray must match exactly between driver and nodes; effplan and torch versions
   that differ are warned about (figures from different torch builds are not comparable).
4. **Machines shared by several nodes.** Nodes on one host (several raylets, KubeRay pods on
   one Kubernetes node with ``$EFFPLAN_HOST_ID`` set) are serialised by the machine lock
   (:mod:`effplan.bench.hostlock`); when they do not see the same lock file they could measure at the
   same time, and the sweep is refused with the fix.

The probe is a closure, so Ray ships it by value: it runs (and says so) even on a node where
effplan is not installed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..settings import HOST_ID_ENV, PREFLIGHT_TIMEOUT_S

__all__ = ["NodeCheck", "Preflight", "preflight", "driver_uses_token"]


@dataclass(frozen=True)
class NodeCheck:
    """One measuring node as the preflight saw it; ``error`` when it did not answer."""

    node_id: str
    ip: str
    resources: Mapping[str, float]
    host_id: str = ""
    ray_version: str = ""
    effplan_version: str = ""
    torch_version: str = ""
    python_version: str = ""
    lock: tuple[int, int] | None = None
    on_kubernetes: bool = False
    host_id_given: bool = False
    import_error: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.ip}/{self.node_id[:6]}"

    @property
    def gpus(self) -> str:
        n = self.resources.get("GPU", 0)
        models = [k.split(":", 1)[1] for k in self.resources if k.startswith("accelerator_type:")]
        if not n:
            return "no GPU"
        return f"{n:g} x {'/'.join(models) or 'GPU'}"


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` found: ``problems`` stop a sweep, ``warnings`` do not."""

    address: str
    nodes: tuple[NodeCheck, ...]
    targets: Mapping[str, tuple[str, ...]]
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    info: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        """The text ``effplan fleet check`` prints."""
        lines = [f"Ray cluster {self.address}: {len(self.nodes)} measuring node(s)"]
        for n in self.nodes:
            state = f"ERROR {n.error}" if n.error else (
                f"host {n.host_id[:12]}, {n.gpus}, ray {n.ray_version}, effplan "
                f"{n.effplan_version or 'NOT INSTALLED'}, torch {n.torch_version or '?'}")
            lines.append(f"  node {n.label}: {state}")
        for label, nodes in self.targets.items():
            lines.append(f"  target {label!r}: {', '.join(nodes) if nodes else 'NO node offers it'}")
        lines += [f"  note: {m}" for m in self.info]
        lines += [f"  WARNING: {m}" for m in self.warnings]
        lines += [f"  PROBLEM: {m}" for m in self.problems]
        lines.append("OK: ready to measure" if self.ok else
                     f"NOT READY: {len(self.problems)} problem(s) above")
        return "\n".join(lines)


def driver_uses_token() -> tuple[bool, str]:
    """Whether this driver speaks Ray token authentication, and why (env or token file)."""
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    if mode:
        return mode == "token", f"RAY_AUTH_MODE={mode}"
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return True, "RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH is set"
    token = Path.home() / ".ray" / "auth_token"
    if token.exists():
        return True, f"{token} exists (a local ray.init() wrote it)"
    return False, "no token"


def _probe_fn(node_resource_exclusive: str) -> Any:
    """The probe a node runs: a closure (shipped by value, so it needs no effplan there)."""

    def probe():  # a streaming generator: its reply travels as a sweep's points do
        import importlib.metadata as md
        import os as _os
        import sys as _sys

        import ray as _ray

        out: dict[str, Any] = {"node_id": _ray.get_runtime_context().get_node_id(),
                               "ray_version": _ray.__version__,
                               "python_version": ".".join(map(str, _sys.version_info[:3])),
                               "on_kubernetes": bool(_os.environ.get("KUBERNETES_SERVICE_HOST")),
                               "host_id_given": bool(_os.environ.get("EFFPLAN_HOST_ID"))}
        for dist in ("torch", "effplan"):
            try:
                out[f"{dist}_version"] = md.version(dist)
            except md.PackageNotFoundError:
                out[f"{dist}_version"] = ""
        try:
            from effplan.bench.hostlock import lock_identity
            from effplan.bench.spool import host_id

            out["host_id"] = host_id()
            out["lock"] = list(lock_identity(node_resource_exclusive))
            if not out["effplan_version"]:
                import effplan

                out["effplan_version"] = str(getattr(effplan, "__version__", "?"))
        except ImportError as exc:  # no effplan there, or another one (without these modules)
            import hashlib
            import socket

            out["import_error"] = f"{type(exc).__name__}: {exc}"

            out["host_id"] = _os.environ.get("EFFPLAN_HOST_ID") or hashlib.sha256(
                socket.gethostname().encode()).hexdigest()[:16]
        yield out

    return probe


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:300]


def _round_trips(ray: Any, measuring: list[dict[str, Any]], exclusive: str,
                 timeout_s: float) -> dict[str, dict[str, Any] | str]:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # a streaming generator, as a sweep's tasks: the node REPORTS its items to this driver (a
    # plain task's small return rides on the driver's own call and would pass where a sweep fails)
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe_fn(exclusive))
    refs = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(): n["NodeID"] for n in measuring}
    ready, waiting = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    out: dict[str, dict[str, Any] | str] = {}
    for gen in ready:
        try:
            out[refs[gen]] = ray.get(next(gen), timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - each node's failure is reported with its reason
            out[refs[gen]] = _reason(exc)
    for ref in waiting:
        out[refs[ref]] = f"no answer within {timeout_s:g} s"
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass
    return out


def _token_hint(failures: Sequence[str]) -> str:
    uses, why = driver_uses_token()
    owner = any("OwnerDied" in f or "Authentication" in f or "no answer" in f or "unauthenticated"
                in f.lower() for f in failures)
    if not owner:
        return ""
    if uses:
        return (f" This driver uses Ray token authentication ({why}) and the nodes' replies did "
                "not reach it: the cluster was most likely started without the token (or with "
                "another). Fix: run the driver with RAY_AUTH_MODE=disabled (e.g. RAY_AUTH_MODE="
                "disabled effplan measure --ray ...), or start the cluster with the same token "
                "(RAY_AUTH_MODE=token ray start ..., with ~/.ray/auth_token or RAY_AUTH_TOKEN the "
                "same on every node and the driver).")
    return (" If the cluster uses Ray token authentication (RAY_AUTH_MODE=token), give this "
            "driver the same token (~/.ray/auth_token or RAY_AUTH_TOKEN).")


def preflight(ray: Any, targets: Iterable[Any] = ("cpu",), *, node_resource: str = "effplan_node",
              exclusive: str = "host", timeout_s: float = PREFLIGHT_TIMEOUT_S,
              address: str = "") -> Preflight:
    """Check the connected Ray cluster before measuring (see the module docstring)."""
    from .fleet_targets import Target, _feasible

    target_list = [Target.of(t) for t in targets]
    alive = [n for n in ray.nodes() if n.get("Alive")]
    measuring = [n for n in alive if n["Resources"].get(node_resource, 0) > 0]
    problems: list[str] = []
    warnings_: list[str] = []
    info: list[str] = []
    if not measuring:
        problems.append(f"no live node offers the exclusive resource {node_resource!r}: start every "
                        f"node that may measure with ray start ... --resources='{{\"{node_resource}\": "
                        "1}'")
    answers = _round_trips(ray, measuring, exclusive, timeout_s) if measuring else {}
    checks: list[NodeCheck] = []
    for n in measuring:
        got = answers.get(n["NodeID"], "no answer")
        base = dict(node_id=n["NodeID"], ip=str(n.get("NodeManagerAddress", "")),
                    resources=dict(n["Resources"]))
        if isinstance(got, str):
            checks.append(NodeCheck(**base, error=got))
            continue
        lock = got.get("lock")
        checks.append(NodeCheck(**base, host_id=str(got.get("host_id", "")),
                                ray_version=str(got.get("ray_version", "")),
                                effplan_version=str(got.get("effplan_version", "")),
                                torch_version=str(got.get("torch_version", "")),
                                python_version=str(got.get("python_version", "")),
                                lock=tuple(lock) if lock else None,
                                on_kubernetes=bool(got.get("on_kubernetes")),
                                host_id_given=bool(got.get("host_id_given")),
                                import_error=str(got.get("import_error", ""))))
    failed = [c for c in checks if c.error]
    if failed:
        problems.append(f"{len(failed)} of {len(checks)} measuring node(s) did not complete a round "
                        f"trip ({'; '.join(f'{c.label}: {c.error}' for c in failed[:4])})."
                        + _token_hint([c.error for c in failed]))
    good = [c for c in checks if not c.error]
    _versions(ray, good, problems, warnings_)
    _shared_hosts(good, exclusive, problems, warnings_, info)
    by_target = {t.label: tuple(c.label for c in checks
                                if _feasible(t, [{"Resources": c.resources}], node_resource))
                 for t in target_list}
    for label, nodes in by_target.items():
        if not nodes:
            warnings_.append(f"no measuring node offers target {label!r}: its points will be error rows")
    return Preflight(address=address, nodes=tuple(checks), targets=by_target,
                     warnings=tuple(warnings_), problems=tuple(problems), info=tuple(info))


def _versions(ray: Any, good: list[NodeCheck], problems: list[str], warnings_: list[str]) -> None:
    import importlib.metadata as md

    mine = {"ray": ray.__version__, "python": ".".join(map(str, sys.version_info[:3]))}
    for dist in ("torch", "effplan"):
        try:
            mine[dist] = md.version(dist)
        except md.PackageNotFoundError:
            mine[dist] = ""
    bad_ray = [c.label for c in good if c.ray_version != mine["ray"]]
    if bad_ray:
        problems.append(f"Ray on node(s) {bad_ray} is not the driver's Ray {mine['ray']}: install the "
                        "same Ray version everywhere (the image of deploy/Dockerfile)")
    other = [f"{c.label} ({c.import_error})" for c in good if c.effplan_version and c.import_error]
    if other:
        problems.append(f"node(s) {other} run another effplan than this driver (it lacks what a sweep "
                        "needs there): install this effplan on every node (the image of "
                        "deploy/Dockerfile) or ship it with the job's runtime environment")
    missing = [c.label for c in good if not c.effplan_version]
    if missing:
        problems.append(f"effplan is not installed on node(s) {missing}: install it there (the image "
                        "of deploy/Dockerfile) or ship it with a job-level runtime environment "
                        "(ray job submit --working-dir . / FleetOptions(runtime_env=...))")
    for dist in ("effplan", "torch"):
        seen = sorted({getattr(c, f"{dist}_version") for c in good if getattr(c, f"{dist}_version")})
        if seen and (len(seen) > 1 or (mine[dist] and seen != [mine[dist]])):
            warnings_.append(f"{dist} versions differ: driver {mine[dist] or 'none'}, nodes {seen}; "
                             "figures from different builds are not comparable")


def _shared_hosts(good: list[NodeCheck], exclusive: str, problems: list[str], warnings_: list[str],
                  info: list[str]) -> None:
    hosts: dict[str, list[NodeCheck]] = {}
    for c in good:
        if not c.import_error:  # its lock could not be looked at: reported as a version problem
            hosts.setdefault(c.host_id, []).append(c)
    for host, group in hosts.items():
        if len(group) < 2:
            continue
        labels = [c.label for c in group]
        locks = {c.lock for c in group}
        if len(locks) > 1 or None in locks:
            problems.append(f"node(s) {labels} run on one machine (host {host[:12]}) but do not share "
                            "its measurement lock file, so they could measure at the same time: give "
                            "them one lock folder ($EFFPLAN_LOCK_DIR on a shared hostPath volume, see "
                            "deploy/kuberay-rayjob.yaml), or run one Ray node per machine")
        elif exclusive == "host":
            info.append(f"node(s) {labels} share host {host[:12]}: their points are measured one at "
                        "a time (exclusive='host')")
        else:
            warnings_.append(f"node(s) {labels} share host {host[:12]} and exclusive='gpu': points on "
                             "different GPUs run at the same time and share its CPUs and memory "
                             "bandwidth")
    blind = [c.label for c in good if c.on_kubernetes and not c.host_id_given]
    if blind and len(good) > 1:
        warnings_.append(f"node(s) {blind} run on Kubernetes: pods on one Kubernetes node cannot be told apart "
                         f"unless each pod sets ${HOST_ID_ENV} to spec.nodeName (downward API) and "
                         "mounts one lock folder (see deploy/kuberay-rayjob.yaml)")
