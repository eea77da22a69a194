"""The ARM64 emulation environment: availability, the worker protocol, and the emulator self-test.

Tests that run the emulator take the ``arm64_env`` fixture and skip, with the reason
``edgekit.emulation.available()`` gives, when ``make arm64-env`` could not build it here. Each runs
tiny models only (an emulated process with its runtime import takes 2-5 s).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit import emulation
from edgekit.core.errors import EnvironmentProblem
from edgekit.emulation import (
    EmulatorError,
    EmulatorMiscomputesError,
    Job,
    SelfTestSpec,
    run_worker,
    self_test,
)
from edgekit.emulation.debian import PrivateApt
from edgekit.emulation.runner import WorkerError


@pytest.fixture(scope="module")
def arm64_env() -> Path:
    reason = emulation.available()
    if reason:
        pytest.skip(reason)
    return emulation.env_dir()


def _onnx_cases():
    pytest.importorskip("onnx")
    from edgekit.targets.onnx import arm64 as onnx_arm64

    return onnx_arm64


# ---- no environment needed -------------------------------------------------------------------

def test_absent_environment_says_why_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_ARM64_ENV", str(tmp_path / "nowhere"))
    reason = emulation.available()
    assert reason and "make arm64-env" in reason and "nowhere" in reason
    with pytest.raises(EmulatorError, match="make arm64-env"):
        run_worker(Path(__file__), [Job(None, {})])
    # an environment error is a validation error to the CLI: exit 1, never a pass
    assert issubclass(EmulatorMiscomputesError, EmulatorError) and issubclass(EmulatorError, EnvironmentProblem)


def test_a_piece_that_cannot_be_had_is_the_skip_reason(tmp_path):
    (tmp_path / emulation.UNAVAILABLE).write_text("the arm64 python3.11 packages: apt-get update failed\n")
    assert emulation.available(env=tmp_path) == (
        "ARM64 emulation environment unavailable: the arm64 python3.11 packages: apt-get update failed")


def test_unverified_cpu_model_and_missing_runtime_are_refused(tmp_path):
    env = tmp_path
    for f in (emulation.qemu_path(env), emulation.python_path(env)):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
    (env / emulation.MANIFEST).write_text(json.dumps({
        "qemu": {"version": "7.2.22"}, "runtimes": {"numpy": "2.4.6", "onnxruntime": "1.31.1"},
        "runtimes_missing": {"ai-edge-litert": "no aarch64 cp311 wheel"},
        "cpu_models_verified": {"neoverse-n1": {}}, "cpu_models_failed": {"max": "tflite FC int8: max|err| 36.2"}}))
    assert emulation.available(env=env) is None
    assert emulation.available(runtime="onnxruntime", env=env) is None
    assert "no aarch64 cp311 wheel" in emulation.available(runtime="ai-edge-litert", env=env)
    assert "QEMU 7.2.22 with CPU model max failed the self-test" in emulation.available(cpu="max", env=env)
    assert "not verified" in emulation.available(cpu="cortex-a710", env=env)


def test_dependency_closure_takes_first_alternatives_and_stops_at_package_tools(monkeypatch):
    out = """python3.11
  Depends: libpython3.11-stdlib
 |Depends: media-types
  Depends: mime-support
  Depends: <python3-virtual>
    python3-provider
libpython3.11-stdlib
  Depends: libc6
  Depends: readline-common
  Recommends: tzdata
readline-common
 |Depends: dpkg
  Depends: install-info
media-types
mime-support
  Depends: mailcap
python3-provider
libc6
dpkg
  PreDepends: tar
"""
    apt = PrivateApt(Path("/nonexistent"), "arm64", [])
    monkeypatch.setattr(apt, "_run", lambda tool, args, **kw: out)
    got = apt.closure(["python3.11"], stop=["dpkg", "install-info"])
    assert got == ["python3.11", "libpython3.11-stdlib", "media-types", "python3-provider", "libc6", "readline-common"]


# ---- under the emulator -----------------------------------------------------------------------

def test_worker_runs_on_aarch64_with_the_cpu_model_and_npz_files(arm64_env, tmp_path):
    script = tmp_path / "echo_worker.py"
    script.write_text(
        "import worker_io, os, sys\n"
        "worker_io.serve(lambda job: {'twice': job.inputs['a'] * 2, 'n': len(job.inputs)},\n"
        "                {'runtime': 'numpy', 'qemu_cpu': os.environ['QEMU_CPU'], 'args': sys.argv[2:]})\n")
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    run = run_worker(script, [Job(None, {"a": a}), Job(None, {"a": -a, "b": a})], ["--flag"], cpu="max")
    assert run.meta["machine"] == "aarch64" and run.meta["qemu_cpu"] == "max" and run.meta["args"] == ["--flag"]
    np.testing.assert_array_equal(run.outputs[0]["twice"], a * 2)
    np.testing.assert_array_equal(run.outputs[1]["twice"], -a * 2)
    assert run.outputs[1]["n"] == 2 and run.cpu == "max" and run.qemu_version == emulation.manifest()["qemu"]["version"]


def test_runtime_rejecting_a_file_is_a_worker_error_not_an_emulator_error(arm64_env, tmp_path):
    onnx_arm64 = _onnx_cases()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(WorkerError, match="broken.onnx") as info:
        onnx_arm64.run(bad, [{"x": np.zeros((1, 4), np.float32)}])
    assert not isinstance(info.value, EmulatorError)


def test_emulator_that_dies_is_an_emulator_error(arm64_env, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text("import os\nos.abort()\n")
    with pytest.raises(EmulatorError, match=r"died under QEMU [\d.]+, CPU model neoverse-n1"):
        run_worker(script, [Job(None, {})])


@pytest.mark.slow
def test_self_test_passes_on_neoverse_n1_and_max(arm64_env):
    cases, missing = emulation.load_cases()
    assert not missing, missing
    results = self_test(cases, ["neoverse-n1", "max"])
    assert len(results) == 2 * len(cases) and all(r.ok for r in results), [r.summary() for r in results]
    int8 = [r for r in results if "int8" in r.case]
    assert len(int8) == 6 and all(r.max_abs_error <= r.bound for r in int8)


def test_a_wrong_computation_is_refused_naming_qemu_and_cpu_model(arm64_env, tmp_path):
    onnx_arm64 = _onnx_cases()

    def off_by_a_little(folder: Path) -> SelfTestSpec:
        spec = onnx_arm64.case_matmul_fp32(folder)
        # what an emulator that is off by 10x the rounding bound would compute
        return SelfTestSpec("faked", spec.worker, spec.job, {"y": spec.reference["y"] + 10 * spec.bound}, spec.bound)

    with pytest.raises(EmulatorMiscomputesError) as info:
        self_test([onnx_arm64.case_matmul_fp32, off_by_a_little], ["neoverse-n1"])
    e = info.value
    version = emulation.manifest()["qemu"]["version"]
    assert (e.cpu, e.case, e.qemu_version) == ("neoverse-n1", "faked", version)
    assert f"QEMU {version} with CPU model neoverse-n1 computes faked" in str(e)
    assert 9 * e.bound < e.error < 11 * e.bound


def _qemu72() -> str | None:
    for candidate in (os.environ.get("EDGEKIT_QEMU72"), shutil.which("qemu-aarch64-static")):
        if candidate and Path(candidate).exists():
            out = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False).stdout
            if re.search(r"version 7\.", out):
                return candidate
    return None


@pytest.mark.slow
def test_qemu_7_2_with_sme_is_refused(arm64_env, tmp_path):
    """Bookworm's QEMU 7.2 with CPU model max (SME) computes int8 kernels wrongly (errors of 36-64
    where the bound is 3e-5..0.18): the self-test must refuse it and accept max,sme=off."""
    qemu = _qemu72()
    if qemu is None:
        pytest.skip("no QEMU 7.x here (apt-get install qemu-user-static, or EDGEKIT_QEMU72=path)")
    env = tmp_path / "env72"
    (env / "qemu").mkdir(parents=True)
    shutil.copy(qemu, env / "qemu" / "qemu-aarch64")
    for d in ("root", "site"):
        (env / d).symlink_to(arm64_env / d)
    info = dict(emulation.manifest(arm64_env), qemu={"version": "7.2"})
    (env / emulation.MANIFEST).write_text(json.dumps(info))
    onnx_arm64 = _onnx_cases()
    self_test([onnx_arm64.case_matmul_dynamic_int8], ["max,sme=off"], env=env)
    with pytest.raises(EmulatorMiscomputesError, match="QEMU 7.2 with CPU model max computes onnx MatMul dynamic-int8"):
        self_test([onnx_arm64.case_matmul_dynamic_int8], ["max"], env=env)


def test_create_is_idempotent_and_fast_when_intact(arm64_env):
    before = (arm64_env / emulation.MANIFEST).read_text()
    proc = subprocess.run([sys.executable, "-m", "edgekit.emulation.env", "--create"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "already built" in proc.stdout, proc.stdout + proc.stderr
    assert (arm64_env / emulation.MANIFEST).read_text() == before
