"""nearest_neighbor — B24 Thm 7 (2-layer Transformer, width O(log N)) / Thm 8 (RNN m·p ≥ N/2).

Input ``p{c1} y{l1} … p{cN} y{lN} p{q}``: N labelled points, each a b-bit code written as one
token ``p{code}`` and followed by its label ``y{l}`` (uniform over ``labels`` classes), then a
query point. The points are distinct, the query is none of them, and exactly one point is
nearest to the query in Hamming distance. The answer at the last position is that point's
label. N = number of labelled points; token length 2N + 1. With the embedding
c ↦ (2c − 1)/√b the codes are unit vectors and the margin is ≥ 2/b, B24 Thm 7's setting.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    Batch,
    Param,
    Task,
    check_int_length,
    int_param,
    sample_distinct,
    single_answer_batch,
)

MAX_BITS = 16


def _bits_ok(value: int) -> bool:
    return 1 <= value <= MAX_BITS


@functools.lru_cache(maxsize=32)
def _codes_by_weight(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """All b-bit codes ordered by popcount (then value), and ``start[w]``: where weight w begins.

    One table of 2^b entries shared by all rows (never per row).
    """
    codes = np.arange(1 << bits, dtype=np.int64)
    weight = np.zeros_like(codes)
    for i in range(bits):
        weight += (codes >> i) & 1
    order = np.argsort(weight, kind="stable")
    start = np.zeros(bits + 2, dtype=np.int64)
    start[1:] = np.cumsum([math.comb(bits, w) for w in range(bits + 1)])
    order.setflags(write=False)
    start.setflags(write=False)
    return order, start


@functools.lru_cache(maxsize=256)
def _nearest_distance_cdf(bits: int, points: int) -> np.ndarray:
    """CDF over d = 1..b of the nearest point's distance under the rejection distribution.

    Relative to the query the N points are N distinct non-zero codes whose lightest one is
    unique; the number of such sets with minimum weight d is C(b, d) · C(M_d, N − 1), with M_d
    the number of codes heavier than d. Exact integers, then correctly rounded floats.
    """
    counts = []
    for d in range(1, bits + 1):
        heavier = sum(math.comb(bits, w) for w in range(d + 1, bits + 1))
        counts.append(math.comb(bits, d) * math.comb(heavier, points - 1))
    total, running, cdf = sum(counts), 0, []
    for c in counts:
        running += c
        cdf.append(running / total)  # impossible distances repeat the previous value
    return np.asarray(cdf)


class NearestNeighbor(Task):
    """Nearest neighbour in Hamming distance over b-bit codes (B24 Thm 7 / Thm 8).

    Distribution: that of drawing N distinct codes and a query outside them uniformly and
    redrawing until the nearest point is unique — generated exactly, without redraws, so it
    works at any density. Everything is symmetric under XOR with a fixed code, so it suffices
    to draw the query q uniformly and the points relative to it (p ↦ p ⊕ q):

    1. the nearest distance d ∈ 1..b with probability ∝ C(b, d)·C(M_d, N − 1), M_d the number of
       codes of weight > d (the count of valid point sets with minimum weight d);
    2. the nearest point uniform among the C(b, d) codes of weight d;
    3. the other N − 1 points distinct and uniform among the M_d codes of weight > d;
    4. the nearest point placed at a uniform index, the others in uniformly random order.

    Labels are uniform in 0 .. labels − 1, independently per point. Valid iff
    1 ≤ N ≤ 2^b − b: the query and b − 1 of its neighbours must be left out for a unique
    nearest point at distance 1 (N < 2^b alone is not enough).
    """

    name = "nearest_neighbor"
    summary = "N labelled b-bit points, then a query; output the label of the nearest point"
    source = "B24 Thm 7 (2-layer TF upper, width O(log N)), Thm 8 (RNN lower m·p ≥ N/2)"
    length_meaning = "labelled points before the query (token length 2N + 1)"
    params_spec = (
        Param(
            "bits",
            int,
            8,
            f"bits per point code b (points p0 … p{{2^b − 1}}); at most {MAX_BITS}",
            check=_bits_ok,
            rule=f"an integer in 1..{MAX_BITS}",
            examples=(2, 3, 5),
        ),
        int_param("labels", 2, "number of label classes (labels y0 … y{labels-1})", 2, (3, 5)),
    )
    test_lengths = (1, 16)

    def _build_vocab(self) -> Sequence[str]:
        b, nl = self.params["bits"], self.params["labels"]
        return [self.pad_token, *(f"p{c}" for c in range(1 << b)), *(f"y{i}" for i in range(nl))]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, 1, "labelled points")
        b = self.params["bits"]
        if length >= 1 << b:
            raise UserError(
                f"task '{self.name}': length (the number of points) must be < 2^bits = "
                f"{1 << b} so that the query differs from every point, got {length}"
            )
        if length > (1 << b) - b:
            raise UserError(
                f"task '{self.name}': at most 2^bits − bits = {(1 << b) - b} points leave the "
                f"query a unique nearest point (bits={b}), got length {length}"
            )

    def max_tokens(self, length: int) -> int:
        return 2 * length + 1

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        b, nl = self.params["bits"], self.params["labels"]
        point0, label0 = 1, 1 + (1 << b)  # ids of p0 and y0
        by_weight, start = _codes_by_weight(b)
        cdf = _nearest_distance_cdf(b, length)
        query = rng.integers(0, 1 << b, size=batch_size, dtype=np.int64)
        dist = np.searchsorted(cdf, rng.random(batch_size), side="right") + 1  # cdf[-1] == 1
        near = by_weight[start[dist] + rng.integers(0, start[dist + 1] - start[dist])]
        first_heavier = start[dist + 1]
        drawn = sample_distinct(rng, batch_size, length - 1, (1 << b) - first_heavier)
        others = by_weight[drawn + first_heavier[:, None]]
        slot = rng.integers(0, length, size=batch_size)
        rows = np.arange(batch_size)
        # the others are in uniformly random order: moving the one at ``slot`` to the end
        # keeps their order uniform and frees ``slot`` for the nearest point
        points = np.empty((batch_size, length), dtype=np.int64)
        points[:, : length - 1] = others
        points[:, length - 1] = points[rows, slot]
        points[rows, slot] = near
        points ^= query[:, None]
        labels = rng.integers(0, nl, size=(batch_size, length), dtype=np.int64)
        inputs = np.empty((batch_size, 2 * length + 1), dtype=np.int64)
        inputs[:, 0 : 2 * length : 2] = points + point0
        inputs[:, 1 : 2 * length : 2] = labels + label0
        inputs[:, -1] = query + point0
        return single_answer_batch(inputs, labels[rows, slot] + label0)

    def solve(self, tokens: Sequence[str]) -> list[str]:
        *pairs, query = tokens
        if len(pairs) % 2 or not all(t.startswith("p") for t in (*pairs[0::2], query)):
            raise UserError("nearest_neighbor: expected point/label pairs followed by a point")
        q = int(query[1:])
        dists = [
            (bin(int(p[1:]) ^ q).count("1"), label)
            for p, label in zip(pairs[0::2], pairs[1::2], strict=True)
        ]
        best = min(d for d, _ in dists)
        nearest = [label for d, label in dists if d == best]
        if best == 0 or len(nearest) != 1:
            raise UserError("nearest_neighbor: the query has no unique nearest point")
        return nearest
