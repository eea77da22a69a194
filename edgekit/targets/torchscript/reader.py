"""What a TorchScript archive is (both flavours: .pt and the Lite interpreter's .ptl)."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

from edgekit.core.errors import IntegrityError
from edgekit.core.target import FLOAT, Contents


def claims(path: Path, head: bytes) -> bool:
    """A zip archive (TorchScript and its Lite flavour are both zips)."""
    return head[:4] == b"PK\x03\x04"


def inspect(path: Path) -> Contents:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IntegrityError(f"{path.name}: a broken zip archive, not a TorchScript file") from None
    with zf:
        names = zf.namelist()
        if not any(n.endswith("/constants.pkl") or n.endswith("/data.pkl") for n in names):
            raise IntegrityError(f"{path.name}: a zip archive but not a TorchScript file")
        lite = any(n.endswith("/bytecode.pkl") for n in names)
        code = b"".join(zf.read(n) for n in names if n.endswith((".py", "bytecode.pkl", "constants.pkl")))
    fmt = "torchscript-lite" if lite else "torchscript"
    if re.search(rb"quantized::linear_dynamic|quantized\.linear_dynamic", code):
        return Contents(fmt, frozenset({"int8-dynamic"}), "quantized::linear_dynamic ops")
    if b"quantized::" in code or b"torch.ops.quantized" in code:
        return Contents(fmt, frozenset({"int8-static", "int8-dynamic"}), "quantized ops")
    return Contents(fmt, FLOAT, "no quantized ops")
