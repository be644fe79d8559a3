"""Family cards: what the testbed knows about each model family without building a model.

One :class:`FamilyCard` per family (``elman``, ``lstm``, ``gru``, ``rag``, ``ssm``,
``transformer``, ``hybrid``) is the one owner of

* its **option declarations** (the ``SeqModel`` classes read them as ``options_spec``;
  ``models.describe`` lists them and ``models.build`` validates through
  :meth:`FamilyCard.validate`, cross-option rules included: RoPE needs an even head_dim);
* its **theory model class** — which results of :mod:`sepbench.theory` concern it:
  ``transformer`` with ``layers = 1`` → ``transformer-1``, ``layers ≥ 2`` → ``transformer-2``
  (the two-layer constructions are upper bounds for deeper models too; the one-layer lower
  bounds are not claimed for them); ``elman``, ``lstm``, ``gru``, ``ssm`` and ``grc`` (the GRC
  cell as an RNN: a state of width numbers) → ``rnn``; the tree encoders ``bbt``,
  ``beam_tree``, ``rir`` and the recurrent-depth families have none;
  ``rag`` → ``rnn+retrieval`` on a task whose trace calls the retriever
  (:data:`RETRIEVAL_TRACES`: ``is_tree`` with ``trace = "retrieval"``), else the RNN it wraps;
  ``hybrid`` → ``hybrid``. On a task whose output is a chain of thought
  (:data:`CHAIN_OF_THOUGHT`: ``is_tree`` with ``trace = "cot"``) a Transformer is
  ``transformer+cot`` and an RNN ``rnn+cot`` (W24-C, W24-T);
* its **state numbers**: the recurrent state per unit of width (RNN theorems bound m, the
  numbers in the state: s = layers for Elman/GRU, 2·layers for an LSTM (h and c),
  layers·state_dim for an SSM; a hybrid's recurrent base likewise; 0 for a Transformer) and
  the attention cache per token (2·heads·head_dim per attention layer), hence
  :meth:`FamilyCard.state_size` — the same number as the built model's
  ``state_size(length)``, which a test checks over every family and many options. Which
  theory classes are judged on the state rather than the width is the catalogue's
  (:data:`sepbench.theory.STATE_CLASSES`);
* its **precision options** (docs/precision.md): ``state_bits`` p on every family with a
  recurrent state (elman, lstm, gru, rag, ssm, and the recurrent part of hybrid) and
  ``precision_bits`` p on those with attention (transformer, hybrid), integers 1 … 32, unset
  by default (unbounded float32; an unset option is absent from the validated options);
  hence :meth:`FamilyCard.state_bits` — the bits carried after ``length`` tokens, B24's m·p:
  recurrent numbers × state_bits plus cache numbers × precision_bits, an unset one counting
  32 — the built model's ``state_bits(length)``; and :meth:`FamilyCard.number_bits`, the p
  the lower bounds on state bits divide by (the largest option of its carried numbers, None
  for floats), which a report judges each pair at;
* the **theorem parameters** its options fix (attention heads H; the H20 construction's cell).

A trial records the facts of the model it trained as :class:`ModelFacts` (the probe has the
model in hand); the report reads those and falls back to the cards only for stores written
before trials recorded them.

Plain Python: importing this module never imports torch (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from sepbench.errors import UserError
from sepbench.models.options import validate
from sepbench.params import Param, int_param

CELLS = ("elman", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu", "sigmoid")
POSITIONS = ("learned", "sinusoidal", "none", "rope")
BASES = (*CELLS, "ssm")
RECURRENT_INITS = ("default", "orthogonal")

MAX_BITS = 32
"""Largest ``state_bits`` / ``precision_bits`` (a float32 holds at most 2^32 values)."""
FLOAT_BITS = 32
"""Bits a number carries when its precision is unbounded: a float32 (:meth:`FamilyCard.
state_bits`)."""

CHAIN_OF_THOUGHT: dict[str, tuple[str, Any]] = {"is_tree": ("trace", "cot")}
"""Tasks whose supervised output is a chain of thought, as task → (parameter, value): a model
trained on them is judged by the ``+cot`` classes."""
RETRIEVAL_TRACES: dict[str, tuple[str, Any]] = {"is_tree": ("trace", "retrieval")}
"""Tasks whose trace calls the retriever, as task → (parameter, value). Only there does a
model with a retriever (``rag``) use it; on any other task its retriever never fires and it is
the recurrent model it wraps (``rnn``, or ``rnn+cot`` on a chain of thought): W24-RAG is not
claimed for it there."""

_ANY_WIDTH = 1
"""Width at which options are resolved for facts that do not depend on the width (the
recurrent state per unit of width, the theory class, the theorem parameters)."""


# --------------------------------------------------------------------------------------------
# option declarations
# --------------------------------------------------------------------------------------------
def _bits_option(name: str, doc: str) -> Param:
    """A precision option: p bits per number, unset (None) = unbounded float32."""
    return Param(
        name,
        int,
        None,
        doc,
        check=lambda v: 1 <= v <= MAX_BITS,
        rule=f"an integer from 1 to {MAX_BITS} (bits per number)",
        default_doc="unset (unbounded: float32)",
    )


STATE_BITS = _bits_option(
    "state_bits",
    "bits p per carried number: every number carried from one step to the next (h; an LSTM's "
    "c; an SSM's state) is quantised to 2^p levels after each step, straight-through "
    "gradients (docs/precision.md)",
)
PRECISION_BITS = _bits_option(
    "precision_bits",
    "bits p of the residual stream, queries, keys and values: B24's fixed-point grid, 2^p "
    "levels on [-R, R], R = 2^floor((p-1)/2) (docs/precision.md)",
)


def recurrent_options(cell: str | None, layer_doc: str = "recurrent layers") -> tuple[Param, ...]:
    """Options of a recurrent stack; ``cell=None`` adds the ``cell`` choice (rag)."""
    is_elman = (lambda o: True) if cell == "elman" else (lambda o: o.get("cell") == "elman")
    is_lstm = (lambda o: True) if cell == "lstm" else (lambda o: o.get("cell") == "lstm")
    forget: tuple[Param, ...] = ()
    if cell in (None, "lstm"):
        forget = (
            Param(
                "forget_bias",
                float,
                0.0,
                "added to the forget gate's bias at initialisation (Delétang et al. 2023's "
                "Haiku LSTM adds 1, after Jozefowicz et al. 2015)",
                applies=is_lstm,
                applies_doc="with cell=lstm",
            ),
        )
    head: tuple[Param, ...] = ()
    if cell is None:
        head = (Param("cell", str, "lstm", "the recurrent cell", choices=CELLS),)
    nonlin: tuple[Param, ...] = ()
    if cell in (None, "elman"):
        nonlin = (
            Param(
                "nonlinearity",
                str,
                "tanh",
                "Elman activation (sigmoid: H20's construction)",
                choices=NONLINEARITIES,
                applies=is_elman,
                applies_doc="with cell=elman",
            ),
        )
    return (
        *head,
        int_param("layers", 1, layer_doc),
        *nonlin,
        Param(
            "embedding",
            str,
            "learned",
            "input encoding: a learned table [vocab, embed_dim], or one-hot (d_in = vocab)",
            choices=("learned", "onehot"),
        ),
        int_param(
            "embed_dim",
            lambda width, o: width,
            "size of the learned token embedding",
            default_doc="width",
            applies=lambda o: o["embedding"] == "learned",
            applies_doc="with embedding=learned",
        ),
        *forget,
        Param(
            "recurrent_init",
            str,
            "default",
            "recurrent weights at initialisation: torch's default (uniform), or each gate's "
            "block of weight_hh a random orthogonal matrix",
            choices=RECURRENT_INITS,
        ),
        STATE_BITS,
    )


def ssm_options() -> tuple[Param, ...]:
    """The options of an SSM layer, shared by ``ssm`` and a hybrid's SSM base."""
    return (
        int_param("state_dim", 16, "state entries per channel (n): the state is width × n"),
        Param("gate", bool, True, "multiply the SSM output by silu(z) (Mamba's gate branch)"),
    )


def attention_options(pos_default: str) -> tuple[Param, ...]:
    """The options of an attention layer, shared by ``transformer`` and ``hybrid``."""
    return (
        int_param("heads", 1, "attention heads per layer"),
        int_param(
            "head_dim",
            lambda width, o: max(1, width // o["heads"]),
            "query/key/value dimension per head",
            default_doc="width // heads",
        ),
        Param(
            "pos",
            str,
            pos_default,
            "position information: learned table, fixed sinusoids, none, or rotary (RoPE)",
            choices=POSITIONS,
        ),
        int_param(
            "max_len",
            512,
            "longest input (size of the learned position table)",
            applies=lambda o: o["pos"] == "learned",
            applies_doc="with pos=learned",
        ),
        Param(
            "attn_scale",
            float,
            "sqrt",
            "factor on q·k before the softmax: 'sqrt' = 1/sqrt(head_dim), or a number "
            "(1.0 = no scaling, the theory's convention)",
            words=("sqrt",),
            check=lambda v: v > 0,
            rule="a number > 0",
        ),
        Param("layer_norm", bool, True, "pre-norm LayerNorms (constructions turn them off)"),
        int_param(
            "mlp_width",
            lambda width, o: 4 * width,
            "hidden units of each ReLU MLP (0: attention-only layers)",
            minimum=0,
            default_doc="4 * width",
        ),
        Param("bias", bool, True, "biases in every linear map (attention, MLP, readout)"),
        PRECISION_BITS,
    )


def check_attention(family: str, o: Mapping[str, Any]) -> None:
    """RoPE rotates pairs of query/key coordinates: it needs an even head_dim."""
    if o["pos"] == "rope" and o["head_dim"] % 2:
        raise UserError(
            f"model '{family}': option 'pos'=rope needs an even head_dim, got {o['head_dim']}"
        )


def _rnn_base(o: Mapping[str, Any]) -> bool:
    return bool(o["base"] != "ssm")


def _ssm_base(o: Mapping[str, Any]) -> bool:
    return bool(o["base"] == "ssm")


def hybrid_options() -> tuple[Param, ...]:
    """A recurrent base (an RNN cell or SSM layers), then one attention layer's options."""
    ssm_only = tuple(
        replace(opt, applies=_ssm_base, applies_doc="with base=ssm") for opt in ssm_options()
    )
    return (
        Param("base", str, "lstm", "the recurrent part below the attention layer", choices=BASES),
        int_param("layers", 1, "recurrent (or SSM) layers below the attention layer"),
        Param(
            "nonlinearity",
            str,
            "tanh",
            "Elman activation",
            choices=NONLINEARITIES,
            applies=lambda o: o["base"] == "elman",
            applies_doc="with base=elman",
        ),
        *ssm_only,
        Param(
            "embedding",
            str,
            "learned",
            "input encoding of an RNN base: learned table [vocab, embed_dim] or one-hot",
            choices=("learned", "onehot"),
            applies=_rnn_base,
            applies_doc="with an RNN base",
        ),
        int_param(
            "embed_dim",
            lambda width, o: width,
            "size of the learned token embedding of an RNN base",
            default_doc="width",
            applies=lambda o: _rnn_base(o) and o["embedding"] == "learned",
            applies_doc="with an RNN base and embedding=learned",
        ),
        replace(
            STATE_BITS,
            doc="bits p per number of the recurrent part's state (as for its family); the "
            "attention layer reads only its quantised outputs (docs/precision.md)",
        ),
        *attention_options("none"),
    )


LOOPED_POSITIONS = ("none", "abacus", *(p for p in POSITIONS if p != "none"))
"""Position information of a looped block: ``abacus`` (MC24) besides the Transformer's."""


def abacus_on(o: Mapping[str, Any]) -> bool:
    """Whether a looped model's options ask for Abacus position ids."""
    return bool(o["pos"] == "abacus")


def looped_options() -> tuple[Param, ...]:
    """A shared causal Transformer block applied R times (lengthgen.md, family ``looped``)."""
    return (
        int_param("block_layers", 1, "pre-norm Transformer layers in the shared block"),
        int_param("iterations", 8, "R: block applications in training and by default at test"),
        Param(
            "injection",
            str,
            "add",
            "how the input e re-enters every iteration: add (h + e, MC24), concat (Linear on "
            "[h; e], BA22's recall) or none (only once, as h_0 + e)",
            choices=("add", "concat", "none"),
        ),
        Param(
            "state_init",
            str,
            "zero",
            "h_0: zero, embed (h_0 = e, BA22) or noise (N(0, 0.02²) in training, MC24; 0 at "
            "evaluation)",
            choices=("zero", "embed", "noise"),
        ),
        *(
            replace(
                opt,
                choices=LOOPED_POSITIONS,
                doc="position information: none, abacus (digit index in its run, MC24), "
                "learned table, fixed sinusoids, or rotary (RoPE)",
            )
            if opt.name == "pos"
            else opt
            for opt in attention_options("none")
            # bounded precision is studied on the catalogue's model classes; a looped block
            # computes in float32 (no precision_bits)
            if opt.name != "precision_bits"
        ),
        int_param(
            "abacus_max",
            256,
            "largest Abacus id the table holds (longest digit run at test plus abacus_offset)",
            applies=abacus_on,
            applies_doc="with pos=abacus",
        ),
        int_param(
            "abacus_offset",
            0,
            "largest random offset k ~ U{0 … abacus_offset} added to the ids in training "
            "(MC24: 99)",
            minimum=0,
            applies=abacus_on,
            applies_doc="with pos=abacus",
        ),
        int_param(
            "digit_min",
            1,
            "smallest token id that is a digit (default: the addition task's '0')",
            minimum=0,
            applies=abacus_on,
            applies_doc="with pos=abacus",
        ),
        int_param(
            "digit_max",
            10,
            "largest token id that is a digit (default: the addition task's '9')",
            minimum=0,
            applies=abacus_on,
            applies_doc="with pos=abacus",
        ),
    )


def check_looped(family: str, o: Mapping[str, Any]) -> None:
    """The attention rules, and an Abacus table that holds the digit ids and the offset."""
    check_attention(family, o)
    if abacus_on(o):
        if o["digit_max"] < o["digit_min"]:
            raise UserError(
                f"model '{family}': option 'digit_max'={o['digit_max']} must be >= "
                f"digit_min={o['digit_min']}"
            )
        if o["abacus_offset"] >= o["abacus_max"]:
            raise UserError(
                f"model '{family}': option 'abacus_offset'={o['abacus_offset']} must be "
                f"< abacus_max={o['abacus_max']} (the table must hold id 1 + the offset)"
            )


def dtnet_options() -> tuple[Param, ...]:
    """BA22's recall DT-net (family ``dtnet``)."""
    return (
        int_param("iterations", 30, "R: block applications in training and by default (BA22: 30)"),
        Param("recall", bool, True, "concatenate the input embedding before the block (BA22)"),
        int_param("embed_dim", 16, "channels of the token embedding e (BA22: one input channel)"),
    )


DTNET_KERNEL = 3
"""Width of every DT-net convolution (BA22)."""


def dtnet_windows(width: int, o: Mapping[str, Any], iterations: int) -> list[int]:
    """Input channels of each DT-net convolution, in the order one token passes through them:
    the projection, per iteration the recall conv (on [h; e]) and two residual blocks (four
    convs), then the head's three. Incremental decoding keeps the last ``DTNET_KERNEL − 1``
    input columns of each, so this fixes the carried state."""
    d = int(o["embed_dim"])
    per_iteration = ([width + d] if o["recall"] else []) + [width] * 4
    return [d, *(per_iteration * iterations), width, width, max(1, width // 2)]


TREE_SCORERS = ("children", "parent")
"""Beam-Tree pair scorers: EBT23's MLP on the children, BT23's linear map of the parent."""
TREE_TOPK = ("hard", "onesoft", "st")
"""How a beam search's top-k passes gradient (rvnn.md; ``sepbench.models.beam_search``)."""
TREE_ALIGN = ("sample", "rank", "random")
"""RC23's beam alignment across chunks (and its ablations)."""

TREE_DROPOUT = Param(
    "dropout",
    float,
    0.1,
    "dropout on the embedding, inside the GRC cell and in the head (RC23: 0.1)",
    minimum=0,
    exclusive_max=1,
)
TREE_READOUT = Param(
    "readout",
    str,
    "last",
    "last: the row's root feeds its last column (others 0); every: each prefix's root feeds "
    "its column (causal, T times the cost)",
    choices=("last", "every"),
)
TREE_PAD_ID = int_param(
    "pad_id",
    None,
    "token id of right padding: a row's trailing pads are not leaves (none: rows are unpadded)",
    minimum=0,
    default_doc="none",
)
TREE_GUMBEL = Param(
    "gumbel",
    bool,
    True,
    "in training, rank beam candidates on total + Gumbel noise (kept scores stay noise-free)",
)
GRC_OPTIONS: tuple[Param, ...] = (TREE_DROPOUT,)
BBT_OPTIONS: tuple[Param, ...] = (TREE_READOUT, TREE_PAD_ID, TREE_DROPOUT)
BEAM_TREE_OPTIONS: tuple[Param, ...] = (
    int_param("beam", 5, "beams kept per merge step"),
    Param(
        "scorer",
        str,
        "children",
        "pair scorer: children = MLP on the two children's first min(64, d) coordinates "
        "(EBT23), parent = linear on the composed parent (BT23; composes every pair)",
        choices=TREE_SCORERS,
    ),
    Param(
        "topk",
        str,
        "hard",
        "gradient through the selection: hard (constant one-hots; the scorer learns through the "
        "beam scores), onesoft (BT23: last slot a soft mean of the other candidates; needs "
        "scorer=parent), st (straight-through merge masks, an ablation)",
        choices=TREE_TOPK,
    ),
    TREE_GUMBEL,
    TREE_READOUT,
    TREE_PAD_ID,
    TREE_DROPOUT,
)
RIR_OPTIONS: tuple[Param, ...] = (
    int_param("chunk", 30, "chunk size k of the outer k-ary recursion", minimum=2),
    int_param("beam", 7, "beams of the inner search and of each level"),
    Param(
        "align",
        str,
        "sample",
        "beam alignment across chunks: sample (slot 0 the best root, others drawn from "
        "softmax(totals)), rank (slot b = b-th best: RC23's -Beam Align), random (uniform draws)",
        choices=TREE_ALIGN,
    ),
    TREE_GUMBEL,
    Param(
        "pre_ssm",
        bool,
        False,
        "a bidirectional pair of ssm layers (GLU-mixed, residual) before the leaves, standing "
        "in for RC23's S4D layer",
    ),
    TREE_READOUT,
    TREE_PAD_ID,
    TREE_DROPOUT,
)


def check_beam_tree(family: str, o: Mapping[str, Any]) -> None:
    """OneSoft's last slot mixes every candidate parent, which only the parent scorer builds."""
    if o["topk"] == "onesoft" and o["scorer"] != "parent":
        raise UserError(
            f"model '{family}': option 'topk'=onesoft needs scorer=parent (its soft slot mixes "
            f"every candidate parent), got scorer={o['scorer']}"
        )


def _tree_state(rule: str) -> Callable[[Mapping[str, Any]], tuple[int, str]]:
    return lambda o: (0, rule)


# --------------------------------------------------------------------------------------------
# state rules
# --------------------------------------------------------------------------------------------
def _rnn_state(cell: str, layers: int, name: str) -> tuple[int, str]:
    """(numbers per width unit, the rule in words) of ``layers`` recurrent layers of ``cell``."""
    per_layer = f" × {layers} layers" if layers != 1 else ""
    if cell == "lstm":
        return 2 * layers, f"LSTM state = 2 × hidden (h and c){per_layer}"
    return layers, f"{name} state = hidden{per_layer}"


def _ssm_state(o: Mapping[str, Any]) -> tuple[int, str]:
    layers, n = int(o["layers"]), int(o["state_dim"])
    per_layer = f" × {layers} layers" if layers != 1 else ""
    return layers * n, f"SSM state = width × state_dim {n}{per_layer}"


_CELL_NAMES = {"elman": "Elman", "gru": "GRU", "lstm": "LSTM"}


def _no_state(o: Mapping[str, Any]) -> tuple[int, str]:
    return 0, "no recurrent state (the key/value cache grows with the length)"


def _no_cache(o: Mapping[str, Any]) -> int:
    return 0


def _h20_cell(cell: str) -> dict[str, Any]:
    """H20 has constructions for Elman and LSTM cells; every other recurrent cell is set beside
    the Elman construction."""
    return {"cell": "lstm" if cell == "lstm" else "elman"}


# --------------------------------------------------------------------------------------------
# the cards
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilyCard:
    """Everything the testbed knows about one model family without building it.

    ``options``: the declarations (``SeqModel.options_spec`` reads them). ``base_class``: the
    theory class from validated options, before the chain-of-thought rule. ``recurrent``:
    (numbers of recurrent state per unit of width, the rule in words). ``cache``: numbers of
    attention cache per token. ``theorem_options``: the theorem parameters the options fix.
    """

    family: str
    summary: str
    implementation: str
    """Where the ``SeqModel`` class lives, ``"module:Class"`` (imported only to build)."""
    options: tuple[Param, ...]
    base_class: Callable[[Mapping[str, Any]], str | None]
    recurrent: Callable[[Mapping[str, Any]], tuple[int, str]]
    cache: Callable[[Mapping[str, Any]], int]
    theorem_options: Callable[[Mapping[str, Any]], dict[str, Any]]
    uses_retrieval: bool = False
    cross_check: Callable[[str, Mapping[str, Any]], None] | None = None
    """Checks across options once all are resolved at a width (UserError naming them)."""
    fixed: Callable[[int, Mapping[str, Any]], int] | None = None
    """Carried numbers that are neither per width unit nor per token, from (width, options):
    a looped model's Abacus run counter, a DT-net's convolution windows."""
    state_rule: Callable[[int, int], int] | None = None
    """A carried state that is none of the above, from (width, length): the tree encoders'
    (``bbt``: width·popcount(length), its binary counter of complete subtrees; ``beam_tree``,
    ``rir``: width·length, every token's embedding). Replaces the sum when given."""

    def validate(self, width: int, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every applicable option, defaults resolved at ``width`` (UserError naming a bad
        option and what is allowed; a precision option on a family that has no such numbers
        says which families have them)."""
        declared = {o.name for o in self.options}
        for name in sorted(set(given) & set(_MISPLACED) - declared):
            homes = ", ".join(f for f, c in CARDS.items() if name in {o.name for o in c.options})
            raise UserError(f"model '{self.family}': option '{name}' {_MISPLACED[name]} ({homes})")
        out = validate(self.family, self.options, width, given)
        if self.cross_check is not None:
            self.cross_check(self.family, out)
        return out

    def _resolved(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults, for facts that do not depend on the width (no
        cross-option check: that needs the real width's derived defaults)."""
        return validate(self.family, self.options, _ANY_WIDTH, given)

    def model_class(
        self,
        options: Mapping[str, Any],
        task: str | None = None,
        task_params: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The theory class of this family with ``options`` trained on ``task`` (with its full
        parameters ``task_params``): see the module docstring. None for a family no result of
        the catalogue concerns (the recurrent-depth families)."""
        base = self.base_class(self._resolved(options))
        if base is None:
            return None
        if base == "rnn+retrieval" and task is not None:
            lookups = RETRIEVAL_TRACES.get(task)
            if lookups is None or (task_params or {}).get(lookups[0]) != lookups[1]:
                base = "rnn"  # no lookup in the trace: the retriever never fires
        rule = CHAIN_OF_THOUGHT.get(task or "")
        if rule is not None and (task_params or {}).get(rule[0]) == rule[1]:
            if base.startswith("transformer"):
                return "transformer+cot"
            if base == "rnn":
                return "rnn+cot"
        return base

    def state_per_width(self, options: Mapping[str, Any]) -> tuple[float, str]:
        """(s, text): the numbers of recurrent state per unit of width (0 for a Transformer,
        whose carried state is its key/value cache) and the rule in words."""
        s, text = self.recurrent(self._resolved(options))
        return float(s), text

    def state_size(self, width: int, options: Mapping[str, Any], length: int) -> int:
        """Numbers carried from one step to the next after ``length`` tokens: the recurrent
        state (per width unit × width) plus the attention cache (per token × length) plus any
        fixed numbers — the built model's ``state_size(length)``."""
        o = self.validate(width, options)
        if self.state_rule is not None:
            return self.state_rule(int(width), int(length))
        extra = self.fixed(int(width), o) if self.fixed is not None else 0
        return self.recurrent(o)[0] * int(width) + self.cache(o) * int(length) + extra

    def state_bits(
        self, width: int, options: Mapping[str, Any], length: int, float_bits: int = FLOAT_BITS
    ) -> int:
        """Bits carried from one step to the next after ``length`` tokens — the m·p of the RNN
        lower bounds (B24-T3 …): each recurrent number counts ``state_bits`` p, each number of
        the attention cache ``precision_bits``, and a number whose option is unset counts
        ``float_bits`` (a float32 holds at most 2^32 values). The built model's
        ``state_bits(length)``."""
        o = self.validate(width, options)
        recurrent = self.recurrent(o)[0] * int(width) * int(o.get("state_bits", float_bits))
        cache = self.cache(o) * int(length) * int(o.get("precision_bits", float_bits))
        return recurrent + cache

    def number_bits(self, options: Mapping[str, Any]) -> int | None:
        """p, the bits per carried number the lower bounds on state bits divide by (m·p ≥ …):
        the largest precision option of the numbers this family carries (``state_bits`` for a
        recurrent state, ``precision_bits`` for an attention cache), None when some carried
        number is an unbounded float or the family declares neither option.

        The largest, because a model whose m numbers carry at most p_max bits each carries at
        most m·p_max bits: a bound m ≥ B / p_max stays valid for a hybrid whose two parts have
        different p (docs/precision.md). A family that carries a recurrent state *and* a cache
        (hybrid) has a float among them unless both options are set."""
        o = self._resolved(options)
        kinds = []
        if self.recurrent(o)[0] > 0 and "state_bits" in self.option_names:
            kinds.append("state_bits")
        if self.cache(o) > 0 and "precision_bits" in self.option_names:
            kinds.append("precision_bits")
        if not kinds or any(o.get(k) is None for k in kinds):
            return None
        return max(int(o[k]) for k in kinds)

    @property
    def option_names(self) -> frozenset[str]:
        """The names of this family's options."""
        return frozenset(opt.name for opt in self.options)

    def theorem_params(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Theorem parameters fixed by the options (``heads`` for attention; H20's ``cell``)."""
        return self.theorem_options(self._resolved(options))


def _recurrent_card(cell: str, cls: str, summary: str) -> FamilyCard:
    return FamilyCard(
        family=cell,
        summary=summary,
        implementation=f"sepbench.models.rnn:{cls}",
        options=recurrent_options(cell),
        base_class=lambda o: "rnn",
        recurrent=lambda o: _rnn_state(cell, int(o["layers"]), _CELL_NAMES[cell]),
        cache=_no_cache,
        theorem_options=lambda o: _h20_cell(cell),
    )


def _hybrid_state(o: Mapping[str, Any]) -> tuple[int, str]:
    if o["base"] == "ssm":
        return _ssm_state(o)
    return _rnn_state(o["base"], int(o["layers"]), _CELL_NAMES[o["base"]])


CARDS: dict[str, FamilyCard] = {
    "elman": _recurrent_card(
        "elman", "ElmanModel", "Elman RNN (tanh, relu, or sigmoid for H20's construction)"
    ),
    "lstm": _recurrent_card("lstm", "LSTMModel", "LSTM (torch.nn.LSTM layers)"),
    "gru": _recurrent_card("gru", "GRUModel", "GRU (torch.nn.GRU layers)"),
    "rag": FamilyCard(
        family="rag",
        summary="RNN (elman/lstm/gru) whose generation loop calls the task's retriever",
        implementation="sepbench.models.rnn:RAGModel",
        options=recurrent_options(None),
        base_class=lambda o: "rnn+retrieval",
        recurrent=lambda o: _rnn_state(o["cell"], int(o["layers"]), f"RAG ({o['cell']})"),
        cache=_no_cache,
        theorem_options=lambda o: _h20_cell(o["cell"]),
        uses_retrieval=True,
    ),
    "ssm": FamilyCard(
        family="ssm",
        summary="diagonal selective state-space model (Mamba style, chunked parallel scan)",
        implementation="sepbench.models.ssm:SSMModel",
        options=(
            int_param("layers", 1, "number of SSM layers"),
            *ssm_options(),
            Param("layer_norm", bool, True, "pre-norm LayerNorms (constructions turn them off)"),
            STATE_BITS,
        ),
        base_class=lambda o: "rnn",
        recurrent=_ssm_state,
        cache=_no_cache,
        theorem_options=lambda o: _h20_cell("ssm"),
    ),
    "transformer": FamilyCard(
        family="transformer",
        summary="causal softmax Transformer (explicit W_Q, W_K, W_V, W_O; ReLU MLPs; residuals)",
        implementation="sepbench.models.transformer:TransformerModel",
        options=(
            int_param("layers", 1, "number of attention layers"),
            *attention_options("learned"),
        ),
        base_class=lambda o: "transformer-1" if int(o["layers"]) == 1 else "transformer-2",
        recurrent=_no_state,
        cache=lambda o: int(o["layers"]) * 2 * int(o["heads"]) * int(o["head_dim"]),
        theorem_options=lambda o: {"heads": o["heads"]},
        cross_check=check_attention,
    ),
    "hybrid": FamilyCard(
        family="hybrid",
        summary="RNN or SSM stack followed by exactly one attention layer (W24-H)",
        implementation="sepbench.models.hybrid:HybridModel",
        options=hybrid_options(),
        base_class=lambda o: "hybrid",
        recurrent=_hybrid_state,
        cache=lambda o: 2 * int(o["heads"]) * int(o["head_dim"]),
        theorem_options=lambda o: {"heads": o["heads"]},
        cross_check=check_attention,
    ),
    "looped": FamilyCard(
        family="looped",
        summary="looped Transformer: one causal block applied R times with shared weights, "
        "input injection, test-time iteration count (MC24, BA22)",
        implementation="sepbench.models.looped:LoopedModel",
        options=looped_options(),
        base_class=lambda o: None,
        recurrent=_no_state,
        cache=lambda o: (
            int(o["iterations"]) * int(o["block_layers"]) * 2 * int(o["heads"]) * int(o["head_dim"])
        ),
        theorem_options=lambda o: {},
        cross_check=check_looped,
        fixed=lambda width, o: 1 if abacus_on(o) else 0,
    ),
    "dtnet": FamilyCard(
        family="dtnet",
        summary="deep-thinking net (BA22): a block of causal width-3 1-D convolutions applied R "
        "times with shared weights, recall of the input every iteration",
        implementation="sepbench.models.dtnet:DTNetModel",
        options=dtnet_options(),
        base_class=lambda o: None,
        recurrent=_no_state,
        cache=_no_cache,
        theorem_options=lambda o: {},
        fixed=lambda width, o: (
            (DTNET_KERNEL - 1) * sum(dtnet_windows(width, o, int(o["iterations"])))
        ),
    ),
    "grc": FamilyCard(
        family="grc",
        summary="the GRC composition cell run as a causal RNN (RC23's recurrent baseline)",
        implementation="sepbench.models.rvnn:GRCModel",
        options=GRC_OPTIONS,
        base_class=lambda o: "rnn",
        recurrent=lambda o: (1, "GRC state = hidden"),
        cache=_no_cache,
        theorem_options=lambda o: _h20_cell("grc"),
    ),
    "bbt": FamilyCard(
        family="bbt",
        summary="balanced-binary-tree RvNN with the GRC cell (log2 n depth; RC23's BBT-GRC)",
        implementation="sepbench.models.rvnn:BBTModel",
        options=BBT_OPTIONS,
        base_class=lambda o: None,
        recurrent=_tree_state("a binary counter of complete subtrees: width × popcount(length)"),
        cache=_no_cache,
        theorem_options=lambda o: {},
        state_rule=lambda width, length: width * int(length).bit_count(),
    ),
    "beam_tree": FamilyCard(
        family="beam_tree",
        summary="beam search over adjacent-pair merges with the GRC cell (BT23 / EBT23)",
        implementation="sepbench.models.rvnn:BeamTreeModel",
        options=BEAM_TREE_OPTIONS,
        base_class=lambda o: None,
        recurrent=_tree_state("every token's embedding (the search reruns): width × length"),
        cache=_no_cache,
        theorem_options=lambda o: {},
        cross_check=check_beam_tree,
        state_rule=lambda width, length: width * int(length),
    ),
    "rir": FamilyCard(
        family="rir",
        summary="recursion in recursion: k-ary balanced tree of inner beam searches (RC23)",
        implementation="sepbench.models.rvnn:RIRModel",
        options=RIR_OPTIONS,
        base_class=lambda o: None,
        recurrent=_tree_state("every token's embedding (the search reruns): width × length"),
        cache=_no_cache,
        theorem_options=lambda o: {},
        state_rule=lambda width, length: width * int(length),
    ),
}


_MISPLACED = {
    "state_bits": "bounds a recurrent state, which this family does not carry; a "
    "Transformer's numbers are bounded by 'precision_bits'; families with a recurrent state",
    "precision_bits": "bounds attention layers' numbers, which this family does not have; a "
    "recurrent state is bounded by 'state_bits'; families with attention",
}
"""Why a precision option does not apply to a family without those numbers (the error's
words; the families that have them follow)."""


def families() -> list[str]:
    """The model family names, in a stable order."""
    return list(CARDS)


def card(family: str) -> FamilyCard:
    """The card of ``family``; UserError listing the known families otherwise."""
    if not isinstance(family, str) or family not in CARDS:
        raise UserError(f"unknown model family {family!r}; known families: {', '.join(CARDS)}")
    return CARDS[family]


def model_class(
    family: str | None,
    options: Mapping[str, Any],
    task: str | None = None,
    task_params: Mapping[str, Any] | None = None,
) -> str | None:
    """The theory class of a family with ``options`` on ``task``; None for a family the
    testbed does not know (it then has no class and no theorem)."""
    if family not in CARDS:
        return None
    return CARDS[family].model_class(options, task, task_params)


def state_per_width(family: str | None, options: Mapping[str, Any]) -> tuple[float, str] | None:
    """:meth:`FamilyCard.state_per_width` of ``family``; None for a family the testbed does not
    know."""
    if family not in CARDS:
        return None
    return CARDS[family].state_per_width(options)


def number_bits(family: str | None, options: Mapping[str, Any]) -> int | None:
    """:meth:`FamilyCard.number_bits` of ``family``; None for a family the testbed does not
    know (its numbers count as floats)."""
    if family not in CARDS:
        return None
    return CARDS[family].number_bits(options)


# --------------------------------------------------------------------------------------------
# what a trial records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFacts:
    """What a trial records about the model it trained, in its stored outcome
    (``outcome["details"][ModelFacts.KEY]``): the theory class (on the trial's task), the
    state size after ``state_tokens`` tokens (the task's padded token length at the trial's
    N), the trainable parameter count, the width, and the bits carried with their p (a report
    judges the pair at that p)."""

    model_class: str | None
    state_size: int
    state_tokens: int
    parameters: int
    width: int
    state_bits: int | None = None
    """Bits carried after ``state_tokens`` tokens (the model's ``state_bits(length)``, B24's
    m·p with an unbounded number counting :data:`FLOAT_BITS`); None in stores written before
    trials recorded it."""
    number_bits: int | None = None
    """p, the bits per carried number (:meth:`FamilyCard.number_bits`: the ``state_bits`` or
    ``precision_bits`` option); None for unbounded floats, and in stores written before
    trials recorded it."""

    KEY: ClassVar[str] = "model_facts"

    @classmethod
    def of(cls, model: Any, task: str, task_params: Mapping[str, Any], tokens: int) -> ModelFacts:
        """The facts of a built model (any ``SeqModel``: ``family``, ``options``, ``width``,
        ``state_size(length)``, ``num_parameters()``) trained on ``task``."""
        return cls(
            model_class=model_class(model.family, model.options, task, task_params),
            state_size=int(model.state_size(int(tokens))),
            state_tokens=int(tokens),
            parameters=int(model.num_parameters()),
            width=int(model.width),
            state_bits=int(model.state_bits(int(tokens))),
            number_bits=number_bits(model.family, model.options),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_details(cls, details: Any) -> ModelFacts | None:
        """The facts stored in an outcome's details; None when there are none (stores written
        before trials recorded them) or they are malformed."""
        raw = details.get(cls.KEY) if isinstance(details, Mapping) else None
        if not isinstance(raw, Mapping):
            return None
        cls_name = raw.get("model_class")
        if not (cls_name is None or isinstance(cls_name, str)):
            return None
        numbers = []
        for key in ("state_size", "state_tokens", "parameters", "width"):
            value = raw.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return None
            numbers.append(value)
        state, tokens, params, width = numbers
        optional = []
        for key in ("state_bits", "number_bits"):
            value = raw.get(key)  # absent in stores written before trials recorded them
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                return None
            optional.append(value)
        return cls(cls_name, state, tokens, params, width, *optional)
