"""One rich console on stderr for progress and step logs; stdout stays for tables and JSON."""
from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)
