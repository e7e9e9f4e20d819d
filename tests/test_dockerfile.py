"""The container image: the Dockerfile's invariants, and its build steps run without Docker.

There is no Docker engine here or in CI, so the Dockerfile is parsed and held to what the
deployment relies on (non-root uid 10001, a pinned base, a checksum-verified Helm 4, the
entry point, a health check), and scripts/check-image-steps.sh runs the build stage's steps:
wheel from the build context, install into a fresh environment, run it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
SCRIPT = ROOT / "scripts" / "check-image-steps.sh"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    name: str
    args: str
    line: int


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (comments dropped, `\\` continuations joined)."""
    out: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer.append(line[:-1].strip())
            continue
        buffer.append(line)
        joined = " ".join(part for part in buffer if part)
        name, _, args = joined.partition(" ")
        out.append(Instruction(name.upper(), args.strip(), start))
        buffer = []
    assert not buffer, "the Dockerfile ends inside a continued line"
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by build stage (the ARGs before the first FROM are left out)."""
    out: list[list[Instruction]] = []
    for ins in instructions:
        if ins.name == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    """`ARG NAME=default` declared before the first FROM."""
    out = {}
    for ins in instructions:
        if ins.name == "FROM":
            break
        if ins.name == "ARG":
            key, _, value = ins.args.partition("=")
            out[key] = value
    return out


def args_of(stage: list[Instruction]) -> dict[str, str]:
    """`ARG NAME=default` of one stage."""
    return {
        key: value for key, _, value in (i.args.partition("=") for i in stage if i.name == "ARG")
    }


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """Every `ENV KEY=value` of one stage."""
    env: dict[str, str] = {}
    for ins in stage:
        if ins.name == "ENV":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                env[key] = value
    return env


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def test_every_stage_is_built_on_a_pinned_slim_python_311(
    instructions: list[Instruction],
) -> None:
    defaults = global_args(instructions)
    bases = []
    for stage in stages(instructions):
        image = stage[0].args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image)
        bases.append(image)
    assert len(bases) >= 2, "a multi-stage build"
    for image in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), (
            f"{image}: pin the base by a full tag (python:3.11.N-slim-CODENAME)"
        )


def test_the_image_runs_as_uid_10001_writing_only_to_tmp(final: list[Instruction]) -> None:
    users = [i.args for i in final if i.name == "USER"]
    assert users, "the final stage sets USER"
    assert re.fullmatch(r"10001(:10001)?", users[-1]), "a numeric non-root user, uid 10001"
    env = env_of(final)
    assert env["HOME"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert all(env[k].startswith("/tmp/") for k in env if k.startswith("HELM_") and "HOME" in k)
    assert [i.args for i in final if i.name == "WORKDIR"][-1] == "/tmp"


def test_helm_4_is_pinned_and_verified_by_checksum(instructions: list[Instruction]) -> None:
    helm = next(s for s in stages(instructions) if " AS helm" in s[0].args)
    args = args_of(helm)
    assert re.fullmatch(r"v4\.\d+\.\d+", args["HELM_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", args["HELM_SHA256"])
    assert args["HELM_ARCH"] == "amd64"
    (run,) = [i.args for i in helm if i.name == "RUN"]
    verify = run.index('echo "${HELM_SHA256}  /tmp/${archive}" | sha256sum --check --strict -')
    assert verify < run.index("tar -xzf"), "verify the archive before unpacking it"
    assert "get.helm.sh/${archive}" in run
    assert run.startswith("set -eu;"), "any failing step fails the build"


def test_the_app_is_installed_from_a_wheel_of_the_checkout(
    instructions: list[Instruction], final: list[Instruction]
) -> None:
    build = next(s for s in stages(instructions) if " AS build" in s[0].args)
    copied = [w for i in build if i.name == "COPY" for w in i.args.split()[:-1]]
    script = SCRIPT.read_text(encoding="utf-8")
    context = re.search(r"^CONTEXT=\((.*)\)$", script, re.MULTILINE)
    assert context is not None
    assert copied == context.group(1).split(), "the script copies what the Dockerfile does"
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    assert sorted(allowed) == sorted(copied), ".dockerignore lets in exactly what is copied"
    (run,) = [i.args for i in build if i.name == "RUN"]
    pip = "/opt/fluxbot/bin/python -m pip"
    # Dependencies only from the lock file, every file's hash checked, before the app.
    locked = f"{pip} install --require-hashes --no-deps --only-binary=:all: -r requirements.lock"
    assert locked in run
    wheel = f"{pip} wheel --no-deps --no-build-isolation --wheel-dir /wheels ."
    assert run.index(locked) < run.index(wheel)
    assert f"{pip} install --no-deps /wheels/fluxbot-*.whl" in run
    assert f"{pip} check" in run
    assert " install " not in run.replace(locked, "").replace(
        f"{pip} install --no-deps /wheels/fluxbot-*.whl", ""
    ), "nothing is installed from the index but through the lock file"
    assert next(i.args for i in final if i.name == "COPY") == (
        "--from=build /opt/fluxbot /opt/fluxbot"
    )


def test_entrypoint_ports_and_health_check(final: list[Instruction]) -> None:
    by_name = {i.name: i.args for i in final}
    assert json.loads(by_name["ENTRYPOINT"]) == ["fluxbot"]
    assert json.loads(by_name["CMD"]) == ["serve"]
    assert by_name["EXPOSE"].split() == ["3000", "8080"]
    check = by_name["HEALTHCHECK"]
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"], "slim has no curl: Python does the request"
    assert "/healthz" in argv[2]
    assert "FLUXBOT_HEALTH_PORT" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")
    assert env_of(final)["FLUXBOT_HEALTH_PORT"] == "8080"


def test_the_build_steps_work_without_docker() -> None:
    """scripts/check-image-steps.sh: wheel, fresh venv, `fluxbot --help`, `status --demo`.

    It runs offline (.venv lends setuptools and the dependencies), so it needs no network;
    `scripts/check-image-steps.sh --online` resolves dependencies from the index instead.
    """
    # The interpreter running the tests lends its setuptools and dependencies.
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=110, check=False, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "== ok: the wheel installs and answers" in result.stdout


def test_the_lock_file_pins_every_package_with_hashes() -> None:
    """requirements.lock (scripts/lock.sh): one version and SHA-256 hashes per package,
    covering pyproject.toml's dependencies and build requirements at allowed versions."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert text.splitlines()[1].strip() == "#    scripts/lock.sh"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2].strip())
    pins = {}
    for entry in entries:
        name, _, version = entry.split()[0].partition("==")
        assert version, f"{name} is pinned to one version"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", entry)
        assert hashes, f"{name} has hashes"
        pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for line in project["project"]["dependencies"] + project["build-system"]["requires"]:
        requirement = Requirement(line)
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)])


def test_pinning_the_base_image_writes_the_resolved_digest(tmp_path: Path) -> None:
    """scripts/pin-base-image.sh with a stand-in `crane` (no registry is reachable here)."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "pin-base-image.sh"
    script.write_text((ROOT / "scripts" / "pin-base-image.sh").read_text())
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.read_text())
    digest = "sha256:" + "ab" * 32
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    crane = bin_dir / "crane"
    crane.write_text(f'#!/bin/sh\n[ "$1" = digest ] && echo "{digest}"\n')
    crane.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    pinned = global_args(parse((tmp_path / "Dockerfile").read_text()))["PYTHON_IMAGE"]
    tag = global_args(parse(DOCKERFILE.read_text()))["PYTHON_IMAGE"].split("@")[0]
    assert pinned == f"{tag}@{digest}"


def test_the_release_check_refuses_a_base_pinned_by_tag_only(tmp_path: Path) -> None:
    """`scripts/pin-base-image.sh --check` (run by a release pipeline before `docker build`)
    fails while PYTHON_IMAGE has no digest and passes once it has one; it needs no registry."""
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "pin-base-image.sh"
    script.write_text((ROOT / "scripts" / "pin-base-image.sh").read_text())
    tag = global_args(parse(DOCKERFILE.read_text()))["PYTHON_IMAGE"].split("@")[0]
    unpinned = re.sub(
        r"(?m)^ARG PYTHON_IMAGE=.*$", f"ARG PYTHON_IMAGE={tag}", DOCKERFILE.read_text()
    )

    def check(dockerfile: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "Dockerfile").write_text(dockerfile)
        return subprocess.run(
            ["bash", str(script), "--check"],
            env={**os.environ, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    refused = check(unpinned)
    assert refused.returncode == 1
    assert "pinned by tag only" in refused.stderr
    pinned = unpinned.replace(
        f"ARG PYTHON_IMAGE={tag}", f"ARG PYTHON_IMAGE={tag}@sha256:{'ab' * 32}"
    )
    assert check(pinned).returncode == 0


def test_every_stage_takes_its_base_from_the_one_pinned_argument(
    instructions: list[Instruction],
) -> None:
    """Pinning PYTHON_IMAGE pins the whole image: no stage names a base image of its own."""
    for stage in stages(instructions):
        assert stage[0].args.split()[0] == "${PYTHON_IMAGE}", stage[0].args
