"""``python -m edgekit.tasklib create|check``: manage the separate tflite-support environment."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import TaskLibError, create, env_dir, unavailable


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgekit.tasklib",
                                     description="The TFLite Task Library environment (tflite-support 0.4.4, protobuf<4).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create the environment (venv + pip install)")
    c.add_argument("--env", type=Path, default=None, help=f"where (default {env_dir()}; or $EDGEKIT_TASKLIB_ENV)")
    c.add_argument("--python", default=None, help="base interpreter for the venv (3.8-3.11: tflite-support wheels)")
    k = sub.add_parser("check", help="exit 0 if the environment works, 1 (with the reason) if not")
    k.add_argument("--env", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.cmd == "create":
        try:
            env = create(args.env, python=args.python)
        except (TaskLibError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # pip/venv failures: say which step
            print(f"error: creating the environment failed: {e}", file=sys.stderr)
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
