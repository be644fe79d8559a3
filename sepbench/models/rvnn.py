"""Tree-recursive encoders (RvNNs): families ``grc``, ``bbt``, ``beam_tree`` and ``rir``.

Sources: BT23 (Beam Tree Recursive Cells), EBT23 (Efficient Beam Tree Recursion), RC23
(Recursion in Recursion), all Ray Chowdhury & Caragea; the spec is ../shared/spec/rvnn.md. The
reductions themselves (balanced tree, beam search, RIR) live in
:mod:`sepbench.models.beam_search`.

Common parts (width d): leaves h_i = LN(W·dropout(Embed(x_i))); the GRC cell
(:class:`~sepbench.models.beam_search.GRC`, hidden 4d); head MLP d → d → V with GELU (ListOps'
labels are digit tokens of the vocabulary). ``dropout`` (RC23: 0.1) on the embedding, inside the
cell and in the head.

* ``grc``: the cell as a causal RNN, h_t = GRC(h_{t−1}, leaf_t), h_0 = 0, logits_t = head(h_t).
* ``bbt``: balanced binary tree over the row: ⌈log2 n⌉ levels, n − 1 cell calls.
* ``beam_tree``: beam search over adjacent-pair merges (options ``beam``, ``scorer``, ``topk``,
  ``gumbel``); root = Σ_b softmax(score)_b · root_b.
* ``rir``: RC23's outer balanced k-ary recursion with the inner ``children`` beam search and beam
  alignment (``chunk``, ``beam``, ``align``, ``gumbel``, ``pre_ssm``).

Options are declared in the family cards (:mod:`sepbench.models.cards`: ``GRC_OPTIONS``,
``BBT_OPTIONS``, ``BEAM_TREE_OPTIONS``, ``RIR_OPTIONS``, with ``check_beam_tree``), and so are
the state rules and theory classes (``grc`` is an ``rnn``: its state is width numbers; the tree
encoders have no class in the catalogue).

Contract fit (``bbt``, ``beam_tree``, ``rir`` are encoders, class attribute ``encoder = True``:
they read the whole row). Option ``readout``:

* ``last`` (default): column T−1 gets head(root(x[0..T−1])), every other column 0. With option
  ``pad_id`` rows may be right-padded with that token: a row's trailing pads are not leaves and
  its logits go to its last real column (an all-pad row gets zeros).
* ``every``: logits_t = head(root(x[0..t])), all T prefixes run as one padded batch: causal, at T
  times the cost. Pad columns (with ``pad_id``) get zeros.

``step`` always matches ``every``. ``state_size(length)``: ``grc`` d; ``bbt`` d·popcount(length)
(the step keeps a left-to-right binary counter of complete subtrees — slot k of the state tuple
holds the subtree of 2^k leaves, or a [B, 0] tensor when bit k is clear — merged right to left
for the readout, which builds exactly the balanced tree); ``beam_tree`` and ``rir`` d·length
(the step keeps every token's embedding and reruns the search: beam_tree's first merge compares
pairs across the whole row and rir's chunking depends on the final n, so no leaf can be dropped
early).

Tree families answer a task only through ``readout=last`` at the last token, so
:meth:`TreeEncoder.check_task` (``SeqModel.check_task``) refuses a task that is not a
single-answer classification (exactly one supervised target per row, at its last real token).

Randomness: Gumbel noise (``gumbel``, training only) and ``rir``'s alignment draws in training
come from a ``torch.Generator`` the model owns, seeded from its build seed (the noise stream of a
seeded model is reproducible; a model built without a seed draws its noise seed from the global
RNG at construction). In evaluation ``rir``'s ``sample``/``random`` alignment still draws (RC23),
from uniforms that are a fixed hash of (noise seed, level, chunk index, slot): the same for every
call, and independent of the batch a row sits in.

Ensembles: ``ensemble_forward`` runs the members one after another (``torch.func.functional_call``
with member e's weights): the searches' data-dependent ``topk``/gathers and generator draws have
no ``vmap`` rule. Members share the template's noise generator (in member order), so in training
with noise an ensemble member's noise differs from a lone model's; without noise (evaluation, or
``gumbel=false`` with ``align=rank``) member e computes exactly what ``build(seed=seeds[e])``
computes.

Parameters (``torch.nn.Linear`` convention y = x Wᵀ + b): ``embed.weight`` [V, d]; ``leaf``
[d, d], ``leaf_norm``; ``cell.fc1`` [4d, 2d], ``cell.fc2`` [4d, 4d], ``cell.norm``; ``head.fc1``
[d, d], ``head.fc2`` [V, d]; ``scorer.fc1`` [m, 2m] + ``scorer.fc2`` [1, m] (children,
m = min(64, d)) or ``scorer.fc`` [1, d] (parent); ``rir`` with ``pre_ssm``: ``pre.forward_layer``,
``pre.backward_layer`` (``ssm`` layers, state 16) and ``pre.mix`` [2d, 2d].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepbench.errors import UserError
from sepbench.models.base import SeqModel, State
from sepbench.models.beam_search import (
    GRC,
    ChildrenScorer,
    ParentScorer,
    balanced_tree,
    beam_search,
    beam_search_dense,
    rir_search,
)
from sepbench.models.cards import CARDS
from sepbench.models.ssm import SSMLayer

if TYPE_CHECKING:
    from sepbench.tasks.base import Task


# --------------------------------------------------------------------------- parts
class Head(nn.Module):
    """The classifier MLP: fc2(dropout(GELU(fc1(h)))), d → d → V."""

    def __init__(self, width: int, vocab_size: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        out: Tensor = self.fc2(self.dropout(F.gelu(self.fc1(h))))
        return out


class BidirectionalSSM(nn.Module):
    """x + GLU(mix([f; b])) with f = forward_layer(x) and b the reversal of
    backward_layer(reversed x), each row reversed within its own length (so padding never
    reaches a real position). Both layers are sepbench ``ssm`` layers (they add their own
    residual); RC23 uses one bidirectional S4D layer here."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.forward_layer = SSMLayer(width, 16, layer_norm=True, gate=True)
        self.backward_layer = SSMLayer(width, 16, layer_norm=True, gate=True)
        self.mix = nn.Linear(2 * width, 2 * width)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        t = torch.arange(x.shape[1], device=x.device)[None, :]
        rev = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
        rev = rev[:, :, None].expand(-1, -1, x.shape[2])
        f = self.forward_layer(x)
        b = self.backward_layer(x.gather(1, rev)).gather(1, rev)
        return x + F.glu(self.mix(torch.cat([f, b], dim=-1)), dim=-1)


_MASK32 = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash on int64 tensors holding values < 2^32 (xorshift-multiply rounds;
    the multipliers are < 2^31, so no product overflows int64)."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x68E31DA5) & _MASK32
    return x ^ (x >> 16)


def hash_uniforms(seed: int, level: int, index: Tensor, count: int, dtype: torch.dtype) -> Tensor:
    """Uniforms in (0, 1), ``[Q, count]``: entry (q, s) is a fixed hash of
    (seed, level, index[q], s) — the same on every call and for every batch."""
    head = _mix32(torch.tensor((seed ^ (level * 0x9E3779B9)) & _MASK32, device=index.device))
    x = _mix32((head + index.long()) & _MASK32)[:, None]
    x = _mix32((x + torch.arange(1, count + 1, device=index.device)[None, :]) & _MASK32)
    return ((x >> 8).to(dtype) + 0.5) / float(1 << 24)


# --------------------------------------------------------------------------- families
class TreeModel(SeqModel):
    """Shared parts of the RvNN families: leaves, GRC cell, head, noise, ensemble loop."""

    encoder: ClassVar[bool] = True

    def __init__(self, vocab_size: int, width: int, options: Mapping[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        dropout = float(self.options["dropout"])
        self.embed = nn.Embedding(vocab_size, width)
        self.leaf = nn.Linear(width, width)
        self.leaf_norm = nn.LayerNorm(width)
        self.cell = GRC(width, dropout)
        self.head = Head(width, vocab_size, dropout)
        self.drop = nn.Dropout(dropout)
        self.depth = 0
        """Sequential merge steps of the last forward pass (levels of cell calls that must
        run one after another), for the whole batch."""
        self._noise_fallback = int(torch.randint(0, 1 << 62, (1,)).item())
        self._generators: dict[torch.device, torch.Generator] = {}

    # ----------------------------------------------------------------- noise
    def noise_seed(self) -> int:
        """The seed of the model's noise: derived from the build seed (or, for a model built
        without one, drawn from the global RNG at construction)."""
        base = self.seed if self.seed is not None else self._noise_fallback
        return (int(base) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 63)

    def generator(self, device: torch.device) -> torch.Generator:
        """The model's noise generator on ``device`` (created on first use)."""
        g = self._generators.get(device)
        if g is None:
            g = torch.Generator(device=device)
            g.manual_seed(self.noise_seed())
            self._generators[device] = g
        return g

    def gumbel(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Standard Gumbel noise −log E, E = −log U ~ Exp(1), from the model's generator."""
        u = torch.rand(shape, generator=self.generator(like.device), device=like.device)
        u = u.to(like.dtype).clamp_min(torch.finfo(like.dtype).tiny)
        return -torch.log(-torch.log(u))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generators"] = {}  # generators are not copyable; a copy reseeds lazily
        return state

    # ----------------------------------------------------------------- parts
    def features(self, emb: Tensor, lengths: Tensor) -> Tensor:
        """What the leaf map reads: the dropped-out embeddings (``rir`` may add its SSM)."""
        out: Tensor = self.drop(emb)
        return out

    def leaves(self, emb: Tensor, lengths: Tensor) -> Tensor:
        """h_i = LN(W·features_i)."""
        out: Tensor = self.leaf_norm(self.leaf(self.features(emb, lengths)))
        return out

    def ensemble_forward(self, params: Mapping[str, Tensor], inputs: Tensor) -> Tensor:
        """Members one after another with their own weights (see the module docstring)."""
        from torch.func import functional_call

        outs = [
            functional_call(self, {k: v[e] for k, v in params.items()}, (inputs[e],))
            for e in range(inputs.shape[0])
        ]
        return torch.stack(outs)


class GRCModel(TreeModel):
    """The GRC cell as a causal RNN: h_t = GRC(h_{t−1}, leaf_t), h_0 = 0 (RC23's recurrent-GRC
    baseline, one-way)."""

    family = "grc"
    summary = CARDS["grc"].summary
    options_spec = CARDS["grc"].options
    encoder: ClassVar[bool] = False

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        b, t = inputs.shape
        lengths = torch.full((b,), t, device=inputs.device)
        leaves = self.leaves(self.embed(inputs), lengths)
        h = leaves.new_zeros(b, self.width)
        states = []
        for i in range(t):
            h = self.cell(h, leaves[:, i])
            states.append(h)
        self.depth = t
        out: Tensor = self.head(torch.stack(states, dim=1))
        return out

    def state_size(self, length: int) -> int:
        return self.width

    def init_state(self, batch_size: int) -> State:
        return (self.embed.weight.new_zeros(batch_size, self.width),)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        ones = torch.ones_like(tokens)
        leaf = self.leaves(self.embed(tokens)[:, None], ones)[:, 0]
        h = self.cell(state[0], leaf)
        out: Tensor = self.head(h)
        return out, (h,)


def _probe_batch(task: Task, length: int | None) -> Any:
    """A small batch of ``task`` at ``length`` or at its largest valid test length (the most
    positions, so a task supervised at several of them shows it)."""
    if length is None:
        lo, hi = task.test_lengths
        for candidate in range(hi, lo - 1, -1):
            try:
                task.check_length(candidate)
            except UserError:
                continue
            length = candidate
            break
        else:
            raise UserError(f"task '{task.name}': no valid length in {lo} … {hi} to probe")
    return task.sample(length, 16, seed=0)


class TreeEncoder(TreeModel):
    """An encoder family: ``encode(embeddings, lengths) -> roots`` plus the readouts."""

    def __init__(self, vocab_size: int, width: int, options: Mapping[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        pad = self.options.get("pad_id")
        if pad is not None and pad >= vocab_size:
            raise UserError(
                f"model '{self.family}': option 'pad_id' must be a token id below vocab_size "
                f"{vocab_size}, got {pad}"
            )

    def encode(self, emb: Tensor, lengths: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Roots ``[N, d]`` of rows ``emb [N, S, d]`` (the first ``lengths[r]`` ≥ 1 are real)."""
        raise NotImplementedError

    def row_lengths(self, inputs: Tensor) -> Tensor:
        """Real tokens per row: T, or with ``pad_id`` the position after the last non-pad."""
        b, t = inputs.shape
        pad = self.options.get("pad_id")
        if pad is None:
            return torch.full((b,), t, dtype=torch.long, device=inputs.device)
        pos = torch.arange(1, t + 1, device=inputs.device)[None, :] * (inputs != pad)
        out: Tensor = pos.max(dim=1).values if t else pos.new_zeros(b)
        return out

    def forward(self, inputs: Tensor) -> Tensor:
        self._check_inputs(inputs)
        b, t = inputs.shape
        emb = self.embed(inputs)
        lengths = self.row_lengths(inputs)
        out = emb.new_zeros(b, t, self.vocab_size)
        if self.options["readout"] == "last":
            rows = torch.nonzero(lengths > 0).squeeze(1)
            cols = lengths[rows] - 1
            src, src_len = emb[rows], lengths[rows]
        else:
            rows, cols = torch.nonzero(
                torch.arange(t, device=inputs.device)[None, :] < lengths[:, None], as_tuple=True
            )
            src, src_len = emb[rows], cols + 1
        if rows.numel() == 0:
            return out
        width = int(src_len.max())
        logits = self.head(self.encode(src[:, :width], src_len))
        return out.index_put((rows, cols), logits)

    def state_size(self, length: int) -> int:
        return self.width * int(length)

    def init_state(self, batch_size: int) -> State:
        return (self.embed.weight.new_zeros(batch_size, 0, self.width),)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Append the token's embedding and rerun the search on the whole prefix."""
        emb = torch.cat([state[0], self.embed(tokens)[:, None]], dim=1)
        lengths = torch.full((emb.shape[0],), emb.shape[1], device=emb.device)
        out: Tensor = self.head(self.encode(emb, lengths))
        return out, (emb,)

    @classmethod
    def check_task(
        cls, task: Task, options: Mapping[str, Any] | None = None, length: int | None = None
    ) -> None:
        """Refuse a task this encoder cannot answer with ``readout=last``: every row must have
        exactly one supervised target, at its last real token (a single-answer classification
        such as ``listops``), and right-padded rows need ``pad_id`` = the task's pad id.
        Checked on 16 rows at ``length`` (default: the task's largest valid test length).
        ``readout=every`` gives logits at every position, so any task is accepted."""
        from sepbench.tasks.base import IGNORE

        opts = dict(options or {})
        if opts.get("readout", "last") == "every":
            return
        batch = _probe_batch(task, length)
        supervised = batch.targets != IGNORE
        per_row = supervised.sum(axis=1)
        rows = range(len(batch))
        at_end = all(bool(supervised[r, batch.lengths[r] - 1]) for r in rows)
        if not (per_row == 1).all() or not at_end:
            raise UserError(
                f"model '{cls.family}' (readout=last) answers once per row at its last token; "
                f"task '{task.name}' supervises {int(per_row.min())}-{int(per_row.max())} "
                "positions per row: use a single-answer classification task such as listops, "
                "or readout=every"
            )
        if (batch.lengths < batch.inputs.shape[1]).any() and opts.get("pad_id") != task.pad_id:
            raise UserError(
                f"model '{cls.family}': task '{task.name}' right-pads its rows; build the model "
                f"with pad_id={task.pad_id}"
            )


class BBTModel(TreeEncoder):
    """Balanced binary tree RvNN (RC23's BBT-GRC)."""

    family = "bbt"
    summary = CARDS["bbt"].summary
    options_spec = CARDS["bbt"].options

    def encode(self, emb: Tensor, lengths: Tensor) -> Tensor:
        roots, self.depth = balanced_tree(self.cell, self.leaves(emb, lengths), lengths)
        return roots

    def state_size(self, length: int) -> int:
        return self.width * int(length).bit_count()

    def init_state(self, batch_size: int) -> State:
        return ()

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Binary counter: slot k holds the complete subtree of 2^k leaves ([B, 0] if none)."""
        ones = torch.ones_like(tokens)
        carry = self.leaves(self.embed(tokens)[:, None], ones)[:, 0]
        empty = carry.new_zeros(carry.shape[0], 0)
        slots = list(state)
        k = 0
        while k < len(slots) and slots[k].shape[1] > 0:
            carry = self.cell(slots[k], carry)
            slots[k] = empty
            k += 1
        if k == len(slots):
            slots.append(carry)
        else:
            slots[k] = carry
        root: Tensor | None = None
        for subtree in slots:  # smallest (rightmost) first
            if subtree.shape[1]:
                root = subtree if root is None else self.cell(subtree, root)
        assert root is not None
        out: Tensor = self.head(root)
        return out, tuple(slots)


class BeamTreeModel(TreeEncoder):
    """Beam-Tree RvNN (BT23; with the children scorer, EBT23's efficient variant)."""

    family = "beam_tree"
    summary = CARDS["beam_tree"].summary
    options_spec = CARDS["beam_tree"].options

    def __init__(self, vocab_size: int, width: int, options: Mapping[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        self.scorer: ChildrenScorer | ParentScorer = (
            ChildrenScorer(width) if self.options["scorer"] == "children" else ParentScorer(width)
        )

    def encode(self, emb: Tensor, lengths: Tensor) -> Tensor:
        o = self.options
        leaves = self.leaves(emb, lengths)
        n, s, _ = leaves.shape
        noise = self.gumbel if self.training and o["gumbel"] else None
        start = leaves.new_zeros(n, 1)
        if o["topk"] == "hard":
            ids = torch.arange(s, device=leaves.device).expand(n, 1, s)
            found = beam_search(
                self.cell, self.scorer, leaves, ids, lengths, start, o["beam"], noise
            )
        else:
            found = beam_search_dense(
                self.cell,
                self.scorer,
                leaves[:, None],
                lengths,
                start,
                o["beam"],
                noise,
                o["topk"],
                self.training,
            )
        self.depth = found.steps
        return found.mixture()


class RIRModel(TreeEncoder):
    """Recursion in Recursion (RC23): outer balanced k-ary tree, inner beam search."""

    family = "rir"
    summary = CARDS["rir"].summary
    options_spec = CARDS["rir"].options

    def __init__(self, vocab_size: int, width: int, options: Mapping[str, Any]) -> None:
        super().__init__(vocab_size, width, options)
        self.scorer = ChildrenScorer(width)
        self.pre = BidirectionalSSM(width) if self.options["pre_ssm"] else None

    def features(self, emb: Tensor, lengths: Tensor) -> Tensor:
        x: Tensor = self.drop(emb)
        return x if self.pre is None else self.pre(x, lengths)

    def uniforms(self, level: int, index: Tensor, count: int) -> Tensor:
        """Alignment draws: the generator in training, a fixed hash in evaluation."""
        dtype = self.embed.weight.dtype
        if self.training:
            g = self.generator(index.device)
            u = torch.rand((index.numel(), count), generator=g, device=index.device)
            return u.to(dtype)
        return hash_uniforms(self.noise_seed(), level, index, count, dtype)

    def encode(self, emb: Tensor, lengths: Tensor) -> Tensor:
        o = self.options
        found = rir_search(
            self.cell,
            self.scorer,
            self.leaves(emb, lengths),
            lengths,
            o["chunk"],
            o["beam"],
            o["align"],
            self.gumbel if self.training and o["gumbel"] else None,
            self.uniforms,
        )
        self.depth = found.steps
        return found.mixture()
