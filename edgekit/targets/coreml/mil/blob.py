"""Reader for Core ML's weight blob file (``Data/com.apple.CoreML/weights/weight.bin``).

Why our own reader: the interpreter is meant to be an independent check of what coremltools
wrote, so it reads the documented MIL storage format itself (coremltools' own
``libmilstoragepython`` reader is used only in tests, to cross-check this one).

Layout (little-endian), from coremltools' ``mlmodel/src/MILBlob/Blob/StorageFormat.hpp``::

    header   (64 bytes): uint32 count, uint32 version (=2), 56 reserved bytes
    per blob, at the offset a ``BlobFileValue`` names (64-byte aligned):
      metadata (64 bytes): uint32 sentinel 0xDEADBEEF, uint32 storage dtype,
                           uint64 size_in_bytes, uint64 data_offset,
                           uint64 padding_size_in_bits, 32 reserved bytes
      data     (size_in_bytes at data_offset)

Sub-byte types (int4, uint1..uint6) are packed least-significant bit first; the last byte is
padded with ``padding_size_in_bits`` unused bits.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from edgekit.targets.coreml.mil.errors import ProgramError

SENTINEL = 0xDEADBEEF
_HEADER = struct.Struct("<II56x")
_META = struct.Struct("<IIQQQ32x")

# Storage dtype codes of the blob metadata (BlobDataType in StorageFormat.hpp).
STORAGE_DTYPES = {
    1: "fp16", 2: "fp32", 3: "uint8", 4: "int8", 5: "bf16", 6: "int16", 7: "uint16",
    8: "int4", 9: "uint1", 10: "uint2", 11: "uint4", 12: "uint3", 13: "uint6", 14: "int32", 15: "uint32",
}
_NUMPY = {
    "fp16": np.float16, "fp32": np.float32, "uint8": np.uint8, "int8": np.int8, "int16": np.int16,
    "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
}
SUB_BYTE_BITS = {"int4": 4, "uint1": 1, "uint2": 2, "uint3": 3, "uint4": 4, "uint6": 6}


def unpack_bits(packed: np.ndarray, nbits: int, count: int, signed: bool) -> np.ndarray:
    """Unpack ``count`` ``nbits``-wide integers stored LSB-first in a uint8 array.

    Every ``g = 8 / gcd(nbits, 8)`` values fill exactly ``nbits * g / 8`` bytes (one byte for 1-,
    2-, 4- and 8-bit values, three for 3- and 6-bit ones) and no value crosses such a group, so
    the j-th value of every group is read at once from the same one or two bytes."""
    raw = np.asarray(packed).view(np.uint8).reshape(-1)
    if raw.size * 8 < count * nbits:
        raise ProgramError(f"packed data holds {raw.size * 8 // nbits} {nbits}-bit values, expected {count}")
    if nbits == 8:
        values = raw[:count].copy()
    else:
        per_group = 8 // math.gcd(nbits, 8)
        group_bytes = nbits * per_group // 8
        groups = -(-count // per_group)
        buf = np.zeros(groups * group_bytes, dtype=np.uint8)
        used = min(buf.size, raw.size)
        buf[:used] = raw[:used]
        grp = buf.reshape(groups, group_bytes)
        out = np.empty((groups, per_group), dtype=np.uint8)
        mask = np.uint8((1 << nbits) - 1)
        for j in range(per_group):
            byte, shift = divmod(j * nbits, 8)
            v = grp[:, byte] >> shift
            if shift + nbits > 8:  # the value's high bits start the next byte of the group
                v = v | (grp[:, byte + 1] << (8 - shift))
            out[:, j] = v & mask
        values = out.reshape(-1)[:count]
    if signed:
        return np.where(values >= 1 << (nbits - 1), values.astype(np.int16) - (1 << nbits), values).astype(np.int8)
    return values.astype(np.uint8, copy=False)


class BlobFile:
    """One memory-mapped weight file; ``read(offset, dtype, shape)`` returns a numpy array."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ProgramError(f"weight file {self.path} is missing: the .mlpackage is incomplete")
        self.data = np.memmap(self.path, dtype=np.uint8, mode="r")
        if self.data.size < _HEADER.size:
            raise ProgramError(f"weight file {self.path} is truncated ({self.data.size} bytes)")
        self.count, self.version = _HEADER.unpack_from(self.data, 0)
        if self.version != 2:
            raise ProgramError(f"{self.path}: unsupported weight storage version {self.version} (expected 2)")

    def metadata(self, offset: int) -> tuple[str, int, int, int]:
        """(storage dtype, size in bytes, data offset, padding bits) of the blob at ``offset``."""
        if offset + _META.size > self.data.size:
            raise ProgramError(f"{self.path}: blob offset {offset} is past the end of the file")
        sentinel, dtype, size, data_offset, padding = _META.unpack_from(self.data, offset)
        if sentinel != SENTINEL:
            raise ProgramError(f"{self.path}: no blob at offset {offset} (bad sentinel {sentinel:#x})")
        if data_offset + size > self.data.size:
            raise ProgramError(f"{self.path}: blob at {offset} runs past the end of the file")
        return STORAGE_DTYPES.get(dtype, f"code{dtype}"), size, data_offset, padding

    def read(self, offset: int, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor of MIL type ``dtype`` and ``shape`` stored at ``offset``."""
        stored, size, data_offset, _ = self.metadata(offset)
        raw = np.asarray(self.data[data_offset:data_offset + size])
        count = int(np.prod(shape, dtype=np.int64))
        if dtype in SUB_BYTE_BITS:
            if stored != dtype:
                raise ProgramError(f"{self.path}: blob at {offset} stores {stored}, the program says {dtype}")
            return unpack_bits(raw, SUB_BYTE_BITS[dtype], count, signed=dtype.startswith("int")).reshape(shape)
        if dtype not in _NUMPY:
            raise ProgramError(f"{self.path}: cannot read blobs of type {dtype}")
        # The stored code is the byte container; uint8 storage may carry bool-free int8 views etc.
        arr = raw.view(_NUMPY[dtype])
        if arr.size != count:
            raise ProgramError(f"{self.path}: blob at {offset} has {arr.size} {dtype} values, expected {count} for {shape}")
        return arr.reshape(shape).copy()
