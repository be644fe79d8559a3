"""Tree reductions for the RvNN families: balanced tree, beam search over adjacent-pair merges
(BT23; the ``children`` scorer is EBT23's) and RC23's chunked recursion-in-recursion.

Every function here is batched: N rows, each with its own number of real nodes (``lengths``);
slots past a row's length are padding that never takes part in a merge. One Python loop runs
over merge *steps*, never over rows, so a row's result does not depend on which other rows share
its batch or how far they are padded (tests check batched against per-row results).

Balanced tree (:func:`balanced_tree`)
-------------------------------------
Per level the nodes are paired (0, 1), (2, 3), …; a row's odd last node passes up unchanged.
A row of n nodes takes ⌈log2 n⌉ levels and n − 1 cell calls.

Beam search (:func:`beam_search`, BT23 §3; rvnn.md)
---------------------------------------------------
K beams per row, each a list of S nodes with a score s_b (the sum of the log-probabilities of its
merges). One step, while any row has more than one node:

1. pair logits e_j for (h_j, h_{j+1}); log p_j = log softmax over the beam's valid pairs;
2. candidates (b, j) with total s_b + log p_j over every beam b and valid pair j; keep the
   ``beam`` best (ranked on total + Gumbel noise when ``noise`` is given; the kept scores are the
   noise-free totals);
3. a kept candidate copies beam b with (h_j, h_{j+1}) replaced by GRC(h_j, h_{j+1}).

A row that has finished (one node left) keeps each beam through one forced pass-through
candidate (j = 0, log p = 0, the left node kept), so it can sit in the batch while longer rows
go on; a row with two nodes has one valid pair, so its log p is 0 (the forced last merge). Beams
that cannot be filled (fewer candidates than ``beam``) are dead: score −inf, weight 0 in every
softmax. The result lists each row's roots sorted by score, best first.

Two implementations with one selection rule (:func:`select`):

* :func:`beam_search` (``topk="hard"``): rvnn.md's id design. A beam is an int64 tensor of node
  ids into a per-row node *pool* (the starting nodes, then ``beam`` new parents per step), so
  reordering beams gathers ids, never vectors. The ``children`` scorer uses
  W1[l; r] = A·l + C·r: A·h and C·h are kept per pool node (computed once, when the node is
  made), and a step gathers them at the left and right ids of every pair. Only chosen pairs are
  composed. Training memory: O(K·n²·m) for the scorer's activations (m = scorer width), O(K·n·d)
  for the cell. The ``parent`` scorer composes every pair (c_j = GRC(h_j, h_{j+1}),
  e_j = w·c_j): O(K·n²·d).
* :func:`beam_search_dense` (``topk="st"``/``"onesoft"``, and a reference for ``hard``): beams hold
  node vectors [N, K, S, d]; every candidate parent c_j is built, and a kept beam k is written
  as a weighted sum over candidates (b, j) with weights W[k, b, j]:
  h'_t = Σ_b (L[k,b,t]·h_{b,t} + W[k,b,t]·c_{b,t} + R[k,b,t]·h_{b,t+1}), L = Σ_{j>t} W (the
  nodes left of the merge stay), R = Σ_{j<t} W (the nodes right of it shift left). Hard
  selection: W is one-hot, and the sum reproduces the copy exactly (products with 0 and 1).
  ``st`` (Gumbel-Tree straight-through, an ablation): W = one-hot + p − stopgrad(p) over the
  chosen beam's pairs, p = softmax of its pair logits: the same forward values (p − p is
  exactly 0), and gradient reaches the scorer through the merge masks too. ``onesoft`` (BT23,
  training only): the top ``beam`` − 1 candidates are kept hard; the last slot is the
  softmax(total)-weighted mean of all the other valid candidates — nodes, merge masks and
  scores alike.

Gradients with ``hard`` selection: the chosen ids are constants; the scorer learns only through
the log p inside the scores, which weight the final softmax mixture of the beams' roots.

Recursion in recursion (:func:`rir_search`, RC23)
-------------------------------------------------
An outer balanced k-ary recursion whose cell is the inner beam search. A level holds, per row,
K beams × S nodes with per-node scores (start: one beam of the leaves, scores 0). While S > 1:
if S ≥ k + ⌊k/2⌋ the row is cut into C = ⌈S/k⌉ chunks of k (the last one shorter, masked), else
it is one chunk of S. Every chunk of every row runs the inner search as one batch of rows,
starting from the K incoming beams (start score = the sum of the chunk's node scores in that
beam), and returns ``beam`` roots ranked by total. A row of one chunk is done: its roots and
totals are the output. Otherwise **beam alignment** picks, per chunk, slot 0 = its best root
and slots 1 … beam − 1 drawn with replacement from softmax(totals) (``align="sample"``; RC23's
τ = 1, no gradient through the draw), the b-th best (``"rank"``) or uniformly among the live
roots (``"random"``); next-level beam b is slot b of chunks 1 … C, its node scores the slot
totals. Each row is chunked by its own length, so the tree of a row does not depend on its
batch. Sequential merge steps: (k − 1) per chunked level plus S_top − 1 for the top chunk,
S_top ≤ k + ⌊k/2⌋ − 1 (see :func:`rir_depth`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from sepbench.models.cards import TREE_ALIGN as ALIGNMENTS
from sepbench.models.cards import TREE_TOPK as TOPK_MODES

NEG_INF = float("-inf")

Noise = Callable[[tuple[int, ...], Tensor], Tensor]
"""``noise(shape, like)``: standard Gumbel noise of ``shape`` on ``like``'s device and dtype."""
Uniforms = Callable[[int, Tensor, int], Tensor]
"""``uniforms(level, chunk_index[Q], count)``: uniforms in (0, 1), shape [Q, count] (RIR's
alignment draws)."""


# --------------------------------------------------------------------------- cell and scorers
class GRC(nn.Module):
    """RC23's gated recursive cell: z = W2·GELU(W1[l; r] + b1) + b2 (W1: 2d → 4d, W2: 4d → 4d),
    split into d-blocks (a, b, c, p); parent = LN(σ(a)⊙l + σ(b)⊙r + σ(c)⊙p). Dropout on the
    GELU output. Works on any leading shape ``[..., d]``."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(2 * width, 4 * width)
        self.fc2 = nn.Linear(4 * width, 4 * width)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, left: Tensor, right: Tensor) -> Tensor:
        z = self.fc2(self.dropout(F.gelu(self.fc1(torch.cat([left, right], dim=-1)))))
        a, b, c, p = z.chunk(4, dim=-1)
        out: Tensor = self.norm(
            torch.sigmoid(a) * left + torch.sigmoid(b) * right + torch.sigmoid(c) * p
        )
        return out


class ChildrenScorer(nn.Module):
    """EBT23's pair scorer on the first m = min(64, d) coordinates of the two children:
    e = w2·GELU(W1[l[:m]; r[:m]] + b1) with W1: 2m → m. W1 = [A | C], so W1[l; r] = A·l + C·r and
    :meth:`project` gives (A·h, C·h) per node once. The released code also adds a bias b2; a
    constant added to every pair logit cancels in the log-softmax over pairs, so b2 would be a
    parameter whose gradient is identically zero: it is left out."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.m = min(64, width)
        self.fc1 = nn.Linear(2 * self.m, self.m)
        self.fc2 = nn.Linear(self.m, 1, bias=False)

    def project(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """(A·h[:m], C·h[:m]) for nodes ``[..., d]`` → two ``[..., m]`` tensors (no bias)."""
        x = nodes[..., : self.m]
        w = self.fc1.weight
        return x @ w[:, : self.m].T, x @ w[:, self.m :].T

    def logits(self, left_proj: Tensor, right_proj: Tensor) -> Tensor:
        """Pair logits from the left child's A·l and the right child's C·r."""
        out: Tensor = self.fc2(F.gelu(left_proj + right_proj + self.fc1.bias)).squeeze(-1)
        return out


class ParentScorer(nn.Module):
    """BT23's scorer on the composed parent: e = w·GRC(l, r) (the bias is left out: it cancels in
    the log-softmax over pairs, see :class:`ChildrenScorer`)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 1, bias=False)

    def forward(self, parents: Tensor) -> Tensor:
        out: Tensor = self.fc(parents).squeeze(-1)
        return out


Scorer = ChildrenScorer | ParentScorer


@dataclass
class Beams:
    """A search's result: ``roots [N, K, d]``, noise-free ``scores [N, K]`` sorted best first
    (−inf: a dead beam), and ``steps``, the sequential merge steps run for the whole batch."""

    roots: Tensor
    scores: Tensor
    steps: int

    def mixture(self) -> Tensor:
        """Σ_b softmax(scores)_b · roots_b, ``[N, d]``."""
        weights = torch.softmax(self.scores, dim=1)
        return torch.einsum("nk,nkd->nd", weights, self.roots)


# --------------------------------------------------------------------------- balanced tree
def balanced_tree(cell: nn.Module, leaves: Tensor, lengths: Tensor) -> tuple[Tensor, int]:
    """Roots ``[N, d]`` of the balanced binary trees over ``leaves [N, S, d]`` (row r uses its
    first ``lengths[r]`` ≥ 1 leaves) and the number of levels run (⌈log2 S⌉)."""
    h, count, levels = leaves, lengths, 0
    while h.shape[1] > 1:
        if h.shape[1] % 2:
            h = torch.cat([h, torch.zeros_like(h[:, :1])], dim=1)
        left, right = h[:, 0::2], h[:, 1::2]
        pair = torch.arange(left.shape[1], device=h.device)
        complete = (2 * pair[None, :] + 1 < count[:, None]).unsqueeze(-1)
        h = torch.where(complete, cell(left, right), left)
        count = (count + 1) // 2
        levels += 1
    return h[:, 0], levels


# --------------------------------------------------------------------------- selection
@dataclass
class Selection:
    """One step's choice: kept candidate k copies beam ``beam[N, K']`` merged at ``pair[N, K']``;
    ``scores`` are the kept noise-free totals; ``done[N]`` rows that only pass through;
    ``logp [N, K, P]`` the log-probabilities of the pairs, ``total [N, K·P]`` the candidates' totals
    (−inf where invalid) and ``order [N, K']`` the kept candidates' flat indices."""

    beam: Tensor
    pair: Tensor
    scores: Tensor
    done: Tensor
    logp: Tensor
    total: Tensor
    order: Tensor


def select(
    logits: Tensor, scores: Tensor, remaining: Tensor, beam: int, noise: Noise | None
) -> Selection:
    """The top ``beam`` candidates (b, j) by s_b + log p_j (see the module docstring).

    ``logits [N, K, P]`` pair logits of K beams with P = S − 1 pair slots; ``scores [N, K]``;
    ``remaining [N]`` the real nodes per beam (≥ 1). Fewer than ``beam`` valid candidates leave
    dead slots (score −inf).
    """
    n, k, p = logits.shape
    done = remaining <= 1
    slot = torch.arange(p, device=logits.device)
    valid = (slot[None, :] < (remaining - 1)[:, None]) | (done[:, None] & (slot[None, :] == 0))
    logp = torch.log_softmax(logits.masked_fill(~valid[:, None, :], NEG_INF), dim=-1)
    total = (scores[:, :, None] + logp).reshape(n, k * p)
    rank = total if noise is None else total + noise((n, k * p), total)
    if k * p < beam:
        fill = total.new_full((n, beam - k * p), NEG_INF)
        total_padded, rank = torch.cat([total, fill], dim=1), torch.cat([rank, fill], dim=1)
    else:
        total_padded = total
    # a stable sort, not topk: exact ties (equal tokens give equal pair logits) go to the
    # candidate first in (beam, pair) order, the same order however far the row is padded
    order = torch.sort(rank, dim=1, descending=True, stable=True).indices[:, :beam]
    kept = total_padded.gather(1, order)
    src = order.clamp(max=k * p - 1)
    return Selection(src // p, src % p, kept, done, logp, total, src)


def _sorted(roots: Tensor, scores: Tensor, beam: int, steps: int) -> Beams:
    """Beams sorted by score (stable), padded with dead beams to ``beam``."""
    n, k = scores.shape
    if k < beam:
        roots = torch.cat([roots, roots[:, :1].expand(n, beam - k, -1)], dim=1)
        scores = torch.cat([scores, scores.new_full((n, beam - k), NEG_INF)], dim=1)
    order = torch.sort(scores.detach(), dim=1, descending=True, stable=True).indices
    roots = roots.gather(1, order[:, :, None].expand(-1, -1, roots.shape[2]))
    return Beams(roots, scores.gather(1, order), steps)


# --------------------------------------------------------------------------- id-based search
class NodePool:
    """An append-only store of node rows outside autograd, with sparse gradients.

    Rows are written once (:meth:`write`, in place, no copy of the store) and read by index
    (:meth:`read`, a column range). A read's backward adds its gradient into one gradient
    buffer at the rows read (``index_add_``: work proportional to the rows read, not to the
    store); a write's backward hands the buffer's rows on to the written values. Autograd's
    order is kept by a chain of zero-dim tokens: every read takes the token of the latest
    write and every write the previous one, so a write's backward runs after the backward of
    every read that could see its rows. Neither the store nor the buffer is saved for
    backward (reads save their indices only); the store is released by :meth:`close`.

    With autograd's own ``index_select``/``index_copy`` each step's backward would zero-fill
    and copy the whole store (O(pool) per step, the dominant cost of a long search).
    """

    def __init__(self, rows: int, width: int, like: Tensor) -> None:
        self.values: Tensor | None = like.new_zeros(rows, width)
        self.shape = (rows, width)
        self.dtype, self.device = like.dtype, like.device
        self.grad: Tensor | None = None
        self.token: Tensor | None = None

    def write(self, rows: Tensor, values: Tensor) -> None:
        """Store ``values [len(rows), width]`` at ``rows``."""
        self.token = _PoolWrite.apply(values, rows, self, self.token)

    def read(self, rows: Tensor, lo: int, hi: int) -> Tensor:
        """Columns ``lo:hi`` of the stored ``rows`` (a new tensor)."""
        out: Tensor = _PoolRead.apply(rows, lo, hi, self, self.token)
        return out

    def close(self) -> None:
        """Release the store (backward needs only the indices and the gradient buffer)."""
        self.values = None

    def grad_buffer(self) -> Tensor:
        if self.grad is None:
            self.grad = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        return self.grad


class _PoolWrite(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, values: Tensor, rows: Tensor, pool: NodePool, token: Tensor | None
    ) -> Tensor:
        assert pool.values is not None
        pool.values.index_copy_(0, rows, values.detach())
        ctx.pool, ctx.chained = pool, token is not None
        ctx.save_for_backward(rows)
        return values.new_zeros(())

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, _: Tensor) -> tuple[Tensor, None, None, Tensor | None]:
        (rows,) = ctx.saved_tensors
        pool: NodePool = ctx.pool
        grad = pool.grad_buffer().index_select(0, rows)
        chain = torch.zeros((), dtype=pool.dtype, device=pool.device) if ctx.chained else None
        return grad, None, None, chain


class _PoolRead(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, rows: Tensor, lo: int, hi: int, pool: NodePool, token: Tensor | None
    ) -> Tensor:
        assert pool.values is not None
        ctx.pool, ctx.lo, ctx.hi = pool, lo, hi
        ctx.save_for_backward(rows)
        return pool.values[:, lo:hi].index_select(0, rows)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, None, None, Tensor]:
        (rows,) = ctx.saved_tensors
        pool: NodePool = ctx.pool
        pool.grad_buffer()[:, ctx.lo : ctx.hi].index_add_(0, rows, grad)
        return None, None, None, None, torch.zeros((), dtype=pool.dtype, device=pool.device)


def beam_search(
    cell: nn.Module,
    scorer: Scorer,
    pool: Tensor,
    ids: Tensor,
    lengths: Tensor,
    scores: Tensor,
    beam: int,
    noise: Noise | None = None,
) -> Beams:
    """Hard-selection beam search over the nodes ``pool[N, P0, d]``.

    The K starting beams of row r are ``ids[r, b, :]`` (indices into ``pool[r]``; slots at and
    past ``lengths[r]`` are padding), with scores ``scores[N, K]``. Returns ``beam`` roots per
    row. Nodes live in a :class:`NodePool` of N·(P0 + beam·(S − 1)) rows: the node (d columns)
    and, for the ``children`` scorer, its A·h and C·h (m columns each).
    """
    n, p0, d = pool.shape
    width = ids.shape[2]
    steps = width - 1
    size = p0 + beam * steps
    device = pool.device
    m = scorer.m if isinstance(scorer, ChildrenScorer) else 0
    store = NodePool(n * size, d + 2 * m, pool)

    def stored(nodes: Tensor) -> Tensor:
        if isinstance(scorer, ChildrenScorer):
            return torch.cat([nodes, *scorer.project(nodes)], dim=-1)
        return nodes

    base = torch.arange(n, device=device) * size
    first = (base[:, None] + torch.arange(p0, device=device)[None, :]).reshape(-1)
    store.write(first, stored(pool.reshape(n * p0, d)))
    gid = ids + base[:, None, None]
    for step in range(steps):
        cur = width - step
        k_in = gid.shape[1]
        left, right = gid[:, :, :-1].reshape(-1), gid[:, :, 1:].reshape(-1)
        cand: Tensor | None = None
        if isinstance(scorer, ChildrenScorer):
            e = scorer.logits(store.read(left, d, d + m), store.read(right, d + m, d + 2 * m))
        else:
            cand = cell(store.read(left, 0, d), store.read(right, 0, d))
            e = scorer(cand)
        sel = select(e.view(n, k_in, cur - 1), scores, (lengths - step).clamp(min=1), beam, noise)
        chosen = gid.gather(1, sel.beam[:, :, None].expand(-1, -1, cur))  # [N, beam, cur]
        l_id = chosen.gather(2, sel.pair[:, :, None]).squeeze(2)
        if cand is None:
            r_id = chosen.gather(2, sel.pair[:, :, None] + 1).squeeze(2)
            parent = cell(store.read(l_id.reshape(-1), 0, d), store.read(r_id.reshape(-1), 0, d))
        else:
            parent = cand.view(n, k_in * (cur - 1), d).gather(
                1, sel.order[:, :, None].expand(-1, -1, d)
            )
            parent = parent.reshape(-1, d)
        new = base[:, None] + p0 + step * beam + torch.arange(beam, device=device)[None, :]
        store.write(new.reshape(-1), stored(parent))
        t = torch.arange(cur - 1, device=device)[None, None, :]
        j = sel.pair[:, :, None]
        shifted = chosen.gather(2, (t + (t > j).long()).expand(n, beam, cur - 1))
        merged = torch.where(sel.done[:, None], l_id, new)  # finished rows keep the left node
        gid = torch.where(t == j, merged[:, :, None], shifted)
        scores = sel.scores
    roots = store.read(gid[:, :, 0].reshape(-1), 0, d).view(n, -1, d)
    store.close()
    return _sorted(roots, scores, beam, steps)


# --------------------------------------------------------------------------- dense search
def beam_search_dense(
    cell: nn.Module,
    scorer: Scorer,
    nodes: Tensor,
    lengths: Tensor,
    scores: Tensor,
    beam: int,
    noise: Noise | None = None,
    topk: str = "hard",
    training: bool = False,
) -> Beams:
    """Beam search on node vectors ``nodes [N, K, S, d]`` with selection ``topk`` (hard, st,
    onesoft; see the module docstring). Builds every candidate parent. ``onesoft`` softens the
    last slot only when ``training``; otherwise it selects as ``hard`` does."""
    if topk not in TOPK_MODES:
        raise ValueError(f"topk must be one of {', '.join(TOPK_MODES)}, got {topk!r}")
    n, _, width, _ = nodes.shape
    for step in range(width - 1):
        cur = width - step
        k_in = nodes.shape[1]
        left, right = nodes[:, :, :-1], nodes[:, :, 1:]
        cand = cell(left, right)
        if isinstance(scorer, ChildrenScorer):
            pa, pc = scorer.project(nodes)
            e = scorer.logits(pa[:, :, :-1], pc[:, :, 1:])
        else:
            e = scorer(cand)
        sel = select(e, scores, (lengths - step).clamp(min=1), beam, noise)
        cand = torch.where(sel.done[:, None, None, None], left, cand)
        weights = F.one_hot(sel.order, k_in * (cur - 1)).to(nodes.dtype)  # [N, beam, K·P]
        kept = sel.scores
        if topk == "st":
            p = sel.logp.exp()  # [N, K, P]
            soft = (p - p.detach()).reshape(n, 1, k_in, cur - 1)
            on_beam = F.one_hot(sel.beam, k_in).to(nodes.dtype)[:, :, :, None]
            weights = weights + (on_beam * soft).reshape(n, beam, -1)
        elif topk == "onesoft" and beam >= 2 and training:
            weights, kept = _one_soft(weights, sel)
        w = weights.view(n, beam, k_in, cur - 1)
        keep_left = w.flip(-1).cumsum(-1).flip(-1) - w  # Σ_{j > t}
        shift = w.cumsum(-1) - w  # Σ_{j < t}
        nodes = (
            torch.einsum("nkbt,nbtd->nktd", keep_left, left)
            + torch.einsum("nkbt,nbtd->nktd", w, cand)
            + torch.einsum("nkbt,nbtd->nktd", shift, right)
        )
        scores = kept
    return _sorted(nodes[:, :, 0], scores, beam, width - 1)


def _one_soft(weights: Tensor, sel: Selection) -> tuple[Tensor, Tensor]:
    """BT23's OneSoft top-k: the last kept slot becomes the softmax(total)-weighted mean of every
    valid candidate outside the top ``beam`` − 1 (a row with none keeps its hard choice)."""
    width = weights.shape[2]
    top = F.one_hot(sel.order[:, :-1], width).sum(1).bool()  # [N, K·P]
    others = torch.isfinite(sel.total) & ~top
    has = others.any(1, keepdim=True)
    logits = torch.where(others, sel.total, NEG_INF).masked_fill(~has, 0.0)
    q = torch.softmax(logits, dim=1)
    mean_score = (q * sel.total.masked_fill(~others, 0.0)).sum(1, keepdim=True)
    last = torch.where(has, q, weights[:, -1])
    weights = torch.cat([weights[:, :-1], last[:, None]], dim=1)
    kept = torch.cat([sel.scores[:, :-1], torch.where(has, mean_score, sel.scores[:, -1:])], dim=1)
    return weights, kept


# --------------------------------------------------------------------------- recursion in recursion
def align_slots(scores: Tensor, mode: str, uniforms: Tensor | None) -> Tensor:
    """RC23's beam alignment for chunks with ``scores [Q, K]`` (sorted best first, dead = −inf):
    slot indices ``[Q, K]``; slot 0 is the best root. ``uniforms [Q, K − 1]`` in (0, 1) drive
    the draws of ``sample`` (inverse CDF of softmax(scores)) and ``random`` (uniform over the
    live roots)."""
    q, k = scores.shape
    if mode == "rank" or k == 1:
        return torch.arange(k, device=scores.device).expand(q, k)
    assert uniforms is not None
    live = torch.isfinite(scores).sum(1, keepdim=True)
    if mode == "sample":
        cdf = torch.softmax(scores.detach(), dim=1).cumsum(1)
        draw = torch.searchsorted(cdf, (uniforms * cdf[:, -1:]).contiguous())
    elif mode == "random":
        draw = (uniforms * live).long()
    else:
        raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, got {mode!r}")
    draw = torch.minimum(draw, live - 1)
    return torch.cat([torch.zeros_like(draw[:, :1]), draw], dim=1)


def rir_depth(n: int, chunk: int) -> int:
    """Sequential merge steps of RIR on one row of ``n`` leaves: k − 1 per chunked level, then
    S_top − 1 for the top chunk (S_top < k + ⌊k/2⌋). Since every chunked level had
    ⌈n / k^ℓ⌉ ≥ k + ⌊k/2⌋ > k nodes, the number of chunked levels L satisfies k^L < n, so
    depth = (k − 1)·L + S_top − 1 ≤ (k − 1)·log_k n + k + ⌊k/2⌋ − 2. RC23's "≤ k·log_k n" is
    the leading term, not a strict bound: at n = 1000, k = 30 the depth is 29 + 33 = 62 >
    30·log_30 1000 ≈ 60.9."""
    s, depth = n, 0
    while s >= chunk + chunk // 2:
        s = -(-s // chunk)
        depth += chunk - 1
    return depth + s - 1


def rir_search(
    cell: nn.Module,
    scorer: ChildrenScorer,
    leaves: Tensor,
    lengths: Tensor,
    chunk: int,
    beam: int,
    align: str,
    noise: Noise | None,
    uniforms: Uniforms | None,
) -> Beams:
    """RC23's recursion in recursion over ``leaves [N, S, d]`` (row r: its first ``lengths[r]``
    ≥ 1 leaves); returns ``beam`` roots per row with their totals (module docstring)."""
    n_rows, _, d = leaves.shape
    device = leaves.device
    top = chunk + chunk // 2
    nodes = leaves[:, None]  # [R, K, S, d]
    node_scores = leaves.new_zeros(n_rows, 1, leaves.shape[1])
    count, rows = lengths, torch.arange(n_rows, device=device)
    done_rows: list[Tensor] = []
    done_roots: list[Tensor] = []
    done_scores: list[Tensor] = []
    steps, level = 0, 0
    while rows.numel():
        split = count >= top
        chunks = torch.where(split, -(-count // chunk), torch.ones_like(count))
        row_of = torch.repeat_interleave(torch.arange(rows.numel(), device=device), chunks)
        first = chunks.cumsum(0) - chunks
        index = (
            torch.arange(row_of.numel(), device=device) - first[row_of]
        )  # chunk index in its row
        cut = split[row_of]
        start = torch.where(cut, index * chunk, 0)
        size = torch.where(cut, torch.clamp(count[row_of] - start, max=chunk), count[row_of])
        width = int(size.max())
        pos = (start[:, None] + torch.arange(width, device=device)).clamp(max=nodes.shape[2] - 1)
        k_in = nodes.shape[1]
        part = nodes[row_of[:, None], :, pos].permute(0, 2, 1, 3)  # [Q, K, W, d]
        part_scores = node_scores[row_of[:, None], :, pos].permute(0, 2, 1)  # [Q, K, W]
        real = torch.arange(width, device=device)[None, None, :] < size[:, None, None]
        start_scores = part_scores.masked_fill(~real, 0.0).sum(-1)
        ids = torch.arange(k_in * width, device=device).view(1, k_in, width)
        found = beam_search(
            cell,
            scorer,
            part.reshape(-1, k_in * width, d),
            ids.expand(row_of.numel(), -1, -1),
            size,
            start_scores,
            beam,
            noise,
        )
        steps += width - 1
        final = ~cut
        done_rows.append(rows[row_of[final]])
        done_roots.append(found.roots[final])
        done_scores.append(found.scores[final])
        if not bool(cut.any()):
            break
        roots, totals, index = found.roots[cut], found.scores[cut], index[cut]
        draws = None
        if align != "rank" and beam > 1:
            assert uniforms is not None
            draws = uniforms(level, index, beam - 1)
        slot = align_slots(totals, align, draws)
        roots = roots.gather(1, slot[:, :, None].expand(-1, -1, d))
        totals = totals.gather(1, slot)
        keep = split.cumsum(0) - 1  # new row number of each continuing row
        width_next = int(chunks[split].max())
        at = keep[row_of[cut]] * width_next + index
        r_next = int(split.sum())
        grid = roots.new_zeros(r_next * width_next, beam, d).index_copy(0, at, roots)
        grid_scores = totals.new_zeros(r_next * width_next, beam).index_copy(0, at, totals)
        nodes = grid.view(r_next, width_next, beam, d).permute(0, 2, 1, 3)
        node_scores = grid_scores.view(r_next, width_next, beam).permute(0, 2, 1)
        count, rows = chunks[split], rows[split]
        level += 1
    order = torch.argsort(torch.cat(done_rows))
    return Beams(torch.cat(done_roots)[order], torch.cat(done_scores)[order], steps)
