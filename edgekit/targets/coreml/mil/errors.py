"""Errors of the MIL interpreter."""
from __future__ import annotations


class ProgramError(RuntimeError):
    """The package cannot be run as written: a missing or truncated weight file, an op that fails,
    or a result whose shape contradicts the program.

    Deliberately not an ``EdgekitError``: ``edgekit.export`` records a runtime failure of the
    artifact as ``parity-failed`` with this message, instead of aborting the whole export run.
    (An op the interpreter does not implement raises ``edgekit.core.errors.UnsupportedOpError``
    instead, and the record says ``validation-skipped``.)
    """
