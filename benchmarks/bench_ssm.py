"""The SSM at long contexts: the scan, its speed-up over the earlier scan and a step loop,
memory, the state trace and the mitigations' cost.

Run: ``pytest benchmarks/bench_ssm.py --benchmark-only -s``. Not part of the test suite. One
intra-op thread (benchmarks/conftest.py and ``torch.set_num_threads(1)`` below).

* ``test_long_forward`` — the capacity spec's target: 1 layer, width 32, state_dim 8, a forward
  pass over 16 × 8192 tokens (≤ 2 s, peak ≤ 1 GiB). Peak memory is the peak resident set of a
  fresh process doing only that forward pass (VmHWM, reset just before the pass), printed with
  the resident set before the pass (torch, the model and the tokens).
* ``test_scan_speedup[T]`` — ``ssm_scan.selective_scan`` against the scan it replaced
  (``dense_scan`` below: the same intra-chunk form, states handed between chunks through a
  dense [chunks × chunks × width] decay tensor) and against a plain sequential loop over time
  (one batched update per step), 1 and 16 rows, width 32, state_dim 8, no gradients; with
  each, the float32 error against the float64 loop (relative to its largest output).
* ``test_mitigation_forward[…]`` and ``test_state_trace`` — what the inference options and
  the trace cost at 4 × 8192 and 16 × 8192 tokens.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from timing import best_seconds
from torch import Tensor

from sepbench import models
from sepbench.models.ssm_scan import selective_scan

torch.set_num_threads(1)
ROWS, WIDTH, STATE = 16, 32, 8


def dense_scan(a: Tensor, x: Tensor, B: Tensor, C: Tensor, chunk: int = 8) -> Tensor:
    """The scan before the linear inter-chunk pass (sepbench.models.ssm at d959fed), kept as
    the baseline: rows in groups of ≤ 2²⁰ intra-chunk floats, states between chunks through
    the dense decay matrix exp(Q_{c−1} − Q_{c'}) over all chunk pairs."""
    lead, (t_len, d), n = a.shape[:-2], a.shape[-2:], B.shape[-1]
    a, x = a.reshape(-1, t_len, d), x.reshape(-1, t_len, d)
    B, C = B.reshape(-1, t_len, n), C.reshape(-1, t_len, n)
    rows = max(1, (1 << 20) // max(1, t_len * chunk * d))
    parts = [
        _dense(a[i : i + rows], x[i : i + rows], B[i : i + rows], C[i : i + rows], chunk)
        for i in range(0, a.shape[0], rows)
    ]
    return torch.cat(parts).reshape(*lead, t_len, d)


def _dense(a: Tensor, x: Tensor, B: Tensor, C: Tensor, chunk: int) -> Tensor:
    bsz, t_len, d = a.shape
    n = B.shape[-1]
    k = max(1, min(chunk, t_len))
    pad = (-t_len) % k
    if pad:
        a, x = F.pad(a, (0, 0, 0, pad)), F.pad(x, (0, 0, 0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    nc = (t_len + pad) // k
    a, x = a.reshape(bsz, nc, k, d), x.reshape(bsz, nc, k, d)
    Bc, Cc = B.reshape(bsz, nc, k, n), C.reshape(bsz, nc, k, n)
    L = a.cumsum(dim=2)
    causal = torch.ones(k, k, dtype=torch.bool).tril()
    seg = L.unsqueeze(3) - L.unsqueeze(2)
    decay = torch.exp(seg.masked_fill(~causal[:, :, None], float("-inf")))
    cb = Cc @ Bc.transpose(-1, -2)
    y = ((cb.unsqueeze(-1) * decay) * x.unsqueeze(2)).sum(dim=3)
    if nc > 1:
        L_end = L[:, :, -1, :]
        S = torch.einsum("bcsd,bcsn->bcdn", torch.exp(L_end.unsqueeze(2) - L) * x, Bc)
        Q = L_end.cumsum(dim=1)
        before = torch.ones(nc, nc, dtype=torch.bool).tril(-1)
        seg2 = (Q - L_end).unsqueeze(2) - Q.unsqueeze(1)
        D2 = torch.exp(seg2.masked_fill(~before[:, :, None], float("-inf")))
        H_in = torch.einsum("bxyd,bydn->bxdn", D2, S)
        y = y + torch.exp(L) * torch.einsum("bctn,bcdn->bctd", Cc, H_in)
    return y.reshape(bsz, nc * k, d)[:, :t_len]


def sequential_scan(a: Tensor, x: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """The recurrence as a loop over time, all rows at once: h ← ā h + x B, y = C · h."""
    h = a.new_zeros(a.shape[0], a.shape[2], B.shape[2])
    decay, out = torch.exp(a), []
    for t in range(a.shape[1]):
        h = torch.addcmul(decay[:, t].unsqueeze(-1) * h, x[:, t].unsqueeze(-1), B[:, t, None])
        out.append((h @ C[:, t].unsqueeze(-1)).squeeze(-1))
    return torch.stack(out, dim=1)


def _inputs(rows: int, t_len: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    a = -torch.rand(rows, t_len, WIDTH, generator=g) * 0.1
    rest = (torch.randn(rows, t_len, k, generator=g) for k in (WIDTH, STATE, STATE))
    return (a, *rest)


def _model(seed: int = 0) -> models.SeqModel:
    return models.build("ssm", 16, WIDTH, state_dim=STATE, seed=seed)


def _tokens(rows: int, t_len: int) -> Tensor:
    return torch.randint(0, 16, (rows, t_len), generator=torch.Generator().manual_seed(1))


PEAK = """
import torch
torch.set_num_threads(1)
from sepbench import models


def peak_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024


m = models.build("ssm", 16, 32, state_dim=8, seed=0)
x = torch.randint(0, 16, (16, 8192), generator=torch.Generator().manual_seed(1))
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (it is inherited from a fork)
    f.write("5")
before = peak_mib()
with torch.no_grad():
    m(x)
print(before, peak_mib())
"""


def test_long_forward(benchmark) -> None:
    model, x = _model(), _tokens(ROWS, 8192)
    with torch.no_grad():
        model(x)
        benchmark.pedantic(lambda: model(x), rounds=3, warmup_rounds=0)
    seconds = benchmark.stats.stats.min
    out = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True)
    before, after = (float(v) for v in out.stdout.split())  # Linux: /proc/self/status
    benchmark.extra_info.update(seconds=round(seconds, 3), peak_mib=round(after))
    print(
        f"\nforward 16 x 8192 tokens (1 layer, width 32, state_dim 8): {seconds:.3f} s; "
        f"peak RSS {after:.0f} MiB (torch loaded: {before:.0f} MiB)"
    )


@pytest.mark.parametrize("rows", [1, ROWS])
@pytest.mark.parametrize("t_len", [512, 4096])
def test_scan_speedup(benchmark, t_len: int, rows: int) -> None:
    args = _inputs(rows, t_len)
    with torch.no_grad():
        exact = sequential_scan(*(v.double() for v in args))
        error = {  # float32 results against the float64 loop, relative to its largest output
            fn.__name__: float((fn(*args).double() - exact).abs().max() / exact.abs().max())
            for fn in (selective_scan, dense_scan)
        }
        assert error["selective_scan"] < 1e-5
        benchmark.pedantic(lambda: selective_scan(*args), rounds=5, warmup_rounds=1)
        new = benchmark.stats.stats.min
        dense = best_seconds(lambda: dense_scan(*args), 3)
        loop = best_seconds(lambda: sequential_scan(*args), 3)
    benchmark.extra_info.update(
        scan_s=round(new, 4), dense_s=round(dense, 4), loop_s=round(loop, 4), **error
    )
    print(
        f"\nT = {t_len}, {rows} rows: scan {new * 1e3:.1f} ms, earlier dense scan "
        f"{dense * 1e3:.1f} ms ({dense / new:.1f}x), sequential loop {loop * 1e3:.1f} ms "
        f"({loop / new:.1f}x); "
        f"float32 error: scan {error['selective_scan']:.1e}, dense {error['dense_scan']:.1e}"
    )


MITIGATIONS = {
    "none": {},
    "decay_scale": {"decay_scale": 0.999, "write_scale": 0.7},
    "state_norm": {"state_norm": [[1.0] * WIDTH]},
    "window_64": {"window": 64},
    "window_1024": {"window": 1024},
    "window_100": {"window": 100},
}


@pytest.mark.parametrize("name", list(MITIGATIONS))
def test_mitigation_forward(benchmark, name: str) -> None:
    model, x = _model().with_inference(**MITIGATIONS[name]), _tokens(4, 8192)
    with torch.no_grad():
        benchmark.pedantic(lambda: model(x), rounds=2, warmup_rounds=1)
    print(f"\nmitigation {name:<12} 4 x 8192 tokens: {benchmark.stats.stats.min:.3f} s")


def test_state_trace(benchmark) -> None:
    model, x = _model(), _tokens(ROWS, 8192)
    benchmark.pedantic(lambda: model.state_trace(x, stride=16), rounds=2, warmup_rounds=1)
    print(f"\nstate_trace 16 x 8192 tokens, stride 16: {benchmark.stats.stats.min:.3f} s")
