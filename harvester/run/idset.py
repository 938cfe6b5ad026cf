"""A set of Graph ids at 8 to 16 bytes each: the media a run has planned.

A run remembers every media it planned (a collaboration post is listed by both its accounts and
planned once); as a ``set`` of ints that is about 60 bytes a media (the int object and its slot),
60 MB at a million media. Here the ids are unsigned 64-bit ints in one open-addressing table
(Fibonacci hashing, linear probing, at most half full, 0 marking an empty slot). An id that does not fit (0, or
one of 64 bits or more, which Graph ids are not today) goes to a plain set.
"""

from __future__ import annotations

from array import array

_U64 = 1 << 64
_MASK64 = _U64 - 1
_MIX = 0x9E3779B97F4A7C15
"""Fibonacci hashing: the product's high bits pick the slot, so ids that differ only in their
low digits (one account's media) spread over the whole table."""


class IdSet:
    __slots__ = ("_count", "_mask", "_other", "_shift", "_table")

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(4, (2 * capacity - 1).bit_length())
        self._table = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._shift = 65 - size.bit_length()
        self._count = 0
        self._other: set[int] = set()

    def __len__(self) -> int:
        return self._count + len(self._other)

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        if not 0 < number < _U64:
            return number in self._other
        return self._table[self._slot(number)] == number

    def add(self, number: int) -> None:
        if not 0 < number < _U64:
            self._other.add(number)
            return
        i = self._slot(number)
        if self._table[i] == number:
            return
        self._table[i] = number
        self._count += 1
        if 2 * self._count > self._mask:
            self._grow()

    def _slot(self, number: int) -> int:
        """Where ``number`` is, or the empty slot where it would go."""
        table, mask = self._table, self._mask
        i = (number * _MIX & _MASK64) >> self._shift
        while (found := table[i]) != 0 and found != number:
            i = (i + 1) & mask
        return i

    def _grow(self) -> None:
        old = self._table
        size = 2 * len(old)
        self._table, self._mask, self._shift, self._count = array("Q", bytes(8 * size)), size - 1, self._shift - 1, 0
        for number in old:
            if number:
                self._table[self._slot(number)] = number
                self._count += 1
