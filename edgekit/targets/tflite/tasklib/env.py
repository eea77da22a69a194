"""``python -m edgekit.targets.tflite.tasklib.env [--create|--check]``: the separate tflite-support environment.

``--create`` makes ``.venv-tasklib`` beside the active venv (or ``$EDGEKIT_TASKLIB_ENV``) with
tflite-support 0.4.4 and protobuf < 4; ``--check`` (the default) exits 0 when it works and 1 with
the reason when it does not. On Debian/Ubuntu the Task Library also needs ``libusb-1.0-0``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgekit.targets.tflite.tasklib import TaskLibError, create, env_dir, unavailable


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.targets.tflite.tasklib.env", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--create", action="store_true", help="create (or repair) the environment")
    mode.add_argument("--check", action="store_true", help="check that it works (default)")
    parser.add_argument("--env", type=Path, default=None, help=f"where (default {env_dir()})")
    parser.add_argument("--python", default=None, help="base interpreter for the venv (3.8-3.11: tflite-support wheels)")
    args = parser.parse_args(argv)
    if args.create:
        if unavailable(args.env) is None:
            print(f"Task Library environment already works: {args.env or env_dir()}")
            return 0
        try:
            env = create(args.env, python=args.python)
        except (TaskLibError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # noqa: BLE001 - venv/pip failures: say which step failed
            print(f"error: creating the Task Library environment failed: {e}", file=sys.stderr)
            return 1
        print(f"Task Library environment ready: {env}")
        return 0
    reason = unavailable(args.env)
    if reason:
        print(reason, file=sys.stderr)
        return 1
    print(f"Task Library environment OK: {args.env or env_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
