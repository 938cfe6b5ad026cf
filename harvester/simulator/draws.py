"""Seeded draws for the simulated world: many from one hash, noise, and splits that keep their sum.

Every value of the world is a pure function of the seed and a key (world.py). A media's dozen
metrics come from one BLAKE2b digest (32 draws of 16 bits) rather than one digest each, which
keeps a world as fast to read as when each metric was independent noise. :func:`split` cuts an
integer total into parts by largest remainder, so the parts add up to the total exactly, as the
API's breakdown results add up to their ``total_value``.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence

PER_DIGEST = 32
"""Draws per digest: BLAKE2b's 64 bytes as 16-bit numbers."""


def uniforms(seed: int, key: tuple[object, ...], n: int) -> list[float]:
    """``n`` floats in [0, 1), a pure function of ``seed`` and ``key`` (one digest per 32)."""
    out: list[float] = []
    part = 0
    while len(out) < n:
        take = min(PER_DIGEST, n - len(out))
        raw = repr((seed, key, part) if part else (seed, key)).encode()
        digest = hashlib.blake2b(raw, digest_size=2 * take).digest()
        out.extend(v / 65536.0 for v in struct.unpack(f">{take}H", digest))
        part += 1
    return out


def normal(u1: float, u2: float, u3: float) -> float:
    """About a standard normal draw from three uniforms (their sum, centred and scaled): bounded by
    +-3, so a noise factor ``exp(sigma * normal(...))`` has no unbounded tail."""
    return (u1 + u2 + u3 - 1.5) * 2.0


def noise(sigma: float, u1: float, u2: float, u3: float) -> float:
    """A log-normal-like factor of median 1: ``exp(sigma * normal(u1, u2, u3))``."""
    return math.exp(sigma * normal(u1, u2, u3))


def split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` in parts proportional to ``weights`` that sum to ``total`` exactly (largest
    remainder, ties to the earlier part); a zero weight always gets 0."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    scale = total / whole
    exact = [w * scale for w in weights]
    parts = [int(x) for x in exact]
    left = total - sum(parts)
    if left:
        order = sorted((parts[i] - x, i) for i, x in enumerate(exact) if weights[i] > 0)
        for _, i in order[:left]:
            parts[i] += 1
    return parts
