"""`sam build` on this machine (x86_64 or not, no container) builds the layer for the functions' arm64: every
compiled module in it is an aarch64 one, for the runtime's Python."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_template import _sam_cli

pytestmark = pytest.mark.integration

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
