"""is_tree — W24 (Wen, Dang & Lyu 2024): decide whether a graph with n nodes and n − 1 edges is a
tree, with no trace, a DFS chain of thought, or a DFS with in-context retrieval.

N = number of nodes n (n >= 4). Every graph has exactly n − 1 distinct edges, so counting edges
never reveals the answer; with n − 1 edges, "tree" = "connected" = "acyclic", and a non-tree is
always disconnected *and* has a cycle.

Graphs
------
``binary``: a random permutation π of the nodes; hubs π0 and π1; every other node π_k joins a
uniformly chosen hub; then one extra edge joins π_i and π_{i+1}, i uniform in 2..n−2. The graph
is a tree iff π_i and π_{i+1} hang from different hubs; otherwise it is a triangle
(hub, π_i, π_{i+1}) in one star plus the other star, detached. To balance the labels exactly,
the hub of π_{i+1} is set from the drawn label (different hub for trees, the same one for
non-trees): given the label, every graph has its conditional probability under W24's process.

``random``: a uniform random recursive tree (node π_k joins π_j, j uniform in 0..k−1). For a
non-tree, one uniformly chosen edge is removed (two components) and one edge is added between
two non-adjacent nodes of the same component, uniform over all such pairs — it closes a cycle.
The removed edge is redrawn when no such pair exists (only n = 4 split 2 + 2). (W24's released
code draws its random non-trees differently; this is the rule of the project's tasks spec.)

Input: ``[BOS] u - v u - v … [EOS]``, each edge written larger node first, edges in uniformly
random order. ``adj(v)``, the adjacency list of v, lists v's neighbours *in input-edge order*.

``trace=none``: the answer ``[TRUE]``/``[FALSE]`` is the target at the ``[EOS]`` position.

``trace=cot`` (W24's released generator, ``cycle_shut_down``): a DFS from node 0. Enter node 0
and emit it. At node u, scan adj(u) in order from where u's scan stopped: skip the neighbour
that is u's DFS parent; an unvisited neighbour y is entered (emit y, recurse) and, when y's DFS
returns, u is emitted again; a *visited* neighbour other than the parent means a cycle and the
whole trace stops at once (nothing more is emitted). Then ``[EOS]`` and the answer. A tree gives
its full tour of 2n − 1 nodes; a non-tree either stops at a cycle or tours only the component
of 0 (2k − 1 nodes, k < n). The answer is ``[TRUE]`` iff the trace visits all n nodes.

``trace=retrieval`` (W24 Algorithm 2, token for token as the released generator writes it)
----------------------------------------------------------------------------------------
The same DFS, run by a controller whose only memory between lookups is a few node names (the
node on top of the DFS stack ``top``, the node it came from ``prev``, the parent ``f``, the
candidate ``r``) and a count of visited nodes: the stack itself lives in the context as the
facts ``x ~ parent(x)``. Every lookup is written ``[STARTSEARCH] query [ENDSEARCH] result``;
the result is supplied by the retriever (:func:`retrieve`), and its target is IGNORE. Queries:

* ``v ~``   → X of the first fact ``v ~ X`` written after the first ``[EOS]`` (X a node), else
  ``[FAILED]`` — so ``[FAILED]`` for an unvisited node and for the root 0 (it has no parent);
* ``v -``   → the other end of the first input edge containing v, else ``[FAILED]``
  (= the first entry of adj(v));
* ``v - u`` → the other end of the next input edge containing v after the edge {v, u}, else
  ``[FAILED]`` (= the entry after u in adj(v)); only input edges (before the first ``[EOS]``)
  are searched — the trace's own ``v - u`` queries are not edges. Any other query: ``[FAILED]``.

Start with top = 0, prev = ``[FAILED]``. Each *step* writes, in this order:

1. ``top`` — the step head (the steps' heads are exactly the CoT trace);
2. ``[STARTSEARCH] top ~ [ENDSEARCH] f`` — f, the DFS parent of top (``[FAILED]`` for 0);
3. if prev == f (top was just entered — or this is the very first step):
   ``[STARTSEARCH] top - [ENDSEARCH] r``; else (prev is the child whose DFS just returned):
   ``[STARTSEARCH] top - prev [ENDSEARCH] r``;
4. if r == f (≠ ``[FAILED]``), the parent edge is skipped: ``[STARTSEARCH] top - f [ENDSEARCH] r``;
5. if r == ``[FAILED]``, top is finished: go back up, prev ← top, top ← f, next step — unless
   f is ``[FAILED]``: the root is finished and the DFS ends. Otherwise
   ``[STARTSEARCH] r ~ [ENDSEARCH] g``:

   * g == ``[FAILED]`` and r ≠ 0: r is new; write the fact ``r ~ top`` (three supervised
     tokens), prev ← top, top ← r, next step;
   * otherwise r was visited (g is r's parent, or ``[FAILED]`` when r is the root 0): the edge
     top–r closes a cycle; the DFS stops right after g (no fact, no further step).

Then ``[EOS]`` and the answer: ``[TRUE]`` iff the DFS ended by finishing the root (no cycle)
and visited all n nodes (1 + the number of facts; n is the number of input edges + 1) — which
is how a non-tree whose detached part lies away from 0 is detected. Two examples (n = 4),
printed by :func:`format_trace` (each step head on its own line, then one line per lookup or
fact); the tree ``[BOS] 3 - 0 2 - 0 1 - 2 [EOS]`` (CoT: ``0 3 0 2 1 2 0``)::

    0
      [STARTSEARCH] 0 ~ [ENDSEARCH] [FAILED]
      [STARTSEARCH] 0 - [ENDSEARCH] 3
      [STARTSEARCH] 3 ~ [ENDSEARCH] [FAILED]
      3 ~ 0
    3
      [STARTSEARCH] 3 ~ [ENDSEARCH] 0
      [STARTSEARCH] 3 - [ENDSEARCH] 0
      [STARTSEARCH] 3 - 0 [ENDSEARCH] [FAILED]
    0
      [STARTSEARCH] 0 ~ [ENDSEARCH] [FAILED]
      [STARTSEARCH] 0 - 3 [ENDSEARCH] 2
      [STARTSEARCH] 2 ~ [ENDSEARCH] [FAILED]
      2 ~ 0
    2
      [STARTSEARCH] 2 ~ [ENDSEARCH] 0
      [STARTSEARCH] 2 - [ENDSEARCH] 0
      [STARTSEARCH] 2 - 0 [ENDSEARCH] 1
      [STARTSEARCH] 1 ~ [ENDSEARCH] [FAILED]
      1 ~ 2
    1
      [STARTSEARCH] 1 ~ [ENDSEARCH] 2
      [STARTSEARCH] 1 - [ENDSEARCH] 2
      [STARTSEARCH] 1 - 2 [ENDSEARCH] [FAILED]
    2
      [STARTSEARCH] 2 ~ [ENDSEARCH] 0
      [STARTSEARCH] 2 - 1 [ENDSEARCH] [FAILED]
    0
      [STARTSEARCH] 0 ~ [ENDSEARCH] [FAILED]
      [STARTSEARCH] 0 - 2 [ENDSEARCH] [FAILED]
    [EOS] [TRUE]

and the triangle-plus-isolated-node ``[BOS] 2 - 0 1 - 0 2 - 1 [EOS]`` (CoT: ``0 2 1``), where
node 1 finds its neighbour 0 already visited (0 has no fact: ``[FAILED]``, but 0 is the root)::

    0
      [STARTSEARCH] 0 ~ [ENDSEARCH] [FAILED]
      [STARTSEARCH] 0 - [ENDSEARCH] 2
      [STARTSEARCH] 2 ~ [ENDSEARCH] [FAILED]
      2 ~ 0
    2
      [STARTSEARCH] 2 ~ [ENDSEARCH] 0
      [STARTSEARCH] 2 - [ENDSEARCH] 0
      [STARTSEARCH] 2 - 0 [ENDSEARCH] 1
      [STARTSEARCH] 1 ~ [ENDSEARCH] [FAILED]
      1 ~ 2
    1
      [STARTSEARCH] 1 ~ [ENDSEARCH] 2
      [STARTSEARCH] 1 - [ENDSEARCH] 0
      [STARTSEARCH] 0 ~ [ENDSEARCH] [FAILED]
    [EOS] [FALSE]


Targets (``cot``, ``retrieval``): every token after the first ``[EOS]`` is the target of the
position before it, except that the token after each ``[ENDSEARCH]`` is unsupervised.
:meth:`IsTree.solve` returns the supervised tokens; :func:`continuation` the whole continuation.
``prompt_lengths`` = index of the first ``[EOS]`` + 1 = 3n − 1; rows are right-padded with
``[PAD]`` to the longest row of the batch. Token lengths: none 3n − 1; cot <= 5n;
retrieval <= 41n − 20 (a tree: exactly 40n − 25).

Generation is vectorised: adjacency lists as one CSR array per row (O(n) per row), and every
row's DFS advanced one step per numpy iteration (2n − 1 iterations); the retrieval tokens of a
step are laid out in a fixed 26-slot block and compacted at the end. :meth:`IsTree.solve` is
independent: networkx decides the answer, an explicit-stack DFS writes the CoT, and the
retrieval trace is produced step by step by the controller above calling :func:`retrieve`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sepbench.errors import UserError
from sepbench.tasks.base import (
    IGNORE,
    Batch,
    Param,
    Task,
    balanced_labels,
    check_int_length,
    check_max_length,
    int_param,
    single_answer_batch,
)

PAD, BOS, EOS, DASH, TILDE = "[PAD]", "[BOS]", "[EOS]", "-", "~"
TRUE, FALSE = "[TRUE]", "[FALSE]"
START, END, FAILED = "[STARTSEARCH]", "[ENDSEARCH]", "[FAILED]"
SPECIALS = (PAD, BOS, EOS, DASH, TILDE, TRUE, FALSE, START, END, FAILED)
"""The non-node tokens, in id order; node v has id ``NODE0 + v`` (for every ``max_length``)."""

PAD_ID, BOS_ID, EOS_ID, DASH_ID, TILDE_ID = 0, 1, 2, 3, 4  # PAD_ID 0: outputs are calloc'd
TRUE_ID, FALSE_ID, START_ID, END_ID, FAILED_ID = 5, 6, 7, 8, 9
NODE0 = len(SPECIALS)

MIN_NODES = 4
BLOCK = 26
"""Token slots of one retrieval step (see ``_retrieval_tokens``)."""


# --------------------------------------------------------------------------- the retriever
def _is_node(token: str) -> bool:
    return token.isdigit()


def retrieve(context_tokens: Sequence[str], query_tokens: Sequence[str]) -> str:
    """The retriever of the retrieval trace: answer one query by searching the context.

    ``context_tokens``: everything written so far (``[BOS]``, the input edges, ``[EOS]``, the
    trace up to the query; a trailing ``[ENDSEARCH]`` may be included or not). ``query_tokens``:
    the tokens between ``[STARTSEARCH]`` and ``[ENDSEARCH]``. Returns the result token:

    * ``v ~``   → X of the first fact ``v ~ X`` (X a node) after the first ``[EOS]``;
    * ``v -``   → the other end of the first input edge containing v;
    * ``v - u`` → the other end of the next input edge containing v after the edge {v, u};

    and ``[FAILED]`` when nothing matches (also for a malformed query). Input edges are the
    triples ``a - b`` between ``[BOS]`` and the first ``[EOS]``.
    """
    ctx = context_tokens if isinstance(context_tokens, list) else list(context_tokens)
    query = list(query_tokens)
    if not query or not _is_node(query[0]):
        return FAILED
    v = query[0]
    try:
        eos = ctx.index(EOS)
    except ValueError:
        eos = len(ctx)
    if query[1:] == [TILDE]:
        # first fact `v ~ X` of the trace: scan the occurrences of v with list.index (C speed)
        i = eos
        while True:
            try:
                i = ctx.index(v, i + 1)
            except ValueError:
                return FAILED
            if i + 2 < len(ctx) and ctx[i + 1] == TILDE and _is_node(ctx[i + 2]):
                return ctx[i + 2]
    begin = 1 if ctx and ctx[0] == BOS else 0
    if len(query) == 2 and query[1] == DASH:
        after: str | None = None
    elif len(query) == 3 and query[1] == DASH and _is_node(query[2]):
        after = query[2]
    else:
        return FAILED
    found = after is None
    for k in range(begin, eos - 2, 3):
        a, dash, b = ctx[k], ctx[k + 1], ctx[k + 2]
        if dash != DASH or v not in (a, b):
            continue
        other = b if a == v else a
        if found:
            return other
        found = other == after
    return FAILED


def retrieve_ids(
    context_ids: Sequence[int] | np.ndarray, query_ids: Sequence[int] | np.ndarray
) -> int:
    """:func:`retrieve` on token ids of this task's vocabulary (node v = ``NODE0 + v``).

    Same rules, numpy search: for models that generate ids. The context must start with
    ``[BOS]`` followed by the input edges; returns the result's id.
    """
    ctx = np.asarray(context_ids, dtype=np.int64)
    query = [int(q) for q in query_ids]
    if not query or query[0] < NODE0:
        return FAILED_ID
    v = query[0]
    eos_at = np.flatnonzero(ctx == EOS_ID)
    eos = int(eos_at[0]) if eos_at.size else len(ctx)
    if query[1:] == [TILDE_ID]:
        trace = ctx[eos + 1 :]
        hits = np.flatnonzero((trace[:-2] == v) & (trace[1:-1] == TILDE_ID) & (trace[2:] >= NODE0))
        return int(trace[hits[0] + 2]) if hits.size else FAILED_ID
    start = 1 if len(ctx) and ctx[0] == BOS_ID else 0
    count = (eos - start) // 3
    edges = ctx[start : start + 3 * count].reshape(count, 3)
    edges = edges[edges[:, 1] == DASH_ID]
    a, b = edges[:, 0], edges[:, 2]
    touches = np.flatnonzero((a == v) | (b == v))
    if len(query) == 2 and query[1] == DASH_ID:
        first = 0
    elif len(query) == 3 and query[1] == DASH_ID and query[2] >= NODE0:
        u = query[2]
        pair = np.flatnonzero(
            ((a[touches] == v) & (b[touches] == u)) | ((b[touches] == v) & (a[touches] == u))
        )
        if not pair.size:
            return FAILED_ID
        first = int(pair[0]) + 1
    else:
        return FAILED_ID
    if first >= touches.size:
        return FAILED_ID
    e = touches[first]
    return int(b[e] if a[e] == v else a[e])


# --------------------------------------------------------------------------- reference solver
def _parse(tokens: Sequence[str]) -> tuple[int, list[tuple[int, int]], int]:
    """(n, edges in input order, index of the first [EOS]) of a decoded row."""
    if not tokens or tokens[0] != BOS or EOS not in tokens:
        raise UserError("is_tree: a row starts with [BOS] and its graph ends with [EOS]")
    eos = list(tokens).index(EOS)
    body = tokens[1:eos]
    if len(body) % 3 or any(body[k + 1] != DASH for k in range(0, len(body), 3)):
        raise UserError("is_tree: the graph must be written as triples 'u - v'")
    edges = [(int(body[k]), int(body[k + 2])) for k in range(0, len(body), 3)]
    return len(edges) + 1, edges, eos


def is_tree_answer(tokens: Sequence[str]) -> str:
    """``[TRUE]``/``[FALSE]`` by networkx.is_tree on the input graph (nodes 0..n−1)."""
    import networkx as nx  # only the reference solver needs it

    n, edges, _ = _parse(tokens)
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    return TRUE if nx.is_tree(graph) else FALSE


def cot_trace(tokens: Sequence[str]) -> list[str]:
    """The DFS tour of the ``cot`` trace (without [EOS]/answer), by an explicit-stack DFS."""
    n, edges, _ = _parse(tokens)
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    tour = [0]
    visited = {0}
    stack = [(0, -1, iter(adj[0]))]
    while stack:
        node, parent, neighbours = stack[-1]
        for y in neighbours:
            if y == parent:
                continue
            if y in visited:  # an edge closing a cycle: the trace stops here
                return [str(v) for v in tour]
            visited.add(y)
            tour.append(y)
            stack.append((y, node, iter(adj[y])))
            break
        else:
            stack.pop()
            if stack:
                tour.append(stack[-1][0])
    return [str(v) for v in tour]


def retrieval_trace(tokens: Sequence[str]) -> tuple[list[str], bool]:
    """The retrieval trace (without [EOS]/answer) written by the Algorithm-2 controller.

    The controller keeps only (top, prev, f, r, count) and asks :func:`retrieve` for every
    lookup. Returns the trace and the controller's own verdict (finished the root without a
    cycle, having visited all n nodes).
    """
    n, _, eos = _parse(tokens)
    ctx = list(tokens[: eos + 1])
    first = len(ctx)

    def search(*query: str) -> str:
        ctx.extend((START, *query, END))
        result = retrieve(ctx, query)
        ctx.append(result)
        return result

    top, prev, count = "0", FAILED, 1
    while True:
        ctx.append(top)
        f = search(top, TILDE)
        r = search(top, DASH) if prev == f else search(top, DASH, prev)
        if r == f != FAILED:
            r = search(top, DASH, f)
        if r == FAILED:
            if f == FAILED:
                return ctx[first:], count == n
            prev, top = top, f
            continue
        g = search(r, TILDE)
        if g == FAILED and r != "0":
            ctx.extend((r, TILDE, top))
            count += 1
            prev, top = top, r
            continue
        return ctx[first:], False


def continuation(tokens: Sequence[str], trace: str) -> list[str]:
    """Everything after the first [EOS] (trace, [EOS], answer), retrieval results included."""
    answer = is_tree_answer(tokens)
    if trace == "none":
        return [answer]
    steps = cot_trace(tokens) if trace == "cot" else retrieval_trace(tokens)[0]
    return [*steps, EOS, answer]


def format_trace(tokens: Sequence[str]) -> str:
    """A row as readable text: the graph on one line, then one line per DFS step and one
    indented line per search (``[STARTSEARCH] query [ENDSEARCH] result``) or fact."""
    toks = list(tokens)
    eos = toks.index(EOS) if EOS in toks else len(toks) - 1
    edges = [" ".join(toks[k : k + 3]) for k in range(1, eos - 1, 3)]
    lines = [" ".join([toks[0], "  ".join(edges), *toks[eos : eos + 1]])]
    rest = toks[eos + 1 :]
    if START not in rest:  # cot / none: the tour on one line
        if rest:
            lines.append(" ".join(rest))
        return "\n".join(lines)
    k = 0
    while k < len(rest):
        tok = rest[k]
        if tok == START:
            end = rest.index(END, k) if END in rest[k:] else len(rest) - 1
            lines.append("  " + " ".join(rest[k : end + 2]))
            k = end + 2
        elif _is_node(tok) and k + 1 < len(rest) and rest[k + 1] == TILDE:
            lines.append("  " + " ".join(rest[k : k + 3]))
            k += 3
        else:
            lines.append(tok if tok != EOS else " ".join(rest[k:]))
            k = k + 1 if tok != EOS else len(rest)
    return "\n".join(lines)


# --------------------------------------------------------------------------- generation
def _permutations(rng: np.random.Generator, batch: int, n: int) -> np.ndarray:
    return np.argsort(rng.random((batch, n)), axis=1)


def _binary_graphs(n: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Edges ``[B, n-1, 2]`` (node names) of W24's two-hub graphs."""
    batch = labels.size
    rows = np.arange(batch)
    perm = _permutations(rng, batch, n)
    side = rng.integers(0, 2, size=(batch, n))
    i = rng.integers(2, n - 1, size=batch)
    side[rows, i + 1] = np.where(labels, 1 - side[rows, i], side[rows, i])
    hub = np.take_along_axis(perm[:, :2], side[:, 2:], axis=1)
    a = np.concatenate([perm[:, 2:], perm[rows, i][:, None]], axis=1)
    b = np.concatenate([hub, perm[rows, i + 1][:, None]], axis=1)
    return np.stack([a, b], axis=2)


def _random_graphs(n: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Edges ``[B, n-1, 2]``: random recursive trees; non-trees get one edge moved."""
    batch = labels.size
    perm = _permutations(rng, batch, n)
    # par[:, k] = uniform in 0..k-1 (positions, relabelled through perm); par[:, 0] unused
    par = (rng.random((batch, n)) * np.arange(n)).astype(np.int64)
    a = perm[:, 1:].copy()
    b = np.take_along_axis(perm, par[:, 1:], axis=1)
    bad = np.flatnonzero(~labels)
    m = bad.size
    if m:
        p = par[bad]
        cut = rng.integers(1, n, size=m)  # remove the edge position cut -- par[cut]
        below = np.zeros((m, n), dtype=bool)  # the subtree under the removed edge
        todo = np.arange(m)
        while todo.size:
            sub = np.zeros((todo.size, n), dtype=bool)
            pt, ct = p[todo], cut[todo]
            local = np.arange(todo.size)
            for k in range(1, n):
                sub[:, k] = (ct == k) | sub[local, pt[:, k]]
            size = sub.sum(axis=1)
            pairs = (size - 1) * (size - 2) + (n - size - 1) * (n - size - 2)
            below[todo] = sub
            redo = pairs == 0  # no non-adjacent pair inside a component (n = 4, 2 + 2)
            cut[todo[redo]] = rng.integers(1, n, size=int(redo.sum()))
            todo = todo[redo]
        x = np.zeros(m, dtype=np.int64)
        y = np.zeros(m, dtype=np.int64)
        todo = np.arange(m)
        while todo.size:
            xx = rng.integers(0, n, size=todo.size)
            yy = rng.integers(0, n - 1, size=todo.size)
            yy += yy >= xx
            pt = p[todo]
            loc = np.arange(todo.size)
            same = below[todo, xx] == below[todo, yy]
            adjacent = ((pt[loc, xx] == yy) & (xx > 0)) | ((pt[loc, yy] == xx) & (yy > 0))
            ok = same & ~adjacent
            x[todo[ok]], y[todo[ok]] = xx[ok], yy[ok]
            todo = todo[~ok]
        a[bad, cut - 1] = perm[bad, x]
        b[bad, cut - 1] = perm[bad, y]
    return np.stack([a, b], axis=2)


def _dfs(n: int, hi: np.ndarray, lo: np.ndarray, full: bool) -> dict[str, np.ndarray]:
    """Run every row's DFS from node 0, one step per iteration.

    ``hi``/``lo``: ``[B, n-1]`` edge ends in input order. Returns per-step records ``[B, S]``
    (S = 2n − 1): ``top``, the node of each step (-1 once a row has stopped); with ``full``
    also ``nxt`` (the neighbour found, -1: none) and ``skip`` (the parent edge was skipped
    first); and ``parent`` ``[B, n]``: each node's DFS parent (-2 the root 0, -1 unvisited).
    """
    batch = hi.shape[0]
    e2 = 2 * (n - 1)
    src = np.stack([hi, lo], axis=2).reshape(batch, e2)
    dst = np.stack([lo, hi], axis=2).reshape(batch, e2)
    order = np.argsort(src, axis=1, kind="stable")  # adjacency lists in input-edge order
    dstf = np.append(np.take_along_axis(dst, order, axis=1).ravel(), -1)
    rowbase = np.arange(batch, dtype=np.int64)
    deg = np.bincount((rowbase[:, None] * n + src).ravel(), minlength=batch * n)
    # ptr[row * n + v]: where v's adjacency list is read next (absolute index into dstf)
    end = np.cumsum(deg.reshape(batch, n), axis=1).ravel() + np.repeat(rowbase * e2, n)
    ptr = end - deg

    steps = 2 * n - 1
    rec = {"top": np.full((batch, steps), -1, dtype=np.int64)}
    if full:
        rec["nxt"] = np.full((batch, steps), -1, dtype=np.int64)
        rec["skip"] = np.zeros((batch, steps), dtype=bool)
    parent = np.full(batch * n, -1, dtype=np.int64)
    parent[rowbase * n] = -2
    rows = rowbase.copy()
    base = rows * n
    top = np.zeros(batch, dtype=np.int64)
    for s in range(steps):
        if rows.size == 0:
            break
        at = base + top
        f = parent[at]
        p = ptr[at]
        e = end[at]
        skip = (f >= 0) & (p < e) & (dstf[p] == f)
        p += skip
        found = p < e
        nxt = np.where(found, dstf[p], -1)
        ptr[at] = p + 1
        seen = found & (parent[base + np.maximum(nxt, 0)] != -1)
        push = found & ~seen
        rec["top"][rows, s] = top
        if full:
            rec["nxt"][rows, s] = nxt
            rec["skip"][rows, s] = skip
        parent[(base + nxt)[push]] = top[push]
        keep = ~seen & (found | (f >= 0))  # stop at a cycle, or when the root is finished
        top = np.where(push, nxt, f)[keep]
        rows = rows[keep]
        base = base[keep]
    rec["parent"] = parent.reshape(batch, n)
    return rec


def _node_or_failed(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x + NODE0, FAILED_ID)


def _retrieval_tokens(rec: dict[str, np.ndarray], dtype: type[np.unsignedinteger]) -> np.ndarray:
    """The retrieval trace of every row, ``[B, S * 26]``; the dtype's largest value marks the
    slots not written.

    Each step has 26 slots: 0 top | 1-5 ``[S] top ~ [E] f`` | 6-11 ``[S] top - prev [E] r``
    (slot 9, prev, only when prev != f) | 12-17 ``[S] top - f [E] nxt`` (the parent skip) |
    18-22 ``[S] nxt ~ [E] g`` (when nxt exists) | 23-25 the fact ``nxt ~ top`` (push only).
    Built slot-major (contiguous writes), then transposed once to row-major.
    """
    top, nxt, skip, parent = rec["top"], rec["nxt"], rec["skip"], rec["parent"]
    batch, steps = top.shape
    live = top >= 0
    found = nxt >= 0
    # a found neighbour is pushed unless the row stops right there (then it closed a cycle)
    stops = np.ones_like(live)
    stops[:, :-1] = ~live[:, 1:]
    push = found & ~stops
    prev = np.empty_like(top)
    prev[:, 0] = -1
    prev[:, 1:] = top[:, :-1]  # the controller's prev is the previous step's top
    # parents never change once set, so the final parent array answers every `x ~` lookup
    f = np.maximum(np.take_along_axis(parent, np.maximum(top, 0), axis=1), -1)
    back = np.take_along_axis(parent, np.maximum(nxt, 0), axis=1)
    tnode, fnode, nnode = top + NODE0, _node_or_failed(f), _node_or_failed(nxt)
    r1 = np.where(skip, fnode, nnode)
    g = np.where(push, FAILED_ID, _node_or_failed(back))
    with_prev = live & (prev != f)
    groups: list[tuple[np.ndarray, list[np.ndarray | int]]] = [
        (live, [tnode, START_ID, tnode, TILDE_ID, END_ID, fnode, START_ID, tnode, DASH_ID]),
        (with_prev, [_node_or_failed(prev)]),
        (live, [END_ID, r1]),
        (skip, [START_ID, tnode, DASH_ID, fnode, END_ID, nnode]),
        (found, [START_ID, nnode, TILDE_ID, END_ID, g]),
        (push, [nnode, TILDE_ID, tnode]),
    ]
    # slot = hole | token with hole = all ones where the slot is not written, else 0: one
    # cheap bitwise pass per slot (token ids are below the dtype's largest value)
    slots = np.empty((BLOCK, batch, steps), dtype=dtype)
    slot = 0
    for mask, cols in groups:
        hole = np.where(mask, 0, np.iinfo(dtype).max).astype(dtype)
        for col in cols:
            value = col if isinstance(col, int) else col.astype(dtype)
            np.bitwise_or(hole, value, out=slots[slot])
            slot += 1
    assert slot == BLOCK
    return np.ascontiguousarray(slots.transpose(1, 2, 0)).reshape(batch, steps * BLOCK)


def _assemble(
    prompt: np.ndarray, trace: np.ndarray, keep: np.ndarray, answers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``prompt + trace[keep] (in order) + [EOS] answer``, right-padded with PAD."""
    batch, width = prompt.shape
    lengths = width + np.count_nonzero(keep, axis=1) + 2
    out = np.zeros((batch, int(lengths.max())), dtype=np.int64)  # PAD_ID == 0: calloc'd
    out[:, :width] = prompt
    body = out[:, width:]
    body[np.arange(body.shape[1])[None, :] < (lengths - width - 2)[:, None]] = trace[keep]
    rows = np.arange(batch)
    out[rows, lengths - 2] = EOS_ID
    out[rows, lengths - 1] = answers
    return out, lengths


def _token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """The smallest unsigned dtype whose largest value is not a token id (it marks holes)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size < np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"vocabulary too large: {vocab_size}")


class IsTree(Task):
    name = "is_tree"
    summary = (
        "decide whether a graph with n nodes and n - 1 edges is a tree (optionally via a DFS trace)"
    )
    source = "W24-T (RNN lower bound), W24-C (TF + CoT), W24-RAG (RNN + retrieval), W24-H"
    length_meaning = "nodes n (n - 1 edges; token length 3n - 1 before any trace)"
    params_spec = (
        Param(
            "graph",
            str,
            "binary",
            "graph family: W24's two-hub graphs or random recursive trees",
            choices=("binary", "random"),
            examples=("binary", "random"),
        ),
        Param(
            "trace",
            str,
            "cot",
            "none (answer at [EOS]), cot (DFS tour), retrieval (DFS with lookups)",
            choices=("none", "cot", "retrieval"),
            examples=("none", "cot", "retrieval"),
        ),
        int_param("max_length", 128, "largest n: node names 0 … max_length-1", MIN_NODES, (12, 40)),
    )
    pad_token = PAD
    binary_answers = (TRUE, FALSE)
    test_lengths = (MIN_NODES, 16)
    retrieval_trigger = END

    def _build_vocab(self) -> Sequence[str]:
        return [*SPECIALS, *(str(v) for v in range(self.params["max_length"]))]

    def check_length(self, length: int) -> None:
        check_int_length(self.name, length, MIN_NODES, "nodes")
        check_max_length(self.name, length, self.params["max_length"])

    def max_tokens(self, length: int) -> int:
        trace = self.params["trace"]
        if trace == "none":
            return 3 * length - 1
        if trace == "cot":
            return 5 * length
        return 41 * length - 20

    def _generate(self, length: int, batch_size: int, rng: np.random.Generator) -> Batch:
        n = length
        labels = balanced_labels(batch_size, rng)
        if self.params["graph"] == "binary":
            edges = _binary_graphs(n, labels, rng)
        else:
            edges = _random_graphs(n, labels, rng)
        edges.sort(axis=2)
        order = np.argsort(rng.random((batch_size, n - 1)), axis=1)
        hi = np.take_along_axis(edges[:, :, 1], order, axis=1)
        lo = np.take_along_axis(edges[:, :, 0], order, axis=1)

        prompt = np.empty((batch_size, 3 * n - 1), dtype=np.int64)
        prompt[:, 0] = BOS_ID
        prompt[:, 1:-1:3] = hi + NODE0
        prompt[:, 2:-1:3] = DASH_ID
        prompt[:, 3:-1:3] = lo + NODE0
        prompt[:, -1] = EOS_ID
        answers = np.where(labels, TRUE_ID, FALSE_ID)
        trace = self.params["trace"]
        if trace == "none":
            return single_answer_batch(prompt, answers)

        rec = _dfs(n, hi, lo, full=trace == "retrieval")
        if not np.array_equal((rec["parent"] != -1).sum(axis=1) == n, labels):
            raise AssertionError("is_tree: DFS visit count disagrees with the drawn label")
        if trace == "cot":
            body = rec["top"] + NODE0
            keep = body >= NODE0
        else:
            dtype = _token_dtype(len(self.vocab))
            body = _retrieval_tokens(rec, dtype)
            keep = body != np.iinfo(dtype).max
        inputs, lengths = _assemble(prompt, body, keep, answers)
        # the target of position t is token t + 1, from the first [EOS] on; not supervised:
        # the answer's position and the padding (next token PAD), the retriever's results
        targets = np.full_like(inputs, IGNORE)
        following = inputs[:, 3 * n - 1 :]
        supervised = (following != PAD_ID) & (inputs[:, 3 * n - 2 : -1] != END_ID)
        np.copyto(targets[:, 3 * n - 2 : -1], following, where=supervised)
        prompts = np.full(batch_size, 3 * n - 1, dtype=np.int64)
        return Batch(inputs, targets, lengths, prompts)

    @property
    def answer_is_generated(self) -> bool:
        """With a trace the model writes the whole continuation (trace, [EOS], answer)."""
        return bool(self.params["trace"] != "none")

    def solve(self, tokens: Sequence[str]) -> list[str]:
        """The supervised continuation: :func:`continuation` without the retrieval results
        (with them on the view :meth:`~sepbench.tasks.Task.without_retriever` returns)."""
        full = continuation(tokens, self.params["trace"])
        if self.results_supervised:
            return full
        before = [EOS, *full[:-1]]  # the token written before each continuation token
        return [tok for tok, prev in zip(full, before, strict=True) if prev != END]

    def retrieval_result(self, tokens: Sequence[str]) -> str:
        """The retriever's token for a context ending with ``[ENDSEARCH]``."""
        toks = list(tokens)
        if not toks or toks[-1] != END or START not in toks:
            raise UserError("is_tree: retrieval_result needs a context ending with [ENDSEARCH]")
        begin = len(toks) - 1 - toks[::-1].index(START)
        return retrieve(toks, toks[begin + 1 : -1])

    def format_row(self, batch: Batch, row: int) -> str:
        tokens = self.decode(batch.inputs[row])
        text = format_trace(tokens)
        if self.params["trace"] == "none":
            answer = self.vocab[int(batch.targets[row, len(tokens) - 1])]
            text += f"  →  {answer}"
        return text
