"""listops: the solver, the exact conditional sampler, balancing, lengths and bins.

Checked against things written here independently of the module: a recursive-descent
evaluator, the plain NB18 generator (rejection-sampled to the same sizes, compared by χ²), and
size sets enumerated with Python sets.
"""

from __future__ import annotations

import functools
import random
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from sepbench import tasks, testing
from sepbench.errors import UserError
from sepbench.tasks import listops
from sepbench.tasks.listops import CLOSE, OPERATORS


def toks(text: str) -> list[str]:
    return text.split()


EXAMPLE = toks("[SM [MED 3 8 1 6 ] 7 [MAX 0 4 ] ]")


# --------------------------------------------------------------------- independent references
def rd_value(tokens: Sequence[str]) -> int:
    """Recursive descent; MED via the sorted list's two middle elements, mean floored."""
    pos = 0

    def node() -> int:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok not in OPERATORS:
            return int(tok)
        args = []
        while tokens[pos] != CLOSE:
            args.append(node())
        pos += 1
        if tok == "[MIN":
            return min(args)
        if tok == "[MAX":
            return max(args)
        if tok == "[SM":
            return sum(args) % 10
        srt = sorted(args)
        return (srt[(len(srt) - 1) // 2] + srt[len(srt) // 2]) // 2

    value = node()
    assert pos == len(tokens)
    return value


def shape(tokens: Sequence[str]) -> str:
    """The bracket structure: ``(`` operator, ``)`` close, ``d`` digit."""
    return "".join("(" if t in OPERATORS else ")" if t == CLOSE else "d" for t in tokens)


class _TooLong(Exception):
    pass


def plain_nb18(rnd: random.Random, max_args: int, max_depth: int, p: float, cap: int) -> str:
    """One shape from NB18's recursive generator (root at depth 1), abandoned once it has more
    than ``cap`` tokens (such rows would be rejected anyway)."""
    out: list[str] = []

    def node(depth: int) -> None:
        if len(out) > cap:
            raise _TooLong
        if depth < max_depth and rnd.random() < p:
            out.append("(")
            for _ in range(rnd.randint(2, max_args)):
                node(depth + 1)
            out.append(")")
        else:
            out.append("d")

    node(1)
    if len(out) > cap:
        raise _TooLong
    return "".join(out)


def size_set(max_args: int, levels: int, limit: int) -> set[int]:
    """Sizes a subtree with ``levels`` operator levels can take, up to ``limit``, by sets."""
    sizes = {1}
    for _ in range(levels):
        sums = {0}
        reach: set[int] = set()
        for k in range(1, max_args + 1):
            sums = {a + b for a in sums for b in sizes if a + b <= limit}
            if k >= 2:
                reach |= sums
        sizes = {1} | {2 + s for s in reach if 2 + s <= limit}
    return sizes


# --------------------------------------------------------------------- solver
def test_the_spec_worked_example() -> None:
    task = tasks.make("listops")
    assert len(EXAMPLE) == 13
    assert listops.evaluate(EXAMPLE) == 5
    assert task.solve(EXAMPLE) == ["5"]
    assert listops.nesting(EXAMPLE) == 2
    # MED of an even count floors the mean of the two middle values (numpy median, then int)
    assert listops.evaluate(toks("[MED 3 8 1 6 ]")) == int(np.median([3, 8, 1, 6])) == 4
    assert listops.evaluate(toks("[MED 9 8 ]")) == 8
    assert listops.evaluate(toks("[MED 2 9 5 ]")) == 5


@settings(max_examples=100)
@given(testing.listops_expressions(max_args=6))
def test_solver_agrees_with_recursive_descent(tokens: list[str]) -> None:
    assert listops.evaluate(tokens) == rd_value(tokens)


@pytest.mark.parametrize(
    "bad",
    ["[SM 1 2", "[SM 1 2 ] ]", "1 [SM 2 3 ]", "[SM 1 2 ] 3", "[SM ]", "[SM 1 x ]", "", "7"],
)
def test_solver_rejects_malformed_rows(bad: str) -> None:
    with pytest.raises(UserError, match="listops"):
        listops.evaluate(bad.split())


# --------------------------------------------------------------------- the sampler
@pytest.mark.parametrize(
    ("params", "length", "rows"),
    [
        ({}, 4, 64),
        ({}, 13, 200),
        ({}, 100, 200),
        ({}, 300, 64),
        ({}, 1000, 32),
        ({"max_args": 2, "max_depth": 6}, 61, 64),
        ({"max_args": 10, "max_depth": 10}, 777, 16),
        ({"max_depth": 4}, 150, 64),
        ({"value_p": 0.05}, 400, 32),
        ({"value_p": 0.9, "max_args": 3}, 500, 32),
    ],
)
def test_rows_are_exact_long_and_short(params: dict, length: int, rows: int) -> None:
    task = tasks.make("listops", **params)
    batch = task.sample(length, rows, seed=3)
    assert batch.inputs.shape == (rows, length)
    assert (batch.lengths == length).all() and (batch.inputs != task.pad_id).all()
    cap = task.params["max_depth"] - 1
    for r in range(rows):
        tokens = task.decode(batch.inputs[r])
        assert len(tokens) == length
        assert task.supervised_positions(batch, r) == [(length - 1, str(rd_value(tokens)))]
        assert batch.meta["depth"][r] == listops.nesting(tokens) <= cap
        assert batch.meta["ops"][r] == sum(t in OPERATORS for t in tokens)
        assert 2 * batch.meta["ops"][r] + sum(t.isdigit() for t in tokens) == length
        arity = _arities(tokens)
        assert min(arity) >= 2 and max(arity) <= task.params["max_args"]


def _arities(tokens: Sequence[str]) -> list[int]:
    stack: list[int] = []
    out = []
    for tok in tokens:
        if tok in OPERATORS:
            stack.append(0)
        elif tok == CLOSE:
            out.append(stack.pop())
            if stack:
                stack[-1] += 1
        else:
            stack[-1] += 1
    return out


def test_the_depth_cap_binds_at_long_lengths_and_not_beyond() -> None:
    task = tasks.make("listops")
    batch = task.sample(500, 256, seed=0)
    assert batch.meta["depth"].max() == 19  # max_depth − 1 nested operators, never 20
    assert (batch.meta["depth"] == 19).mean() > 0.5
    shallow = tasks.make("listops", max_depth=3)
    batch = shallow.sample(30, 64, seed=0)
    assert (batch.meta["depth"] == 2).all()  # 30 tokens need two levels; three are not allowed
    assert tasks.make("listops", max_depth=2).sample(7, 16, seed=0).meta["depth"].max() == 1


def test_same_seed_same_bytes_whatever_was_cached() -> None:
    task = tasks.make("listops", max_args=4, max_depth=7, value_p=0.3)
    listops.build_tables.cache_clear()
    first = task.sample(90, 50, seed=9)
    task.sample(900, 4, seed=1)  # bigger tables in the cache
    again = task.sample(90, 50, seed=9)
    listops.build_tables.cache_clear()
    fresh = task.sample(90, 50, seed=9)
    for other in (again, fresh):
        assert first.inputs.tobytes() == other.inputs.tobytes()
        assert first.targets.tobytes() == other.targets.tobytes()
        assert first.meta["depth"].tobytes() == other.meta["depth"].tobytes()
    assert task.sample(90, 50, seed=10).inputs.tobytes() != first.inputs.tobytes()


def _chi2(a: Counter[str], b: Counter[str]) -> float:
    """Two-sample χ² p-value over categories, pooling those with < 10 rows in both samples."""
    keys = sorted(set(a) | set(b))
    big = [k for k in keys if a[k] + b[k] >= 10]
    small = [k for k in keys if a[k] + b[k] < 10]
    table = [[a[k] for k in big], [b[k] for k in big]]
    if small:
        table[0].append(sum(a[k] for k in small))
        table[1].append(sum(b[k] for k in small))
    return float(stats.chi2_contingency(np.array(table))[1])


def _plain_rows(params: dict, rows: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    while len(out) < rows:
        try:
            s = plain_nb18(rnd, params["max_args"], params["max_depth"], params["value_p"], 12)
        except _TooLong:
            continue
        if len(s) >= 4:
            out.append(s)
    return out


def _sampled_like(task: tasks.Task, sizes: Counter[int], seed: int) -> Counter[str]:
    out: Counter[str] = Counter()
    for n, count in sorted(sizes.items()):
        batch = task.sample(n, count, seed=seed + n)
        out.update(shape(task.decode(batch.inputs[r])) for r in range(count))
    return out


@pytest.mark.parametrize(
    "params",
    [
        {"max_args": 5, "max_depth": 20, "value_p": 0.25},  # NB18's defaults
        {"max_args": 4, "max_depth": 3, "value_p": 0.4},  # the depth cap binds at N ≤ 12
    ],
)
def test_shapes_match_rejection_sampling_of_the_plain_generator(params: dict) -> None:
    """NB18's generator conditioned on 4 ≤ N ≤ 12 by rejection (20k rows); the sampler drawn at
    the same sizes (20k rows); tree shapes compared by a two-sample χ². The same test rejects
    the sampler with a different ``value_p`` (the law given N depends on it), so it has power."""
    plain = _plain_rows(params, 20_000, seed=1)
    sizes = Counter(len(s) for s in plain)
    assert len(sizes) >= 5
    expected = Counter(plain)
    ours = _sampled_like(tasks.make("listops", **params), sizes, seed=100)
    assert _chi2(expected, ours) > 1e-3
    wrong = dict(params, value_p=params["value_p"] + 0.2)
    assert _chi2(expected, _sampled_like(tasks.make("listops", **wrong), sizes, 200)) < 1e-6


def test_operators_and_digits_are_uniform() -> None:
    task = tasks.make("listops")
    batch = task.sample(200, 200, seed=4)
    tokens = Counter(t for r in range(len(batch)) for t in task.decode(batch.inputs[r]))
    ops = [tokens[o] for o in OPERATORS]
    digits = [tokens[str(d)] for d in range(10)]
    assert stats.chisquare(ops).pvalue > 1e-3 and stats.chisquare(digits).pvalue > 1e-3


def test_root_operator_and_values_follow_the_plain_generator_at_small_n() -> None:
    """Values: the sampler's answers at N = 4 (two digits under a uniform operator) against the
    exact distribution computed by enumeration."""
    task = tasks.make("listops")
    batch = task.sample(4, 20_000, seed=5)
    got = Counter(int(task.supervised(batch, r)[0]) for r in range(len(batch)))
    exact: Counter[int] = Counter()
    for op in OPERATORS:
        for a in range(10):
            for b in range(10):
                exact[listops.evaluate([op, str(a), str(b), CLOSE])] += 1
    total = sum(exact.values())
    expected = [exact[v] / total * 20_000 for v in range(10)]
    assert stats.chisquare([got[v] for v in range(10)], expected).pvalue > 1e-3


class ExactLaw:
    """The law of NB18 shapes given N, in exact integers (a separate algorithm: big-int
    polynomial powers by Kronecker substitution, no floats, no tilts).

    With a per-token factor c making c²·p/(A − 1), c·(1 − p) and c integers, a shape weighs
    ∏ ops c²p/(A−1) · ∏ digits above the cap c(1 − p) · ∏ digits at the cap c — the plain
    generator's probability times c^N, the same for every shape of N tokens.
    """

    def __init__(self, max_args: int, max_depth: int, value_p: float, n: int) -> None:
        p = Fraction(value_p).limit_denominator(1000)
        c = 1
        while (c * c * p / (max_args - 1)).denominator > 1 or (c * (1 - p)).denominator > 1:
            c += 1
        self.op, self.digit, self.cap = int(c * c * p / (max_args - 1)), int(c * (1 - p)), c
        self.a, self.levels, self.n = max_args, max_depth - 1, n
        # bytes per coefficient: a shape of s tokens weighs <= 4^s, there are <= 3^s shapes and
        # <= 2^s ways to split s among children, so every coefficient is < 2^(4.6·s)
        self.width = (46 * n) // 80 + 8

    def _powers(self, weights: list[int]) -> list[list[int]]:
        """weights^k (k = 0 … A) truncated to n + 1 coefficients."""
        width, size = self.width, self.n + 1
        packed = int.from_bytes(b"".join(v.to_bytes(width, "little") for v in weights), "little")
        mask = (1 << (8 * width * size)) - 1
        out, power = [[1] + [0] * self.n], 1
        for _ in range(self.a):
            power = (power * packed) & mask
            raw = power.to_bytes(width * size, "little")
            out.append(
                [int.from_bytes(raw[i * width : (i + 1) * width], "little") for i in range(size)]
            )
        return out

    def level(self, below: list[int]) -> list[int]:
        powers = self._powers(below)
        inner = [sum(powers[k][t] for k in range(2, self.a + 1)) for t in range(self.n - 1)]
        return [0, self.digit] + [self.op * v for v in inner]

    def weights(self, levels: int, cap: bool) -> list[list[int]]:
        """Total weight by size of subtrees with 0 … ``levels`` levels; ``cap``: the bottom
        digits are at the depth cap (else they weigh like any other digit: nesting <= levels)."""
        out = [[0, self.cap if cap else self.digit] + [0] * (self.n - 1)]
        for _ in range(levels):
            out.append(self.level(out[-1]))
        return out

    @functools.cached_property
    def capped(self) -> list[list[int]]:
        return self.weights(self.levels, cap=True)

    def nesting(self) -> dict[int, float]:
        """P(nesting = d | N = n) for every d."""
        total = self.capped[-1][self.n]
        at_most = [w[self.n] for w in self.weights(self.levels - 1, cap=False)] + [total]
        return {
            d: float(Fraction(at_most[d] - at_most[d - 1], total))
            for d in range(1, self.levels + 1)
            if at_most[d] > at_most[d - 1]
        }

    def root_arity(self) -> dict[int, float]:
        powers = self._powers(self.capped[-2])
        row = {k: powers[k][self.n - 2] for k in range(2, self.a + 1)}
        total = sum(row.values())
        return {k: float(Fraction(v, total)) for k, v in row.items() if v}


def _gof(observed: Counter[int], probs: dict[int, float], rows: int) -> float:
    """χ² goodness of fit, pooling the categories expected below 10 rows into one."""
    assert set(observed) <= set(probs)
    big = [k for k in sorted(probs) if probs[k] * rows >= 10]
    obs = [observed[k] for k in big]
    exp = [probs[k] * rows for k in big]
    rest = rows - sum(obs), rows * (1 - sum(probs[k] for k in big))
    if rest[1] >= 1:
        obs.append(rest[0])
        exp.append(rest[1])
    if len(obs) < 2:  # one category holds (almost) all the mass: every row must be in it
        return 1.0 if obs == [rows] else 0.0
    return float(stats.chisquare(obs, np.array(exp) * rows / sum(exp)).pvalue)


@pytest.mark.parametrize(
    ("params", "length"),
    [
        ({"max_args": 5, "max_depth": 20, "value_p": 0.25}, 200),  # the cap binds in 27% of rows
        ({"max_args": 3, "max_depth": 10, "value_p": 0.25}, 150),  # … in 99%
        ({"max_args": 10, "max_depth": 10, "value_p": 0.25}, 150),  # LRA-like
    ],
)
def test_long_rows_follow_the_exact_law(params: dict, length: int) -> None:
    """At long N, the nesting and root-arity frequencies of 8192 rows against their exact
    probabilities; this also tests the depth cap where it binds."""
    exact = ExactLaw(params["max_args"], params["max_depth"], params["value_p"], length)
    task = tasks.make("listops", **params)
    batch = task.sample(length, 8192, seed=11)
    nest = exact.nesting()
    assert _gof(Counter(batch.meta["depth"].tolist()), nest, 8192) > 1e-3
    # the root's children start where exactly one operator is open
    ids, close = batch.inputs, task.token_to_id[CLOSE]
    step = np.isin(ids, task.encode(OPERATORS)).astype(np.int64) - (ids == close)
    open_before = np.cumsum(step, axis=1) - step
    arity = Counter(((open_before == 1) & (ids != close)).sum(axis=1).tolist())
    assert _gof(arity, exact.root_arity(), 8192) > 1e-3


# --------------------------------------------------------------------- balancing
@pytest.mark.parametrize(("rows", "length"), [(10, 20), (64, 100), (101, 7), (7, 50), (1, 4)])
def test_balanced_batches_hold_each_value_floor_or_ceil_times(rows: int, length: int) -> None:
    task = tasks.make("listops", balanced=True)
    batch = task.sample(length, rows, seed=6)
    answers = [int(task.supervised(batch, r)[0]) for r in range(rows)]
    counts = Counter(answers)
    assert all(rows // 10 <= counts[v] <= -(-rows // 10) for v in range(10))
    assert sum(counts[v] > rows // 10 for v in range(10)) == rows % 10
    for r in range(rows):
        tokens = task.decode(batch.inputs[r])
        assert len(tokens) == length and answers[r] == rd_value(tokens)
        assert batch.meta["depth"][r] == listops.nesting(tokens)
    if rows >= 64:
        assert answers != sorted(answers)  # labels are shuffled, not grouped


def test_balanced_rows_keep_the_conditional_law_given_their_value() -> None:
    """Rows of value v in balanced batches against rows of value v in plain batches (N = 8)."""
    plain, bal = tasks.make("listops"), tasks.make("listops", balanced=True)
    a, b = plain.sample(8, 20_000, seed=7), bal.sample(8, 20_000, seed=8)
    for v in ("0", "9"):
        sa = Counter(
            " ".join(plain.decode(a.inputs[r]))
            for r in range(20_000)
            if plain.supervised(a, r) == [v]
        )
        sb = Counter(
            " ".join(bal.decode(b.inputs[r])) for r in range(20_000) if bal.supervised(b, r) == [v]
        )
        assert sum(sb.values()) == 2000
        shapes_a = Counter(
            {k: c for k, c in Counter(shape(s.split()) for s in sa.elements()).items()}
        )
        shapes_b = Counter(shape(s.split()) for s in sb.elements())
        assert _chi2(shapes_a, shapes_b) > 1e-3


# --------------------------------------------------------------------- lengths and parameters
def test_feasible_lengths_match_enumerated_size_sets() -> None:
    for a, d in [(2, 5), (3, 4), (5, 3), (2, 2), (4, 2), (10, 3)]:
        task = tasks.make("listops", max_args=a, max_depth=d)
        want = sorted(n for n in size_set(a, d - 1, 130) if n >= 4)
        assert task.feasible_lengths(0, 131) == want
        for n in range(-2, 131):
            if n in want:
                task.check_length(n)
            else:
                with pytest.raises(UserError, match="nearest feasible lengths"):
                    task.check_length(n)
    assert all(n % 3 == 1 for n in tasks.make("listops", max_args=2).feasible_lengths(4, 400))


@pytest.mark.parametrize(
    ("params", "length", "nearest"),
    [
        ({}, 2, "lengths: 4$"),
        ({}, 3, "lengths: 4$"),
        ({}, -1, "lengths: 4$"),
        ({"max_args": 2, "max_depth": 3}, 5, "lengths: 4 and 7$"),
        ({"max_args": 2, "max_depth": 3}, 11, "lengths: 10$"),
        ({"max_args": 2}, 101, "lengths: 100 and 103$"),
        ({"max_depth": 2}, 8, "lengths: 7$"),
    ],
)
def test_infeasible_lengths_name_the_nearest_feasible(
    params: dict, length: int, nearest: str
) -> None:
    task = tasks.make("listops", **params)
    with pytest.raises(UserError, match=nearest) as err:
        task.sample(length, 2, seed=0)
    assert "\n" not in str(err.value) and f"exactly {length} tokens" in str(err.value)


def test_lengths_past_the_sampler_budget_are_a_clear_error() -> None:
    with pytest.raises(UserError, match="beyond the exact sampler") as err:
        tasks.make("listops").sample(100_000, 1, seed=0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("max_args", 1),
        ("max_args", "x"),
        ("max_depth", 1),
        ("max_depth", 2.5),
        ("value_p", 0),
        ("value_p", 1),
        ("value_p", 1.5),
        ("value_p", "nan"),
        ("balanced", "maybe"),
    ],
)
def test_bad_parameters_are_one_line_errors(param: str, value: object) -> None:
    with pytest.raises(UserError, match=f"parameter '{param}' must be") as err:
        tasks.make("listops", **{param: value})
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------- bins
def test_rc23_and_lra_bins_are_the_papers() -> None:
    assert (listops.RC23_TRAIN.lo, listops.RC23_TRAIN.hi) == (4, 101)
    assert [(b.lo, b.hi) for b in listops.RC23_TEST] == [
        (lo, lo + 100) for lo in range(200, 1000, 100)
    ]
    assert listops.LRA_LIKE.params == {"max_args": 10, "max_depth": 10}
    assert (listops.LRA_LIKE.lo, listops.LRA_LIKE.hi) == (501, 2000)


def test_bin_lengths_are_uniform_over_the_feasible_ones() -> None:
    task = tasks.make("listops", max_args=2)
    rng = np.random.default_rng(0)
    drawn = listops.draw_bin_lengths(task, listops.RC23_TEST[0], 6_600, rng)
    feasible = task.feasible_lengths(200, 300)
    assert feasible == [n for n in range(200, 300) if n % 3 == 1]
    counts = Counter(drawn.tolist())
    assert set(counts) == set(feasible)
    assert stats.chisquare([counts[n] for n in feasible]).pvalue > 1e-3


def test_sample_bin_draws_one_batch_per_distinct_length() -> None:
    task = tasks.make("listops")
    bin_ = listops.LengthBin("small", 20, 30)
    parts = listops.sample_bin(task, bin_, 40, seed=3)
    assert sum(len(b) for _, b in parts) == 40
    assert [n for n, _ in parts] == sorted({n for n, _ in parts})
    for n, batch in parts:
        assert 20 <= n < 30 and batch.inputs.shape[1] == n
    again = listops.sample_bin(task, bin_, 40, seed=3)
    assert all(
        a[1].inputs.tobytes() == b[1].inputs.tobytes() for a, b in zip(parts, again, strict=True)
    )
    with pytest.raises(UserError, match="no feasible length"):
        listops.sample_bin(tasks.make("listops", max_depth=2), bin_, 4, seed=0)


def test_lra_like_rows() -> None:
    task = tasks.make("listops", **listops.LRA_LIKE.params)
    batch = task.sample(1500, 4, seed=0)
    for r in range(4):
        tokens = task.decode(batch.inputs[r])
        assert len(tokens) == 1500 and listops.nesting(tokens) <= 9
        assert task.solve(tokens) == [str(rd_value(tokens))]
