"""dyck / dyck_next: the generation rule, the corruptions, the targets, the helpers.

Membership is checked here with recognisers written independently of the module (a
recursive-descent parser, a counter for k = 1) and stack tops with pair-deletion rewriting, so
a bug shared by the generator and the module's reference solvers would still show.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks
from sepbench.errors import UserError
from sepbench.tasks import dyck
from sepbench.tasks.dyck import EMPTY


# --------------------------------------------------------------------- independent recognisers
def parse(tokens: Sequence[str]) -> list[tuple[str, int]]:
    return [(tok[0], int(tok[1:])) for tok in tokens]


def rd_member(tokens: Sequence[str], types: int, depth: int) -> bool:
    """Recursive descent on S -> (P)*, P -> '(i' S ')i', tracking the nesting level."""
    toks = parse(tokens)
    if any(kind >= types for _, kind in toks):
        return False
    pos = 0

    def seq(level: int) -> bool:
        # S at nesting `level`: pairs until a closer (or the end) comes
        nonlocal pos
        while pos < len(toks) and toks[pos][0] == "(":
            kind = toks[pos][1]
            if level + 1 > depth:
                return False
            pos += 1
            if not seq(level + 1):
                return False
            if pos >= len(toks) or toks[pos] != (")", kind):
                return False
            pos += 1
        return True

    return seq(0) and pos == len(toks)


def count_member(tokens: Sequence[str], depth: int) -> bool:
    """k = 1 only: the running count stays in [0, depth] and ends at 0."""
    count = 0
    for tok in tokens:
        count += 1 if tok[0] == "(" else -1
        if not 0 <= count <= depth:
            return False
    return count == 0


def max_depth(tokens: Sequence[str]) -> int:
    depth = best = 0
    for tok in tokens:
        depth += 1 if tok[0] == "(" else -1
        best = max(best, depth)
    return best


def rewrite_tops(tokens: Sequence[str]) -> list[str]:
    """Stack tops by deleting adjacent matched pairs from each prefix until none is left."""
    out = []
    for t in range(len(tokens)):
        rest = list(tokens[: t + 1])
        changed = True
        while changed:
            changed = False
            for i in range(len(rest) - 1):
                if rest[i][0] == "(" and rest[i + 1] == ")" + rest[i][1:]:
                    del rest[i : i + 2]
                    changed = True
                    break
        assert all(tok[0] == "(" for tok in rest), "a prefix of a Dyck string reduces to openers"
        out.append(")" + rest[-1][1:] if rest else EMPTY)
    return out


def level_tops(tokens: Sequence[str]) -> list[str]:
    """Linear-time tops for long strings: the last opener at the current level."""
    last_at: dict[int, str] = {}
    level = 0
    out = []
    for tok in tokens:
        if tok[0] == "(":
            level += 1
            last_at[level] = tok[1:]
        else:
            level -= 1
        out.append(")" + last_at[level] if level else EMPTY)
    return out


def language(types: int, depth: int, length: int) -> set[tuple[str, ...]]:
    """Dyck-(types, depth) strings of this length, by brute force over all strings."""
    alphabet = dyck.bracket_tokens(types)
    return {s for s in itertools.product(alphabet, repeat=length) if rd_member(s, types, depth)}


def rule_probability(tokens: Sequence[str], types: int, depth: int) -> float:
    """The probability tasks.md's generation rule gives to one string."""
    stack: list[str] = []
    prob = 1.0
    n = len(tokens)
    for t, tok in enumerate(tokens):
        d, r = len(stack), n - t
        is_open = tok[0] == "("
        if d in (r, depth):
            options = {"close": 1.0}
        elif d == 0:
            options = {"open": 1.0}
        else:
            options = {"open": 0.5, "close": 0.5} if d + 1 <= r - 1 else {"close": 1.0}
        if is_open:
            prob *= options.get("open", 0.0) / types
            stack.append(tok[1:])
        else:
            if not stack or stack[-1] != tok[1:]:
                return 0.0
            prob *= options.get("close", 0.0)
            stack.pop()
    return prob if not stack else 0.0


def walk_strings(types: int, depth: int, length: int, count: int, seed: int) -> list[tuple]:
    opens, kinds, _ = dyck.sample_walks(count, length, types, depth, np.random.default_rng(seed))
    vocab = ("<pad>", *dyck.bracket_tokens(types))
    ids = dyck.token_ids(opens, kinds)
    return [tuple(vocab[i] for i in row) for row in ids]


# --------------------------------------------------------------------- strategies
even_lengths = st.integers(1, 24).map(lambda h: 2 * h)
cases = st.tuples(
    st.integers(1, 4),  # types
    st.integers(1, 5),  # depth
    even_lengths,
    st.integers(0, 2**31 - 1),  # seed
    st.integers(1, 24),  # batch size
)


# --------------------------------------------------------------------- dyck
@settings(max_examples=60)
@given(cases)
def test_positives_are_in_the_language_and_negatives_outside(case: tuple) -> None:
    k, depth, n, seed, bsz = case
    task = tasks.make("dyck", types=k, depth=depth)
    batch = task.sample(n, bsz, seed=seed)
    assert batch.inputs.shape == (bsz, n)
    for row in range(bsz):
        tokens = task.decode(batch.inputs[row])
        assert len(tokens) == n
        (answer,) = task.supervised(batch, row)
        member = rd_member(tokens, k, depth)
        assert member == (answer == "yes"), (tokens, answer)
        assert task.solve(tokens) == [answer]
        if k == 1:
            assert count_member(tokens, depth) == member
        if member:
            assert max_depth(tokens) <= depth
            assert batch.meta["corruptions"][row] == 0
        else:
            assert 1 <= batch.meta["corruptions"][row] <= max(1, n // 10)


def test_negatives_need_redraws_and_still_come_out_invalid() -> None:
    # with c >= 2 some corruptions land back in the language (e.g. retyping both ends of a
    # pair); those rows must be redrawn, so every "no" row is still outside
    for k, depth in [(1, 2), (2, 2), (2, 1)]:
        task = tasks.make("dyck", types=k, depth=depth)
        batch = task.sample(40, 600, seed=3)
        counts = batch.meta["corruptions"]
        for row in range(len(batch)):
            tokens = task.decode(batch.inputs[row])
            (answer,) = task.supervised(batch, row)
            assert rd_member(tokens, k, depth) == (answer == "yes")
        assert set(counts[counts > 0]) == {1, 2, 3, 4}


def test_some_corruptions_of_positives_stay_valid_so_redrawing_matters() -> None:
    # the case the redraw exists for: corrupt many positives once and find valid results
    rng = np.random.default_rng(0)
    opens, kinds, _ = dyck.sample_walks(4000, 40, 2, 2, rng)
    o, kd, counts = dyck.corrupt(opens, kinds, 2, rng)
    still = dyck.in_dyck(o, kd, 2)
    assert still.any() and (counts[still] >= 2).all()


def test_one_corruption_always_leaves_the_language() -> None:
    # N < 20 means c = 1: every single retyping or flip must leave Dyck-(k, D)
    for k, depth, n in [(2, 2, 6), (1, 3, 6), (3, 2, 4)]:
        for s in language(k, depth, n):
            for t, tok in enumerate(s):
                variants = [("(" if tok[0] == ")" else ")") + tok[1:]]
                variants += [tok[0] + str(j) for j in range(k) if str(j) != tok[1:]]
                for v in variants:
                    assert not rd_member((*s[:t], v, *s[t + 1 :]), k, depth)


def test_balance_and_shuffled_order() -> None:
    task = tasks.make("dyck")
    batch = task.sample(32, 1001, seed=9)
    answers = np.array([task.supervised(batch, r)[0] for r in range(len(batch))])
    assert abs((answers == "yes").sum() - (answers == "no").sum()) == 1
    assert 0 < (answers[:500] == "yes").sum() < 500  # not sorted by label


# --------------------------------------------------------------------- the generation rule
@pytest.mark.parametrize(("k", "depth", "n"), [(2, 2, 4), (2, 2, 6), (1, 3, 8), (3, 1, 4)])
def test_every_string_of_the_language_is_generated(k: int, depth: int, n: int) -> None:
    lang = language(k, depth, n)
    seen = set(walk_strings(k, depth, n, 20_000, seed=1))
    assert seen == lang


@pytest.mark.parametrize(("k", "depth", "n"), [(2, 2, 6), (1, 3, 8), (2, 3, 6)])
def test_string_frequencies_follow_the_rule(k: int, depth: int, n: int) -> None:
    count = 200_000
    freq = Counter(walk_strings(k, depth, n, count, seed=2))
    lang = language(k, depth, n)
    probs = {s: rule_probability(s, k, depth) for s in lang}
    assert abs(sum(probs.values()) - 1.0) < 1e-12
    assert set(freq) <= lang
    for s, p in probs.items():
        sigma = (p * (1 - p) / count) ** 0.5
        assert abs(freq[s] / count - p) <= 5 * sigma + 1e-9, (s, freq[s] / count, p)


def test_generated_depth_reaches_the_bound_and_types_are_uniform() -> None:
    rng = np.random.default_rng(4)
    opens, kinds, _ = dyck.sample_walks(2000, 30, 3, 4, rng)
    depth_after = np.cumsum(np.where(opens, 1, -1), axis=1)
    assert depth_after.max() == 4 and depth_after.min() == 0 and (depth_after[:, -1] == 0).all()
    share = np.bincount(kinds[opens], minlength=3) / opens.sum()
    assert np.allclose(share, 1 / 3, atol=0.01)


# --------------------------------------------------------------------- corruptions
@pytest.mark.parametrize(("k", "n"), [(1, 40), (2, 40), (3, 64), (2, 6)])
def test_corruption_counts_positions_and_kinds(k: int, n: int) -> None:
    rng = np.random.default_rng(5)
    rows = 20_000
    opens, kinds, _ = dyck.sample_walks(rows, n, k, 3, rng)
    o, kd, counts = dyck.corrupt(opens, kinds, k, rng)
    cmax = max(1, n // 10)
    changed = (o != opens) | (kd != kinds)
    assert (changed.sum(axis=1) == counts).all()
    assert counts.min() == 1 and counts.max() == cmax
    hist = np.bincount(counts, minlength=cmax + 1)[1:] / rows
    assert np.allclose(hist, 1 / cmax, atol=0.02)
    # each change is either a retyping (same direction) or a flip (same type), never both
    flipped = o != opens
    retyped = kd != kinds
    assert not (flipped & retyped).any()
    if k == 1:
        assert not retyped.any()
    else:
        share = retyped.sum() / changed.sum()
        assert abs(share - 0.5) < 0.02
        assert set(np.unique(kd)) == set(range(k))
    # positions: uniform over the string (and within rows with equal counts)
    per_position = changed.sum(axis=0) / changed.sum()
    assert np.allclose(per_position, 1 / n, atol=0.25 / n)
    # the inputs are left alone
    assert (dyck.in_dyck(opens, kinds, 3)).all()


# --------------------------------------------------------------------- dyck_next
@settings(max_examples=50)
@given(cases)
def test_dyck_next_targets_are_the_stack_tops(case: tuple) -> None:
    k, depth, n, seed, bsz = case
    task = tasks.make("dyck_next", types=k, depth=depth)
    batch = task.sample(n, bsz, seed=seed)
    assert (batch.targets >= 0).all(), "every position is supervised"
    for row in range(bsz):
        tokens = task.decode(batch.inputs[row])
        assert len(tokens) == n and rd_member(tokens, k, depth)
        targets = task.supervised(batch, row)
        assert targets == rewrite_tops(tokens) == level_tops(tokens)
        assert targets == dyck.stack_tops(tokens) == task.solve(tokens)
        assert targets[-1] == EMPTY


def test_dyck_next_and_dyck_positives_come_from_the_same_rule() -> None:
    k, depth, n = 2, 2, 6
    next_task = tasks.make("dyck_next", types=k, depth=depth)
    batch = next_task.sample(n, 20_000, seed=6)
    seen = {tuple(next_task.decode(row)) for row in batch.inputs}
    assert seen == language(k, depth, n)
    yes_task = tasks.make("dyck", types=k, depth=depth)
    yb = yes_task.sample(n, 40_000, seed=6)
    positives = {
        tuple(yes_task.decode(yb.inputs[r]))
        for r in range(len(yb))
        if yb.targets[r, -1] == yes_task.token_to_id["yes"]
    }
    assert positives == seen


# --------------------------------------------------------------------- long strings
@pytest.mark.parametrize("name", ["dyck", "dyck_next"])
def test_long_strings(name: str) -> None:
    n = 2048
    task = tasks.make(name, types=3, depth=3)
    batch = task.sample(n, 24, seed=8)
    assert batch.inputs.shape == (24, n)
    for row in range(len(batch)):
        tokens = task.decode(batch.inputs[row])
        assert len(tokens) == n
        targets = task.supervised(batch, row)
        assert task.solve(tokens) == targets
        if name == "dyck":
            assert rd_member(tokens, 3, 3) == (targets == ["yes"])
            if targets == ["no"]:
                assert 1 <= batch.meta["corruptions"][row] <= n // 10
        else:
            assert rd_member(tokens, 3, 3)
            assert targets == level_tops(tokens)


def test_huge_depth_bound_is_cheap_and_exact() -> None:
    # D far above N/2 must behave like D = N/2 (and not allocate a D-sized stack per row)
    task = tasks.make("dyck_next", types=2, depth=10**9)
    a = task.sample(64, 8, seed=1)
    b = tasks.make("dyck_next", types=2, depth=32).sample(64, 8, seed=1)
    assert a.inputs.tobytes() == b.inputs.tobytes()
    assert a.targets.tobytes() == b.targets.tobytes()


def test_many_types_use_wider_integers() -> None:
    task = tasks.make("dyck_next", types=300, depth=4)
    batch = task.sample(40, 64, seed=0)
    used = {tok for row in batch.inputs for tok in task.decode(row)}
    assert max(int(tok[1:]) for tok in used) > 200
    for row in range(len(batch)):
        assert task.solve(task.decode(batch.inputs[row])) == task.supervised(batch, row)


# --------------------------------------------------------------------- parameters
def test_types_change_the_vocabulary_and_the_strings() -> None:
    for k in (1, 2, 3):
        for name in ("dyck", "dyck_next"):
            task = tasks.make(name, types=k)
            assert task.vocab[1 : 1 + 2 * k] == tuple(dyck.bracket_tokens(k))
            batch = task.sample(16, 256, seed=0)
            used = {tok[1:] for row in batch.inputs for tok in task.decode(row)}
            assert used == {str(i) for i in range(k)}


def test_depth_bounds_the_positives() -> None:
    for depth in (1, 2, 3, 4):
        task = tasks.make("dyck_next", depth=depth)
        batch = task.sample(16, 512, seed=0)
        depths = [max_depth(task.decode(row)) for row in batch.inputs]
        assert max(depths) == depth
    # and recognition: the same string is yes under a looser bound
    deep = ["(0", "(1", ")1", ")0"]
    assert tasks.make("dyck", depth=1).solve(deep) == ["no"]
    assert tasks.make("dyck", depth=2).solve(deep) == ["yes"]


def test_vocabularies() -> None:
    assert tasks.make("dyck").vocab == ("<pad>", "(0", ")0", "(1", ")1", "yes", "no")
    assert tasks.make("dyck_next", types=1).vocab == ("<pad>", "(0", ")0", "_")


@pytest.mark.parametrize("name", ["dyck", "dyck_next"])
def test_bad_lengths_and_parameters(name: str) -> None:
    task = tasks.make(name)
    for n in (7, 15, 257):
        with pytest.raises(UserError, match="even"):
            task.sample(n, 4, seed=0)
    for n in (0, 1, -2):
        with pytest.raises(UserError, match="length"):
            task.sample(n, 4, seed=0)
    for param in ("types", "depth"):
        with pytest.raises(UserError, match=param):
            tasks.make(name, **{param: 0})


# --------------------------------------------------------------------- helpers
def test_reference_recogniser_rules() -> None:
    assert dyck.is_dyck([], 2, 2)
    assert dyck.is_dyck(["(0", "(1", ")1", ")0", "(1", ")1"], 2, 2)
    assert not dyck.is_dyck(["(0", ")1"], 2, 2)  # wrong type
    assert not dyck.is_dyck([")0", "(0"], 2, 2)  # closer on an empty stack
    assert not dyck.is_dyck(["(0", "(0"], 2, 2)  # left open
    assert not dyck.is_dyck(["(0", "(0", "(0", ")0", ")0", ")0"], 2, 2)  # too deep
    assert dyck.is_dyck(["(0", "(0", "(0", ")0", ")0", ")0"], 1, 3)
    assert not dyck.is_dyck(["(2", ")2"], 2, 2)  # type outside k
    with pytest.raises(UserError, match="bracket"):
        dyck.is_dyck(["(0", "x"], 2, 2)
    with pytest.raises(UserError, match="bracket"):
        dyck.is_dyck(["(", ")"], 2, 2)


def test_stack_tops_rules() -> None:
    assert dyck.stack_tops(["(0", "(1", ")1", "(0"]) == [")0", ")1", ")0", ")0"]
    assert dyck.stack_tops(["(1", ")1", "(0", ")0"]) == [")1", "_", ")0", "_"]
    with pytest.raises(UserError, match="matches no open bracket"):
        dyck.stack_tops(["(0", ")1"])
    with pytest.raises(UserError, match="matches no open bracket"):
        dyck.stack_tops([")0"])
    with pytest.raises(UserError, match="Dyck"):
        tasks.make("dyck_next", depth=1).solve(["(0", "(0", ")0", ")0"])


@settings(max_examples=60)
@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.lists(st.tuples(st.booleans(), st.integers(0, 2)), min_size=0, max_size=14),
)
def test_vectorised_checker_agrees_with_the_recognisers(
    k: int, depth: int, brackets: list[tuple[bool, int]]
) -> None:
    brackets = [(o, t % k) for o, t in brackets]
    tokens = [("(" if o else ")") + str(t) for o, t in brackets]
    opens = np.array([[o for o, _ in brackets]], dtype=bool).reshape(1, -1)
    kinds = np.array([[t for _, t in brackets]], dtype=np.int64).reshape(1, -1)
    expected = rd_member(tokens, k, depth)
    assert dyck.is_dyck(tokens, k, depth) == expected
    assert bool(dyck.in_dyck(opens, kinds, depth)[0]) == expected


def test_vectorised_checker_on_valid_and_near_valid_batches() -> None:
    rng = np.random.default_rng(7)
    opens, kinds, _ = dyck.sample_walks(300, 24, 2, 3, rng)
    o, kd, _ = dyck.corrupt(opens, kinds, 2, rng)
    for oo, kk in ((opens, kinds), (o, kd)):
        got = dyck.in_dyck(oo, kk, 3)
        vocab = ("<pad>", *dyck.bracket_tokens(2))
        ids = dyck.token_ids(oo, kk)
        want = [rd_member([vocab[i] for i in row], 2, 3) for row in ids]
        assert got.tolist() == want
    assert dyck.in_dyck(opens, kinds, 3).all()
    assert not dyck.in_dyck(opens, kinds, 1).all()
