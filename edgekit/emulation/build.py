"""Build the ARM64 emulation environment (``python -m edgekit.emulation.env --create``).

Pieces, each skipped when already there:

1. ``qemu/qemu-aarch64``: the static user-mode emulator of Debian trixie's ``qemu-user`` (QEMU 10,
   whose ``max`` CPU computes int8 kernels right and which emulates /proc/cpuinfo); bookworm's
   ``qemu-user-static`` (QEMU 7.2) only when trixie cannot be had; ``$EDGEKIT_QEMU`` overrides both.
2. ``root/``: Debian bookworm's arm64 ``python3.11`` + ``libstdc++6`` and what they depend on,
   downloaded by a private apt (``apt-get download``) and unpacked with ``dpkg-deb -x``.
3. ``site/``: the aarch64 cp311 manylinux wheels of numpy and of the runtimes at the versions the
   project venv has (``pip install --target``, run by the venv's pip on x86: pip cannot run under
   the emulator, which cannot start a second aarch64 program without binfmt_misc).
4. A smoke run (the runtimes' versions as the emulated python reports them) and the self-tests on
   each CPU model of :data:`VERIFY_CPUS`, recorded in ``manifest.json``.

Pieces that cannot be had (no network, no wheel) are reported, not raised: ``UNAVAILABLE.txt`` says
why and the tests that need the environment skip with that reason.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from . import (
    DEFAULT_CPU,
    MANIFEST,
    SELF_TEST_PROVIDERS,
    UNAVAILABLE,
    VERIFY_CPUS,
    EmulatorError,
    env_dir,
    manifest,
    python_path,
    qemu_path,
    root_path,
    site_path,
)
from .debian import AptUnavailable, PrivateApt, extract, release_sources

FORMAT = 1
PYTHON_PACKAGES = ("python3.11", "libstdc++6")
#: Package tools a python never calls; not followed in the dependency closure.
STOP = ("dpkg", "tar", "install-info", "debconf", "perl-base", "perl")
#: The emulated runtimes, by distribution name; numpy is always needed.
RUNTIMES = ("onnxruntime", "ai-edge-litert")
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64")
# A Cortex-A76-like /proc/cpuinfo for QEMU < 8, which passes the host's x86 file through (ONNX
# Runtime's cpuinfo crashes on it). QEMU 10 writes its own.
CPUINFO = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp "
    "cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
    "CPU part\t: 0xd0b\nCPU revision\t: 1\n\n" for i in range(2))


class Unavailable(Exception):
    """A piece of the environment cannot be had on this machine (reported, exit 0)."""


def _say(log: Callable[[str], None] | None, text: str) -> None:
    if log:
        log(text)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) if path.exists() else 0


def qemu_version(qemu: Path) -> str:
    out = subprocess.run([str(qemu), "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    return out.split("version", 1)[1].split()[0] if "version" in out else "?"


# ---- 1. QEMU -----------------------------------------------------------------------------------

def build_qemu(env: Path, log=None) -> dict[str, Any]:
    import os

    dest = qemu_path(env)
    override = os.environ.get("EDGEKIT_QEMU")
    if override:
        src = Path(override)
        if not src.exists():
            raise Unavailable(f"EDGEKIT_QEMU={override} does not exist")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return {"version": qemu_version(dest), "source": f"EDGEKIT_QEMU={override}", "download_bytes": 0}
    attempts = [("trixie", "qemu-user", "Debian trixie qemu-user"),
                ("bookworm", "qemu-user-static", "Debian bookworm qemu-user-static")]
    errors = []
    for suite, package, what in attempts:
        try:
            apt = PrivateApt(env / "apt" / f"{suite}-amd64", "amd64", release_sources(suite, security=suite == "bookworm"))
            apt.update()
            version = apt.version(package)
            _say(log, f"  downloading {what} {version}")
            debs = apt.download([package], env / "downloads")
        except AptUnavailable as e:
            errors.append(f"{what}: {e}")
            continue
        member = "./usr/bin/qemu-aarch64" if package == "qemu-user" else "./usr/bin/qemu-aarch64-static"
        tmp = env / "downloads" / "qemu-x"
        extract(debs[0], tmp, [member])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp / member), dest)
        size = sum(d.stat().st_size for d in debs)
        for d in debs:
            d.unlink()
        shutil.rmtree(tmp, ignore_errors=True)
        return {"version": qemu_version(dest), "source": f"{what} {version}", "download_bytes": size}
    raise Unavailable("no qemu-aarch64: " + "; ".join(errors))


# ---- 2. aarch64 python ----------------------------------------------------------------------------

def build_python(env: Path, log=None) -> dict[str, Any]:
    root = root_path(env)
    try:
        apt = PrivateApt(env / "apt" / "bookworm-arm64", "arm64", release_sources("bookworm"))
        apt.update()
        packages = apt.closure(PYTHON_PACKAGES, STOP)
        version = apt.version("python3.11")
        _say(log, f"  downloading {len(packages)} arm64 packages (python3.11 {version})")
        debs = apt.download(packages, env / "downloads")
    except AptUnavailable as e:
        raise Unavailable(f"the arm64 python3.11 packages: {e}") from None
    tmp = env / "root.new"
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in debs:
        extract(deb, tmp)
    (tmp / "proc").mkdir(exist_ok=True)
    (tmp / "proc" / "cpuinfo").write_text(CPUINFO)
    size = sum(d.stat().st_size for d in debs)
    for d in debs:
        d.unlink()
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return {"debian_version": version, "packages": len(debs), "download_bytes": size, "source": "Debian bookworm arm64"}


# ---- 3. wheels ------------------------------------------------------------------------------------

def wanted_versions() -> tuple[dict[str, str], dict[str, str]]:
    """numpy and the runtimes at the versions installed on x86, and the runtimes that are not."""
    wanted: dict[str, str] = {}
    missing: dict[str, str] = {}
    for dist in ("numpy", *RUNTIMES):
        try:
            wanted[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing[dist] = "not installed on x86 either (pip install 'edgekit[onnx,tflite]')"
    return wanted, missing


def _pip(args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess:
    base = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=timeout, check=False)


def _platform_args() -> list[str]:
    args = []
    for p in PLATFORMS:
        args += ["--platform", p]
    return args + ["--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:"]


def build_site(env: Path, wanted: dict[str, str], missing: dict[str, str], log=None) -> dict[str, Any]:
    """pip-download the aarch64 wheels (exact x86 versions), then install them into site/."""
    wheels = env / "downloads" / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    have: dict[str, str] = {}
    for dist, version in wanted.items():
        proc = _pip(["download", "-d", str(wheels), *_platform_args(), f"{dist}=={version}"])
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-2:])[-300:]
            why = f"no aarch64 cp311 wheel of {dist}=={version} (the x86 version): {tail}"
            if dist == "numpy":
                raise Unavailable(why)
            missing[dist] = why
            _say(log, f"  skipping {dist}: {why}")
            continue
        have[dist] = version
    size = _du(wheels)
    tmp = env / "site.new"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = _pip(["install", "--target", str(tmp), "--no-index", "--find-links", str(wheels), "--no-warn-conflicts",
                 *_platform_args(), *(f"{d}=={v}" for d, v in have.items())])
    if proc.returncode != 0:
        raise EmulatorError(f"pip could not install the downloaded aarch64 wheels: {proc.stderr.strip()[-600:]}")
    shutil.rmtree(wheels, ignore_errors=True)
    shutil.rmtree(site_path(env), ignore_errors=True)
    tmp.rename(site_path(env))
    return {"requested": have, "download_bytes": size}


# ---- 4. smoke run + self-tests ----------------------------------------------------------------------

_SMOKE = """
import importlib, json, platform, sys, time
out = {"machine": platform.machine(), "python": platform.python_version(), "modules": {}, "errors": {}, "seconds": {}}
for dist, mod in (("numpy", "numpy"), ("onnxruntime", "onnxruntime"), ("ai-edge-litert", "ai_edge_litert.interpreter")):
    t0 = time.perf_counter()
    try:
        m = importlib.import_module(mod)
        out["modules"][dist] = getattr(m, "__version__", None) or importlib.metadata.version(dist)
    except Exception as e:
        out["errors"][dist] = f"{type(e).__name__}: {e}"
    out["seconds"][dist] = round(time.perf_counter() - t0, 2)
print(json.dumps(out))
"""


def smoke(env: Path, cpu: str = DEFAULT_CPU, timeout: float = 600) -> dict[str, Any]:
    """Import numpy and the runtimes in the emulated python; what it reports."""
    from .runner import _environment, command

    argv = [*command("-c", [], env)[:-1], "-c", "import importlib.metadata\n" + _SMOKE]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              env=_environment(cpu, env, env))
    except subprocess.TimeoutExpired:
        raise EmulatorError(f"the emulated python did not start within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise EmulatorError(f"the emulated python failed (exit {proc.returncode}): {proc.stderr.strip()[-600:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return info


def verify(env: Path, runtimes: dict[str, str], cpus=VERIFY_CPUS, log=None) -> tuple[dict, dict, dict]:
    """Self-tests of every target whose runtime is there, on each CPU model."""
    from .selftest import load_cases, self_test

    providers = tuple(ref for rt, ref in SELF_TEST_PROVIDERS.items() if rt in runtimes)
    cases, not_loaded = load_cases(providers)
    for ref, why in not_loaded.items():
        _say(log, f"  self-test cases of {ref} not loaded: {why}")
    verified: dict[str, Any] = {}
    failed: dict[str, str] = {}
    if not cases:
        return verified, {cpu: "no self-test cases could be loaded" for cpu in cpus}, not_loaded
    for cpu in cpus:
        t0 = time.perf_counter()
        try:
            results = self_test(cases, [cpu], env=env, raise_on_failure=False, log=lambda s: _say(log, "    " + s))
        except EmulatorError as e:
            failed[cpu] = str(e)
            _say(log, f"  CPU model {cpu}: FAILED: {e}")
            continue
        seconds = round(time.perf_counter() - t0, 1)
        entry = _verdict(results, seconds)
        if entry.get("wrong"):
            failed[cpu] = entry["wrong"]
            _say(log, f"  CPU model {cpu}: computes wrongly ({seconds} s)")
        else:
            verified[cpu] = entry
            _say(log, f"  CPU model {cpu}: {len(results)} self-test cases within bounds ({seconds} s)")
    return verified, failed, not_loaded


def _verdict(results, seconds: float) -> dict[str, Any]:
    wrong = [r.summary() for r in results if not r.ok]
    if wrong:
        return {"wrong": "; ".join(wrong)}
    return {"seconds": seconds, "cases": {r.case: {"max_abs_error": r.max_abs_error, "bound": r.bound, "runtime": r.runtime}
                                          for r in results}}


def record_self_test(env: Path, cpu: str, results) -> bool:
    """Record a self-test run of one CPU model in the manifest (``env --self-test``); True if it passed."""
    info = manifest(env)
    if info is None:
        return False
    entry = _verdict(results, round(sum(r.seconds for r in results), 1))
    verified, failed = info.setdefault("cpu_models_verified", {}), info.setdefault("cpu_models_failed", {})
    if entry.get("wrong"):
        failed[cpu] = entry["wrong"]
        verified.pop(cpu, None)
    else:
        verified[cpu] = entry
        failed.pop(cpu, None)
    (env / MANIFEST).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return not entry.get("wrong")


# ---- the whole ------------------------------------------------------------------------------------

def intact(env: Path) -> str | None:
    """None when the environment is complete and built for the runtimes installed now, else why not."""
    from . import available

    reason = available(env=env)
    if reason:
        return reason
    info = manifest(env) or {}
    if info.get("format") != FORMAT:
        return "manifest format changed"
    wanted, _ = wanted_versions()
    requested = info.get("wheels", {}).get("requested", {})
    for dist, version in wanted.items():
        if dist in info.get("runtimes_missing", {}) and dist not in requested:
            continue  # could not be had last time; --create --force retries
        if requested.get(dist) != version:
            return f"{dist} is {version} on x86 but {requested.get(dist)} in the emulated environment"
    if not site_path(env).exists():
        return "site/ is missing"
    return None


def create(env: Path | None = None, *, force: bool = False, cpus=VERIFY_CPUS, log=print) -> dict[str, Any]:
    """Build what is missing, verify, write the manifest; return it. Raises :class:`Unavailable`
    when a piece cannot be had (after writing UNAVAILABLE.txt), :class:`EmulatorError` when the
    emulator runs but is broken."""
    env = (env or env_dir()).resolve()
    if not force and intact(env) is None:
        return manifest(env) or {}
    t0 = time.perf_counter()
    env.mkdir(parents=True, exist_ok=True)
    (env / UNAVAILABLE).unlink(missing_ok=True)
    old = manifest(env) or {}
    info: dict[str, Any] = {"format": FORMAT}
    try:
        if force or not qemu_path(env).exists() or "qemu" not in old:
            _say(log, "QEMU user-mode emulator")
            info["qemu"] = build_qemu(env, log)
        else:
            info["qemu"] = old["qemu"]
        _say(log, f"  qemu-aarch64 {info['qemu']['version']} ({info['qemu']['source']})")
        if force or not python_path(env).exists() or "python" not in old:
            _say(log, "aarch64 CPython 3.11 (Debian bookworm arm64, unpacked)")
            info["python"] = build_python(env, log)
        else:
            info["python"] = old["python"]
        wanted, missing = wanted_versions()
        if force or old.get("wheels", {}).get("requested") != wanted or not site_path(env).exists():
            _say(log, "aarch64 wheels: " + ", ".join(f"{d}=={v}" for d, v in wanted.items()))
            info["wheels"] = build_site(env, wanted, missing, log)
        else:
            info["wheels"] = old["wheels"]
            missing.update(old.get("runtimes_missing", {}))
    except Unavailable as e:
        (env / UNAVAILABLE).write_text(f"{e} (checked {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
                                       "retry with `make arm64-env`)\n")
        raise
    shutil.rmtree(env / "apt", ignore_errors=True)
    shutil.rmtree(env / "downloads", ignore_errors=True)
    _say(log, "smoke run (imports under the emulator)")
    info["smoke"] = smoke(env)
    info["python"]["version"] = info["smoke"]["python"]
    info["runtimes"] = dict(info["smoke"]["modules"])
    for dist, err in info["smoke"]["errors"].items():
        missing.setdefault(dist, f"does not import under the emulator: {err}")
    info["runtimes_missing"] = missing
    _say(log, "  " + ", ".join(f"{d} {v} ({info['smoke']['seconds'][d]} s)" for d, v in info["runtimes"].items())
         + (f"; missing: {', '.join(missing)}" if missing else ""))
    _say(log, "self-tests (tiny models, float64 references) per CPU model")
    verified, failed, not_loaded = verify(env, info["runtimes"], cpus, log)
    info["cpu_models_verified"] = verified
    info["cpu_models_failed"] = failed
    info["self_tests_not_loaded"] = not_loaded
    info["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info["build_seconds"] = round(time.perf_counter() - t0, 1)
    info["disk_bytes"] = _du(env)
    info["download_bytes"] = sum(info[k].get("download_bytes", 0) for k in ("qemu", "python", "wheels"))
    (env / MANIFEST).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info
