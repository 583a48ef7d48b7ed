"""The Binder environment (binder/) agrees with pyproject.toml and the Makefile's torch pin."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"


def _pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _binder_requirements() -> tuple[dict[str, Requirement], list[str]]:
    """(canonical name -> Requirement, option lines such as --extra-index-url)."""
    reqs: dict[str, Requirement] = {}
    options: list[str] = []
    for raw in (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"binder/requirements.txt lists {req.name} twice"
        reqs[name] = req
    return reqs, options


def _pinned_version(req: Requirement) -> Version:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", (
        f"binder/requirements.txt: {req} must be pinned with a single '==' (Binder builds must "
        "be reproducible)")
    return Version(specs[0].version)


def _makefile_torch_version() -> str:
    m = re.search(r"^TORCH_VERSION\s*:?=\s*(\S+)\s*$", (REPO / "Makefile").read_text(), re.M)
    assert m, "Makefile has no 'TORCH_VERSION := x.y.z' line"
    return m.group(1)


def test_every_runtime_dependency_is_pinned_within_its_pyproject_range():
    reqs, _ = _binder_requirements()
    deps = [Requirement(d) for d in _pyproject()["project"]["dependencies"]]
    assert deps, "pyproject.toml declares no runtime dependencies"
    for dep in deps:
        name = canonicalize_name(dep.name)
        assert name in reqs, f"runtime dependency {dep.name} missing from binder/requirements.txt"
        pinned = _pinned_version(reqs[name])
        # A local build tag (+cpu) is fine for ranges such as >=2.13.
        assert dep.specifier.contains(pinned, prereleases=True), (
            f"binder pins {dep.name}=={pinned}, outside pyproject's range '{dep.specifier}'")


def test_report_extra_is_pinned_within_its_range():
    """Voila (the dashboard link) and papermill/nbconvert (reports) come from the report extra."""
    reqs, _ = _binder_requirements()
    for dep in (Requirement(d) for d in _pyproject()["project"]["optional-dependencies"]["report"]):
        name = canonicalize_name(dep.name)
        assert name in reqs, f"report dependency {dep.name} missing from binder/requirements.txt"
        assert dep.specifier.contains(_pinned_version(reqs[name]), prereleases=True), (
            f"binder pins {reqs[name]}, outside pyproject's range '{dep.specifier}'")


def test_slim_extra_is_pinned_within_its_range():
    """Notebook 01 makes int8 variants with torchao (effplan[slim]); the Makefile installs it."""
    reqs, _ = _binder_requirements()
    for dep in (Requirement(d) for d in _pyproject()["project"]["optional-dependencies"]["slim"]):
        name = canonicalize_name(dep.name)
        assert name in reqs, f"slim dependency {dep.name} missing from binder/requirements.txt"
        assert dep.specifier.contains(_pinned_version(reqs[name]), prereleases=True), (
            f"binder pins {reqs[name]}, outside pyproject's range '{dep.specifier}'")
    assert re.search(r"\.\[dev,[a-z,]*\bslim\b[a-z,]*\]", (REPO / "Makefile").read_text())


def test_torch_is_the_cpu_build_of_the_makefile_release():
    reqs, options = _binder_requirements()
    torch_pin = _pinned_version(reqs["torch"])
    assert torch_pin.local == "cpu", f"binder must pin the CPU-only torch build, got {torch_pin}"
    assert torch_pin.public == _makefile_torch_version(), (
        f"binder torch {torch_pin.public} != Makefile TORCH_VERSION {_makefile_torch_version()}")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options


def test_makefile_torch_version_satisfies_pyproject_range():
    torch_dep = next(Requirement(d) for d in _pyproject()["project"]["dependencies"]
                     if canonicalize_name(Requirement(d).name) == "torch")
    assert torch_dep.specifier.contains(Version(_makefile_torch_version()))


def test_runtime_python_satisfies_requires_python():
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    m = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert m, f"binder/runtime.txt must read 'python-X.Y', got {runtime!r}"
    assert runtime == "python-3.11"
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert requires.contains(Version(m.group(1)))


def test_post_build_installs_effplan_without_touching_the_pins():
    post = BINDER / "postBuild"
    text = post.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines[0] == "#!/bin/bash"
    assert "set -e" in lines
    install = [ln for ln in lines if re.search(r"\bpip install\b", ln)]
    assert install, "postBuild must pip install effplan"
    assert all("--no-deps" in ln and re.search(r"(-e )?\.$", ln) for ln in install), install
    if os.name == "posix":
        assert os.access(post, os.X_OK), "binder/postBuild must be executable (chmod +x)"


@pytest.mark.parametrize("target", ["04_quarterly_what_if.ipynb"])
def test_binder_links_point_at_files_that_exist(target):
    """The README badges open lab/tree/notebooks and voila/render/notebooks/<dashboard>."""
    assert (REPO / "notebooks").is_dir()
    assert (REPO / "notebooks" / target).is_file()
