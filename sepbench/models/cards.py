"""Family cards: what the testbed knows about each model family without building a model.

One :class:`FamilyCard` per family (``elman``, ``lstm``, ``gru``, ``rag``, ``ssm``,
``transformer``, ``hybrid``) is the one owner of

* its **option declarations** (the ``SeqModel`` classes read them as ``options_spec``;
  ``models.describe`` lists them and ``models.build`` validates through
  :meth:`FamilyCard.validate`, cross-option rules included: RoPE needs an even head_dim);
* its **theory model class** — which results of :mod:`sepbench.theory` concern it:
  ``transformer`` with ``layers = 1`` → ``transformer-1``, ``layers ≥ 2`` → ``transformer-2``
  (the two-layer constructions are upper bounds for deeper models too; the one-layer lower
  bounds are not claimed for them); ``elman``, ``lstm``, ``gru``, ``ssm`` → ``rnn``;
  ``rag`` → ``rnn+retrieval``; ``hybrid`` → ``hybrid``. On a task whose output is a chain of
  thought (:data:`CHAIN_OF_THOUGHT`: ``is_tree`` with ``trace = "cot"``) a Transformer is
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
  32 — the built model's ``state_bits(length)``;
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

MAX_BITS = 32
"""Largest ``state_bits`` / ``precision_bits`` (a float32 holds at most 2^32 values)."""
FLOAT_BITS = 32
"""Bits a number carries when its precision is unbounded: a float32 (:meth:`FamilyCard.
state_bits`)."""

CHAIN_OF_THOUGHT: dict[str, tuple[str, Any]] = {"is_tree": ("trace", "cot")}
"""Tasks whose supervised output is a chain of thought, as task → (parameter, value): a model
trained on them is judged by the ``+cot`` classes."""

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
    base_class: Callable[[Mapping[str, Any]], str]
    recurrent: Callable[[Mapping[str, Any]], tuple[int, str]]
    cache: Callable[[Mapping[str, Any]], int]
    theorem_options: Callable[[Mapping[str, Any]], dict[str, Any]]
    uses_retrieval: bool = False
    cross_check: Callable[[str, Mapping[str, Any]], None] | None = None
    """Checks across options once all are resolved at a width (UserError naming them)."""

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
    ) -> str:
        """The theory class of this family with ``options`` trained on ``task`` (with its full
        parameters ``task_params``): see the module docstring."""
        base = self.base_class(self._resolved(options))
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
        state (per width unit × width) plus the attention cache (per token × length) — the
        built model's ``state_size(length)``."""
        o = self.validate(width, options)
        return self.recurrent(o)[0] * int(width) + self.cache(o) * int(length)

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


# --------------------------------------------------------------------------------------------
# what a trial records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFacts:
    """What a trial records about the model it trained, in its stored outcome
    (``outcome["details"][ModelFacts.KEY]``): the theory class (on the trial's task), the
    state size after ``state_tokens`` tokens (the task's padded token length at the trial's
    N), the trainable parameter count, and the width."""

    model_class: str | None
    state_size: int
    state_tokens: int
    parameters: int
    width: int

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
        return cls(cls_name, state, tokens, params, width)
