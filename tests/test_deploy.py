"""The shipping recipes (deploy/): the Dockerfile parsed and checked against the Makefile and
pyproject (no container engine here: nothing is built), the KubeRay manifest validated against
what effplan needs, and the documented commands parsed by effplan's own CLI."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from effplan import settings as defaults
from effplan.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: comments dropped, continuations joined."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, "a continuation line never ends"
    return out


def makefile_extras() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    return re.search(r'-e "\.\[([a-z,]+)\]"', text).group(1).split(",")


def test_dockerfile_installs_the_makefile_extras_and_its_torch():
    steps = dockerfile(DEPLOY / "Dockerfile")
    kinds = [k for k, _ in steps]
    assert set(kinds) <= {"ARG", "FROM", "WORKDIR", "COPY", "RUN", "USER", "ENV"}, kinds
    args = {}
    for k, rest in steps:
        if k == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name, value)
    assert steps[kinds.index("FROM")][1] == "rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${VARIANT}"
    torch_version = re.search(r"^TORCH_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert args["TORCH_VERSION"] == torch_version
    # the Ray it is built on is the Ray pyproject says effplan is tested with
    tested = re.search(r"tested with\s+# Ray (\S+?)\.\s", (ROOT / "pyproject.toml").read_text())
    assert tested and args["RAY_VERSION"] == tested.group(1)
    runs = [rest for k, rest in steps if k == "RUN"]
    install = next(r for r in runs if "pip install" in r and ".[" in r)
    assert '"torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${VARIANT}"' in install
    extras = re.search(r'"\.\[([a-z,]+)\]"', install).group(1).split(",")
    assert extras == [e for e in makefile_extras() if e != "dev"]  # the Makefile's, less dev
    import tomllib

    known = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(known)
    assert any(d.startswith("ray[default]") for d in known["ray"])  # ray:// and job submission
    # every RUN line is valid shell, every COPY source exists, the lock folder is effplan's
    for r in runs:
        assert subprocess.run(["bash", "-n", "-c", r]).returncode == 0, r
    for k, rest in steps:
        if k == "COPY":
            *srcs, _dest = [w for w in shlex.split(rest) if not w.startswith("--")]
            assert all((ROOT / s).exists() for s in srcs), srcs
    assert f"{defaults.LOCK_DIR_ENV}=/var/lock/effplan" in [rest for k, rest in steps if k == "ENV"]


def _containers(spec: dict) -> list[dict]:
    return spec["template"]["spec"]["containers"]


def _mounts(group: dict) -> dict[str, dict]:
    """mount path -> its volume, for the group's first container."""
    volumes = {v["name"]: v for v in group["template"]["spec"].get("volumes", [])}
    return {m["mountPath"]: volumes[m["name"]] for m in _containers(group)[0].get("volumeMounts", [])}


def test_kuberay_rayjob_manifest_measures_one_point_per_machine_and_keeps_the_results():
    yaml = pytest.importorskip("yaml")
    docs = list(yaml.safe_load_all((DEPLOY / "kuberay-rayjob.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    assert set(by_kind) == {"PersistentVolumeClaim", "RayJob"}
    job = by_kind["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    cluster = job["spec"]["rayClusterSpec"]
    steps = dockerfile(DEPLOY / "Dockerfile")
    ray_version = next(r.split("=", 1)[1] for k, r in steps if k == "ARG" and r.startswith("RAY_VERSION="))
    assert cluster["rayVersion"] == ray_version
    # the entrypoint is an effplan command line its own parser accepts
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["effplan", "measure"]
    args = build_parser().parse_args(argv[1:])
    assert args.ray == "auto" and args.resume == "unfinished" and args.target == ["cpu", "L4"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and "resources" not in head["rayStartParams"]
    # the results file is on the claim mounted on the head (the driver runs there)
    head_mounts = _mounts(head)
    results_dir = next(p for p in head_mounts if str(args.out).startswith(p + "/"))
    assert head_mounts[results_dir]["persistentVolumeClaim"]["claimName"] == \
        by_kind["PersistentVolumeClaim"]["metadata"]["name"]
    cand_file = args.candidates_from[0].rsplit(":", 1)[0]
    groups = cluster["workerGroupSpecs"]
    assert len(groups) == 2
    for group in [head] + groups:  # the candidates file is mounted where the entrypoint reads it
        mounts = _mounts(group)
        assert any(cand_file.startswith(p + "/") and "configMap" in v for p, v in mounts.items())
        assert _containers(group)[0]["image"].endswith(("effplan:cpu", "effplan:cuda"))
    for group in groups:
        # exactly one effplan_node unit per pod (KubeRay's quoted JSON)
        assert json.loads(json.loads(group["rayStartParams"]["resources"])) == {"effplan_node": 1}
        env = {e["name"]: e for e in _containers(group)[0]["env"]}
        assert env[defaults.HOST_ID_ENV]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
        lock = env[defaults.LOCK_DIR_ENV]["value"]
        assert _mounts(group)[lock]["hostPath"]["path"] == lock  # one lock folder per machine
    gpu = next(g for g in groups if "l4" in g["groupName"])
    assert _containers(gpu)[0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert _containers(gpu)[0]["image"].endswith("effplan:cuda")


def test_documented_commands_parse():
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.split(" #")[0].strip()
            if "effplan measure" in cmd or "effplan fleet" in cmd:
                commands.append(cmd[cmd.index("effplan "):])
    assert len(commands) >= 3
    for cmd in commands:
        build_parser().parse_args(shlex.split(cmd)[1:])
    submit = next(b for b in blocks if "ray job submit" in b).replace("\\\n", " ")
    assert "--working-dir ." in submit and " -- " in submit
