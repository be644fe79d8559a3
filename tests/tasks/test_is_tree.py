"""is_tree (W24): graphs, labels, the CoT and retrieval traces, the retriever, the layout."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepbench import tasks
from sepbench.errors import UserError
from sepbench.tasks import IGNORE
from sepbench.tasks import is_tree as it

GRAPHS = ("binary", "random")
TRACES = ("none", "cot", "retrieval")


@dataclass(frozen=True)
class Case:
    task: tasks.Task
    n: int
    batch: tasks.Batch

    def rows(self) -> range:
        return range(len(self.batch))

    def tokens(self, row: int) -> list[str]:
        return self.task.decode(self.batch.inputs[row])

    def label(self, row: int) -> str:
        return self.task.supervised(self.batch, row)[-1]


@st.composite
def cases(
    draw: st.DrawFn,
    graphs: tuple[str, ...] = GRAPHS,
    traces: tuple[str, ...] = TRACES,
    max_n: int = 40,
    max_batch: int = 8,
) -> Case:
    graph = draw(st.sampled_from(graphs))
    trace = draw(st.sampled_from(traces))
    n = draw(st.integers(it.MIN_NODES, max_n))
    max_length = draw(st.sampled_from([max_n, 64]))
    task = tasks.make("is_tree", graph=graph, trace=trace, max_length=max_length)
    size = draw(st.integers(1, max_batch))
    seed = draw(st.integers(0, 2**31 - 1))
    return Case(task, n, task.sample(n, size, seed=seed))


def words(text: str) -> list[str]:
    return text.split()


def parse(tokens: list[str]) -> tuple[int, list[tuple[int, int]], list[str]]:
    """(n, input edges, everything after the first [EOS]) — written here, not imported."""
    assert tokens[0] == "[BOS]"
    eos = tokens.index("[EOS]")
    body = tokens[1:eos]
    assert len(body) % 3 == 0
    edges = []
    for k in range(0, len(body), 3):
        a, dash, b = body[k : k + 3]
        assert dash == "-"
        edges.append((int(a), int(b)))
    return len(edges) + 1, edges, tokens[eos + 1 :]


def graph_of(tokens: list[str]) -> nx.Graph:
    n, edges, _ = parse(tokens)
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    return g


def step_heads(trace: list[str]) -> list[str]:
    """The node written at the start of each retrieval step (node, then [STARTSEARCH], and not
    itself a retrieval result)."""
    return [
        tok
        for k, tok in enumerate(trace[:-1])
        if tok.isdigit() and trace[k + 1] == it.START and (k == 0 or trace[k - 1] != it.END)
    ]


# --------------------------------------------------------------------------- graphs and labels
@settings(max_examples=40)
@given(cases(traces=("none",)))
def test_every_graph_has_n_minus_1_distinct_edges_written_larger_first(case: Case) -> None:
    for row in case.rows():
        tokens = case.tokens(row)
        n, edges, rest = parse(tokens)
        assert n == case.n and rest == []
        assert len(edges) == case.n - 1
        assert all(case.n > a > b >= 0 for a, b in edges)
        assert len(set(edges)) == len(edges)
        assert case.batch.lengths[row] == 3 * case.n - 1


@settings(max_examples=40)
@given(cases())
def test_the_answer_is_networkx_is_tree(case: Case) -> None:
    for row in case.rows():
        tokens = case.tokens(row)
        expected = "[TRUE]" if nx.is_tree(graph_of(tokens)) else "[FALSE]"
        assert case.label(row) == expected
        if case.task.params["trace"] == "none":
            # the answer is the target at the [EOS] position, the last input token
            assert case.batch.targets[row, len(tokens) - 1] == case.task.token_to_id[expected]


@settings(max_examples=25)
@given(cases(graphs=("binary",), traces=("none",), max_batch=16))
def test_binary_non_trees_are_a_triangle_plus_a_detached_star(case: Case) -> None:
    for row in case.rows():
        g = graph_of(case.tokens(row))
        parts = [g.subgraph(c) for c in nx.connected_components(g)]
        if case.label(row) == "[TRUE]":
            assert len(parts) == 1
            # two hubs joined through the extra edge: a double-star path hub-x-y-hub
            assert nx.diameter(g) <= 5
            continue
        assert len(parts) == 2
        cyclic = [p for p in parts if p.number_of_edges() == p.number_of_nodes()]
        acyclic = [p for p in parts if nx.is_tree(p)]
        assert len(cyclic) == 1 and len(acyclic) == 1
        (cycle,) = nx.cycle_basis(cyclic[0])
        assert len(cycle) == 3
        # the triangle's hub is adjacent to every node of its component; the rest is a star
        hub = max(cycle, key=cyclic[0].degree)
        assert cyclic[0].degree(hub) == cyclic[0].number_of_nodes() - 1
        star = acyclic[0]
        assert star.number_of_nodes() <= 2 or max(d for _, d in star.degree) == (
            star.number_of_nodes() - 1
        )


@settings(max_examples=25)
@given(cases(graphs=("random",), traces=("none",), max_batch=16))
def test_random_non_trees_are_a_tree_with_one_edge_moved_into_a_cycle(case: Case) -> None:
    for row in case.rows():
        g = graph_of(case.tokens(row))
        if case.label(row) == "[TRUE]":
            assert nx.is_tree(g)
            continue
        assert nx.number_connected_components(g) == 2
        (cycle,) = nx.cycle_basis(g)
        assert len(cycle) >= 3


def test_random_graphs_are_not_two_hub_graphs() -> None:
    n = 32
    binary = tasks.make("is_tree", graph="binary", trace="none").sample(n, 64, seed=3)
    rand = tasks.make("is_tree", graph="random", trace="none").sample(n, 64, seed=3)
    task = tasks.make("is_tree", trace="none")

    def hub_share(batch: tasks.Batch) -> float:
        # fraction of edges touching the two highest-degree nodes
        shares = []
        for row in range(len(batch)):
            g = graph_of(task.decode(batch.inputs[row]))
            hubs = sorted(g.degree, key=lambda nd: -nd[1])[:2]
            shares.append(sum(d for _, d in hubs) / g.number_of_edges())
        return float(np.mean(shares))

    assert hub_share(binary) > 0.9
    assert hub_share(rand) < 0.6


@pytest.mark.parametrize("graph", GRAPHS)
def test_labels_are_exactly_balanced_and_shuffled(graph: str) -> None:
    task = tasks.make("is_tree", graph=graph, trace="none")
    for size, seed in [(64, 0), (101, 1), (2, 2), (1, 3)]:
        batch = task.sample(12, size, seed=seed)
        labels = [task.supervised(batch, r)[-1] for r in range(size)]
        assert abs(labels.count("[TRUE]") - labels.count("[FALSE]")) <= size % 2
    batch = task.sample(12, 64, seed=0)
    labels = [task.supervised(batch, r)[-1] for r in range(64)]
    assert labels != sorted(labels)


def grows_connected(edges: list[tuple[int, int]]) -> bool:
    """Whether every edge after the first touches a node of the earlier edges (the order in
    which a recursive tree is built)."""
    seen = set(edges[0])
    for a, b in edges[1:]:
        if a not in seen and b not in seen:
            return False
        seen |= {a, b}
    return True


def test_edge_order_is_random() -> None:
    n, size = 16, 400
    binary = tasks.make("is_tree", graph="binary", trace="none")
    batch = binary.sample(n, size, seed=9)
    where = []  # the position of the one edge joining two non-hubs (built last)
    for row in range(size):
        g = graph_of(binary.decode(batch.inputs[row]))
        hubs = {v for v, _ in sorted(g.degree, key=lambda nd: -nd[1])[:2]}
        _, edges, _ = parse(binary.decode(batch.inputs[row]))
        spare = [k for k, e in enumerate(edges) if not set(e) & hubs]
        if len(spare) == 1:
            where.append(spare[0])
    assert len(where) > size // 2
    counts = np.bincount(where, minlength=n - 1)
    assert (counts > 0).all()  # every position occurs
    assert abs(np.mean(where) - (n - 2) / 2) < 1.0  # uniform: mean (n - 2) / 2

    rand = tasks.make("is_tree", graph="random", trace="none")
    batch = rand.sample(n, size, seed=9)
    grown = [grows_connected(parse(rand.decode(batch.inputs[r]))[1]) for r in range(size)]
    assert sum(grown) < size // 20  # build order is shuffled away


# --------------------------------------------------------------------------- the CoT trace
@settings(max_examples=40)
@given(cases(traces=("cot",)))
def test_cot_trace_is_the_dfs_tour_of_the_component_of_0(case: Case) -> None:
    for row in case.rows():
        tokens = case.tokens(row)
        g = graph_of(tokens)
        _, _, rest = parse(tokens)
        *trace, eos, answer = rest
        assert eos == "[EOS]"
        walk = [int(v) for v in trace]
        assert walk[0] == 0
        assert all(g.has_edge(a, b) for a, b in itertools.pairwise(walk))
        component = nx.node_connected_component(g, 0)
        k = len(component)
        assert set(walk) <= component
        if g.subgraph(component).number_of_edges() == k - 1:
            # no cycle reachable: the full tour, 2k - 1 nodes, back at 0
            assert len(walk) == 2 * k - 1 and set(walk) == component and walk[-1] == 0
        else:
            assert len(walk) < 2 * k - 1  # it stopped at the first edge closing a cycle
        assert (answer == "[TRUE]") == (set(walk) == set(range(case.n)))
        if answer == "[TRUE]":
            assert len(walk) == 2 * case.n - 1
            assert case.batch.lengths[row] == 5 * case.n


def test_cot_reference_solver_on_a_hand_written_row() -> None:
    task = tasks.make("is_tree", trace="cot")
    tree = words("[BOS] 3 - 0 2 - 0 1 - 2 [EOS]")
    assert task.solve(tree) == words("0 3 0 2 1 2 0 [EOS] [TRUE]")
    triangle = words("[BOS] 2 - 0 1 - 0 2 - 1 [EOS]")
    assert task.solve(triangle) == words("0 2 1 [EOS] [FALSE]")
    detached = words("[BOS] 1 - 0 3 - 2 2 - 1 4 - 5 5 - 6 6 - 4 [EOS]")  # n = 7
    assert task.solve(detached) == words("0 1 2 3 2 1 0 [EOS] [FALSE]")


# --------------------------------------------------------------------------- the retrieval trace
@settings(max_examples=40)
@given(cases(traces=("retrieval",)))
def test_every_retrieval_result_is_what_retrieve_finds_in_the_context(case: Case) -> None:
    end = case.task.token_to_id[it.END]
    for row in case.rows():
        tokens = case.tokens(row)
        ids = case.batch.inputs[row, : len(tokens)]
        searches = [k for k, tok in enumerate(tokens) if tok == it.END]
        assert searches, "a retrieval trace always searches"
        for k in searches:
            start = max(j for j in range(k) if tokens[j] == it.START)
            query = tokens[start + 1 : k]
            assert it.retrieve(tokens[: k + 1], query) == tokens[k + 1]
            assert it.retrieve(tokens[:k], query) == tokens[k + 1]  # without [ENDSEARCH] too
            assert it.retrieve_ids(ids[: k + 1], ids[start + 1 : k]) == ids[k + 1]
            assert case.task.retrieval_result(tokens[: k + 1]) == tokens[k + 1]
            assert case.batch.targets[row, k] == IGNORE  # the retriever writes it, not the model
        assert (case.batch.inputs[row] == end).sum() == len(searches)


@settings(max_examples=30)
@given(cases(traces=("retrieval",)))
def test_retrieval_steps_follow_the_cot_tour_and_decide_like_it(case: Case) -> None:
    cot = tasks.make("is_tree", graph=case.task.params["graph"], trace="cot")
    for row in case.rows():
        tokens = case.tokens(row)
        _, _, rest = parse(tokens)
        assert rest[-2] == "[EOS]"
        assert step_heads(rest[:-2]) == cot.solve(tokens)[:-2]
        # facts `x ~ parent` are written once per visited node other than 0
        facts = [
            rest[k : k + 3]
            for k in range(len(rest) - 2)
            if rest[k].isdigit() and rest[k + 1] == "~" and rest[k + 2].isdigit()
        ]
        visited = {int(x) for x, _, _ in facts} | {0}
        assert len(facts) == len(visited) - 1
        assert (rest[-1] == "[TRUE]") == (len(visited) == case.n)
        trace, verdict = it.retrieval_trace(tokens)
        assert trace == rest[:-2]
        assert verdict == (rest[-1] == "[TRUE]")
        if rest[-1] == "[TRUE]":
            assert case.batch.lengths[row] == 40 * case.n - 25


def test_retrieval_trace_of_a_hand_written_tree_and_cycle() -> None:
    task = tasks.make("is_tree", trace="retrieval")
    tree = words("[BOS] 3 - 0 2 - 0 1 - 2 [EOS]")
    trace, verdict = it.retrieval_trace(tree)
    assert verdict
    text = " ".join(trace).replace("[STARTSEARCH]", "S").replace("[ENDSEARCH]", "E")
    text = text.replace("[FAILED]", "F")
    assert text.startswith("0 S 0 ~ E F S 0 - E 3 S 3 ~ E F 3 ~ 0 3 S 3 ~ E 0 S 3 - E 0 ")
    assert text.endswith("2 S 2 ~ E 0 S 2 - 1 E F 0 S 0 ~ E F S 0 - 2 E F")
    assert len(trace) == 37 * 4 - 26

    triangle = words("[BOS] 2 - 0 1 - 0 2 - 1 [EOS]")
    trace, verdict = it.retrieval_trace(triangle)
    assert not verdict
    text = " ".join(trace).replace("[STARTSEARCH]", "S").replace("[ENDSEARCH]", "E")
    assert text.replace("[FAILED]", "F") == (
        "0 S 0 ~ E F S 0 - E 2 S 2 ~ E F 2 ~ 0 "
        "2 S 2 ~ E 0 S 2 - E 0 S 2 - 0 E 1 S 1 ~ E F 1 ~ 2 "
        "1 S 1 ~ E 2 S 1 - E 0 S 0 ~ E F"
    )
    # the supervised continuation drops the tokens written by the retriever
    retrieved = [k for k in range(1, len(trace)) if trace[k - 1] == it.END]
    assert len(retrieved) == trace.count(it.END) == 10
    kept = [tok for k, tok in enumerate(trace) if k not in retrieved]
    assert task.solve(triangle) == [*kept, "[EOS]", "[FALSE]"]


def test_retrieve_on_a_hand_written_context() -> None:
    ctx = words("[BOS] 3 - 0 2 - 0 1 - 2 [EOS] 0 [STARTSEARCH] 0 - 3 [ENDSEARCH] 2")
    ctx += words("[STARTSEARCH] 2 ~ [ENDSEARCH] [FAILED] 2 ~ 0 2 [STARTSEARCH] 2 ~ [ENDSEARCH]")
    cases_ = {
        ("0", "~"): "[FAILED]",  # the root has no fact
        ("2", "~"): "0",  # the fact `2 ~ 0`; the query `2 ~ [ENDSEARCH]` is not a fact
        ("1", "~"): "[FAILED]",
        ("0", "-"): "3",
        ("0", "-", "3"): "2",
        ("0", "-", "2"): "[FAILED]",
        ("2", "-"): "0",
        ("2", "-", "0"): "1",
        ("1", "-", "2"): "[FAILED]",
        ("3", "-", "0"): "[FAILED]",
        ("0", "-", "1"): "[FAILED]",  # no edge {0, 1}: the trace's `0 - 3` is not an edge
        ("5", "-"): "[FAILED]",
        ("~",): "[FAILED]",
        ("0",): "[FAILED]",
        ("0", "-", "3", "2"): "[FAILED]",
        ("0", "+"): "[FAILED]",
    }
    task = tasks.make("is_tree", trace="retrieval")
    ids = task.encode(ctx)
    for query, expected in cases_.items():
        assert it.retrieve(ctx, query) == expected, query
        qids = [task.token_to_id.get(q, 10**6) for q in query]
        assert it.retrieve_ids(ids, qids) == task.token_to_id[expected], query
    # a fact written later does not change the first one
    assert it.retrieve([*ctx, "2", "~", "1"], ["2", "~"]) == "0"
    later = task.encode([*ctx, "2", "~", "1"])
    assert it.retrieve_ids(later, task.encode(["2", "~"])) == task.token_to_id["0"]
    # the input region alone: no facts at all
    assert it.retrieve(ctx[:11], ["2", "~"]) == "[FAILED]"
    assert it.retrieve(ctx[:11], ["2", "-"]) == "0"


def test_retrieval_result_needs_a_pending_search() -> None:
    task = tasks.make("is_tree", trace="retrieval")
    assert task.retrieval_trigger == "[ENDSEARCH]"
    with pytest.raises(UserError):
        task.retrieval_result(words("[BOS] 1 - 0 [EOS] 0"))


# --------------------------------------------------------------------------- layout and targets
@settings(max_examples=40)
@given(cases())
def test_targets_prompts_and_padding(case: Case) -> None:
    b, task = case.batch, case.task
    pad = task.token_to_id["[PAD]"]
    end = task.token_to_id[it.END]
    assert task.pad_token == "[PAD]" and b.inputs.shape[1] == b.lengths.max()
    assert b.inputs.shape[1] <= task.max_tokens(case.n)
    for row in case.rows():
        tokens = case.tokens(row)
        length = len(tokens)
        first_eos = tokens.index("[EOS]")
        assert b.prompt_lengths[row] == first_eos + 1 == 3 * case.n - 1
        assert (b.inputs[row, length:] == pad).all()
        assert (b.targets[row, length:] == IGNORE).all()
        assert (b.targets[row, :first_eos] == IGNORE).all()
        ids = b.inputs[row]
        for t in range(first_eos, length - 1):
            expected = IGNORE if ids[t] == end else ids[t + 1]
            assert b.targets[row, t] == expected
        if task.params["trace"] != "none":
            assert b.targets[row, length - 1] == IGNORE
            assert tokens[-2] == "[EOS]" and tokens.count("[EOS]") == 2


@pytest.mark.parametrize("trace", TRACES)
def test_max_tokens_bounds_every_row(trace: str) -> None:
    for graph in GRAPHS:
        task = tasks.make("is_tree", graph=graph, trace=trace)
        for n in (4, 5, 9, 17, 33):
            batch = task.sample(n, 256, seed=n)
            assert batch.lengths.max() <= task.max_tokens(n)
            assert batch.inputs.shape[1] == batch.lengths.max()
            # trees reach the exact tree length, the longest there is
            tree = {"none": 3 * n - 1, "cot": 5 * n, "retrieval": 40 * n - 25}[trace]
            assert batch.lengths.max() == tree


@pytest.mark.parametrize("trace", ("cot", "retrieval"))
@pytest.mark.parametrize("graph", GRAPHS)
def test_long_graphs(graph: str, trace: str) -> None:
    n = 256
    task = tasks.make("is_tree", graph=graph, trace=trace, max_length=512)
    batch = task.sample(n, 6, seed=1)
    assert len(task.vocab) == 10 + 512
    for row in range(len(batch)):
        tokens = task.decode(batch.inputs[row])
        g = graph_of(tokens)
        assert g.number_of_nodes() == n and g.number_of_edges() == n - 1
        assert task.supervised(batch, row)[-1] == ("[TRUE]" if nx.is_tree(g) else "[FALSE]")
        if trace == "cot" or row < 2:
            assert task.solve(tokens) == task.supervised(batch, row)
        if trace == "retrieval":
            ids = batch.inputs[row]
            ends = np.flatnonzero(ids == task.token_to_id[it.END])
            starts = np.flatnonzero(ids == task.token_to_id[it.START])
            assert ends.size == starts.size > 0
            for s, e in zip(starts, ends, strict=True):
                assert it.retrieve_ids(ids[: e + 1], ids[s + 1 : e]) == ids[e + 1]
    assert batch.lengths.max() <= task.max_tokens(n)


# --------------------------------------------------------------------------- parameters
def test_every_parameter_changes_the_output() -> None:
    def sample(**params: object) -> tuple[tasks.Task, tasks.Batch]:
        task = tasks.make("is_tree", **params)
        return task, task.sample(10, 16, seed=4)

    _, binary = sample(graph="binary", trace="none")
    _, rand = sample(graph="random", trace="none")
    assert binary.inputs.tobytes() != rand.inputs.tobytes()

    outputs = {}
    for trace in TRACES:
        task, batch = sample(trace=trace)
        outputs[trace] = [tuple(task.supervised(batch, r)) for r in range(16)]
        # the graphs depend only on the seed, not on the trace
        assert (batch.inputs[:, : 3 * 10 - 1] == binary.inputs).all()
    assert len({tuple(v) for v in outputs.values()}) == 3

    small, a = sample(max_length=12)
    large, b = sample(max_length=40)
    assert small.vocab != large.vocab and len(large.vocab) - len(small.vocab) == 28
    assert a.inputs.tobytes() == b.inputs.tobytes()  # node ids do not depend on max_length
    with pytest.raises(UserError, match="max_length"):
        small.sample(13, 2, seed=0)


def test_bad_parameters_and_lengths() -> None:
    with pytest.raises(UserError, match="graph"):
        tasks.make("is_tree", graph="grid")
    with pytest.raises(UserError, match="trace"):
        tasks.make("is_tree", trace="bfs")
    with pytest.raises(UserError, match="length"):
        tasks.make("is_tree").sample(3, 2, seed=0)
    with pytest.raises(UserError, match="max_length"):
        tasks.make("is_tree", max_length=3)


def test_smallest_graphs() -> None:
    for graph in GRAPHS:
        for trace in TRACES:
            task = tasks.make("is_tree", graph=graph, trace=trace)
            batch = task.sample(4, 200, seed=0)
            for row in range(200):
                tokens = task.decode(batch.inputs[row])
                assert task.solve(tokens) == task.supervised(batch, row)


# --------------------------------------------------------------------------- readable output
def test_format_trace_puts_each_search_on_its_own_line() -> None:
    task = tasks.make("is_tree", trace="retrieval")
    batch = task.sample(8, 4, seed=0)
    for row in range(4):
        tokens = task.decode(batch.inputs[row])
        text = task.format_row(batch, row)
        lines = text.splitlines()
        searches = [line for line in lines if line.startswith("  [STARTSEARCH]")]
        assert len(searches) == tokens.count("[STARTSEARCH]")
        assert all(line.count("[STARTSEARCH]") <= 1 for line in lines)
        assert lines[0].startswith("[BOS]") and lines[0].endswith("[EOS]")
        assert lines[-1] in ("[EOS] [TRUE]", "[EOS] [FALSE]")
        assert text.split() == tokens  # nothing lost, nothing added
    none = tasks.make("is_tree", trace="none")
    batch = none.sample(6, 2, seed=0)
    assert none.format_row(batch, 0).endswith(("→  [TRUE]", "→  [FALSE]"))
