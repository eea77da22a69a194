"""One precision enum for every target. A converter lists the members it supports."""
from __future__ import annotations

from enum import Enum

from edgekit.core.errors import UsageError, unknown_choice


class Precision(str, Enum):
    """How an artifact stores weights and computes.

    Each member is one unambiguous choice; there are no flags that could contradict it.
    """

    FP32 = "fp32"
    FP16 = "fp16"                  # fp16 weights and (where the runtime allows) fp16 compute
    INT8_DYNAMIC = "int8-dynamic"  # int8 weights, activations quantised on the fly
    # int8-dynamic on every layer, also the ones a target's int8-dynamic keeps in float for accuracy
    # (ONNX/ORT: the FFN down-projection): faster and smaller, at a looser parity bound (issue 27).
    INT8_DYNAMIC_FULL = "int8-dynamic-full"
    INT8_STATIC = "int8-static"    # int8 weights and activations, calibrated on representative text
    INT8_WEIGHT = "int8-weight"    # int8 per-channel weights, float compute (weight-only)
    INT4_WEIGHT = "int4-weight"    # int4 block-wise weights, float compute
    PALETTIZE8 = "palettize8"      # 8-bit lookup-table weights
    PALETTIZE6 = "palettize6"
    PALETTIZE4 = "palettize4"

    def __str__(self) -> str:
        return self.value

    @property
    def is_int8(self) -> bool:
        return self.value.startswith("int8")

    @property
    def is_float(self) -> bool:
        return self in (Precision.FP32, Precision.FP16)

    @classmethod
    def select(cls, names: list[str], supported: tuple[Precision, ...], only_supported: bool) -> list[Precision]:
        """Parse a list of names for one target, without duplicates.

        An unknown name is always an error. ``only_supported`` (a sweep over targets) drops the
        names this target cannot export; otherwise they are kept for the target's own check to
        reject with its message.
        """
        out: list[Precision] = []
        for name in names:
            if name == "int8" and only_supported:
                out += [p for p in supported if p.is_int8][:1]
            elif name == "int8":
                out.append(cls.parse(name, supported))
            else:
                p = cls.parse(name)
                if not only_supported or p in supported:
                    out.append(p)
        return list(dict.fromkeys(out))

    @classmethod
    def parse(cls, name: str | Precision, supported: tuple[Precision, ...] | None = None) -> Precision:
        """Parse a CLI name. ``int8`` is shorthand for the first int8 variant in ``supported``."""
        if isinstance(name, Precision):
            p = name
        elif name == "int8":
            options = [p for p in (supported or tuple(cls)) if p.is_int8]
            if not options:
                raise UsageError(
                    "this target has no int8 precision; choose one of: "
                    + ", ".join(p.value for p in supported or ())
                )
            p = options[0]
        else:
            try:
                p = cls(name)
            except ValueError:
                raise unknown_choice("precision", name, [m.value for m in cls] + ["int8"]) from None
        if supported is not None and p not in supported:
            raise UsageError(
                f"precision {p.value!r} is not supported by this target; choose one of: "
                + ", ".join(s.value for s in supported)
            )
        return p
