"""`sam build` on this machine (x86_64 or not, no container) builds the layer for the functions' arm64: every
compiled module in it is an aarch64 one, for the runtime's Python; `make sam-build` and `make deploy` then give
every module its bytecode, since Lambda cannot write it and would compile each module at every cold start."""

from __future__ import annotations

import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_template import _sam_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # make slow

EM_AARCH64 = 183  # ELF e_machine


def _machine(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{shared_object} is not an ELF file"
    byte_order = "<" if header[5] == 1 else ">"
    return int(struct.unpack(f"{byte_order}H", header[18:20])[0])


def test_the_layer_is_built_for_arm64_with_only_aarch64_binaries(tmp_path: Path) -> None:
    sam = _sam_cli()
    if sam is None:
        pytest.skip("aws-sam-cli not installed; `make test` installs it")
    # sam build needs the runtime's Python on PATH: the one running these tests (the Makefile makes sure).
    python_dir = str(Path(sys.executable).parent)
    environment = {**os.environ, "PATH": f"{python_dir}:{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    build = subprocess.run(
        [
            *(str(sam), "build", "SharedLayer", "--template", str(REPO / "template.yaml")),
            *("--build-dir", str(tmp_path / "build"), "--cache-dir", str(tmp_path / "cache")),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr

    site = tmp_path / "build" / "SharedLayer" / "python"
    binaries = sorted(site.rglob("*.so"))
    assert {path.name.split(".")[0] for path in binaries} >= {"_pydantic_core", "_rust"}  # pydantic, cryptography
    machines = {str(path.relative_to(site)): _machine(path) for path in binaries}
    assert set(machines.values()) == {EM_AARCH64}, machines
    tagged = [name for name in machines if "cpython-" in name]
    assert tagged
    assert all("cpython-313-aarch64" in name for name in tagged), tagged
    assert (site / "crosslist" / "api.py").is_file()

    # What make sam-build and make deploy run next: bytecode for every module, used without reading the source.
    compiled = subprocess.run(
        ["make", "-s", "compile-build", f"BUILD_DIR={tmp_path / 'build'}", f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    sources = sorted(site.rglob("*.py"))
    assert len(sources) > 500
    for source in sources:
        bytecode = Path(importlib.util.cache_from_source(str(source)))
        header = bytecode.read_bytes()[:8] if bytecode.is_file() else b""
        assert header[:4] == importlib.util.MAGIC_NUMBER, f"{source.relative_to(site)} has no bytecode for this Python"
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01, f"{source.relative_to(site)}: bytecode checked against its source (flags {flags})"
