"""IdSet: a set of Graph ids in an open-addressing table; what it holds is exactly what a set would."""

import random

from harvester.run.idset import IdSet


def test_it_holds_exactly_what_a_set_holds_across_many_resizes():
    draw = random.Random(7)
    ids, plain = IdSet(), set()
    for _ in range(20_000):
        number = draw.randrange(10**16, 10**18)
        ids.add(number)
        plain.add(number)
        if draw.random() < 0.1:                    # a repeat (a collaboration post listed twice)
            ids.add(number)
    assert len(ids) == len(plain)
    assert all(n in ids for n in plain)
    absent = [n for n in (draw.randrange(10**16, 10**18) for _ in range(2000)) if n not in plain]
    assert absent and not any(n in ids for n in absent)


def test_ids_beyond_64_bits_and_non_ints():
    ids = IdSet()
    ids.add(2**64 + 5)
    ids.add(0)
    ids.add(2**64 - 1)
    assert 2**64 + 5 in ids and 0 in ids and 2**64 - 1 in ids and 2**64 + 6 not in ids and 1 not in ids
    assert "0" not in ids and len(ids) == 3
