"""``python -m edgekit.emulation.env [--create [--force]|--check|--self-test]``: the ARM64 emulation environment.

``--create`` builds what is missing (QEMU 10's qemu-aarch64, Debian's arm64 python3.11, the aarch64
wheels of numpy/onnxruntime/ai-edge-litert at the x86 versions) into ``.arm64`` (or
``$EDGEKIT_ARM64_ENV``) and verifies it with the self-tests; a second run does nothing when it is
intact. It exits 0 when the environment is ready or cannot be had here (it says why; the tests that
need it skip with that reason), 1 on a real error. ``--check`` (the default) exits 0 when usable,
1 with the reason otherwise. ``--self-test`` re-runs the self-tests (``--cpu`` to pick models) and
records the CPU models that pass: workers refuse a CPU model the manifest has not verified.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import VERIFY_CPUS, EmulatorError, available, env_dir, manifest


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.emulation.env", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--create", action="store_true", help="build (or repair) the environment")
    mode.add_argument("--check", action="store_true", help="exit 0 when usable (default)")
    mode.add_argument("--self-test", action="store_true", help="run the emulator self-tests now")
    parser.add_argument("--force", action="store_true", help="with --create: rebuild every piece")
    parser.add_argument("--cpu", action="append", help=f"CPU model(s) for --create/--self-test (default {', '.join(VERIFY_CPUS)})")
    parser.add_argument("--env", type=Path, default=None, help=f"where (default {env_dir()})")
    args = parser.parse_args(argv)
    env = (args.env or env_dir()).resolve()
    cpus = tuple(args.cpu or VERIFY_CPUS)

    if args.create:
        from .build import Unavailable, create, intact

        if not args.force and intact(env) is None:
            info = manifest(env) or {}
            print(f"ARM64 emulation environment already built: {env} (QEMU {info['qemu']['version']}, "
                  f"python {info['python']['version']}, verified CPU models: {', '.join(info['cpu_models_verified'])})")
            return 0
        try:
            info = create(env, force=args.force, cpus=cpus)
        except Unavailable as e:
            print(f"ARM64 emulation environment NOT built: {e}. The tests that need it will skip.", file=sys.stderr)
            return 0
        except (EmulatorError, OSError) as e:
            print(f"error: building the ARM64 emulation environment failed: {e}", file=sys.stderr)
            return 1
        runtimes = ", ".join(f"{d} {v}" for d, v in info["runtimes"].items())
        print(f"ARM64 emulation environment: {env}\n  QEMU {info['qemu']['version']}, python {info['python']['version']}, "
              f"{runtimes}\n  verified CPU models: {', '.join(info['cpu_models_verified']) or 'none'}"
              + (f"; FAILED: {', '.join(info['cpu_models_failed'])}" if info["cpu_models_failed"] else "")
              + f"\n  {info['build_seconds']} s, downloaded {_mb(info['download_bytes'])}, {_mb(info['disk_bytes'])} on disk")
        if info["runtimes_missing"]:
            for dist, why in info["runtimes_missing"].items():
                print(f"  missing {dist}: {why}")
        reason = available(env=env)
        if reason:
            print(f"error: the environment was built but is not usable: {reason}", file=sys.stderr)
            return 1
        return 0

    if args.self_test:
        from .build import record_self_test
        from .selftest import load_cases, self_test

        reason = available(env=env)
        if reason:
            print(reason, file=sys.stderr)
            return 1
        cases, missing = load_cases()
        for ref, why in missing.items():
            print(f"not loaded: {ref}: {why}")
        failed = 0
        for cpu in cpus:
            try:
                results = self_test(cases, [cpu], env=env, raise_on_failure=False, log=print)
            except EmulatorError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            failed += not record_self_test(env, cpu, results)
        return 1 if failed else 0

    reason = available(env=env)
    if reason:
        print(reason, file=sys.stderr)
        return 1
    info = manifest(env) or {}
    print(f"ARM64 emulation environment OK: {env} (QEMU {info['qemu']['version']}, verified: "
          f"{', '.join(info['cpu_models_verified'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
