"""The token blocks of the Spikformer family, with the releases' module names: spiking
self-attention, MLPs, attention-free mixers and the encoder block.

Token streams are ``[T, B, N, C]`` (token-major). The releases keep ``[T, B, C, N]`` and
run ``Conv1d(k=1)``; a ``k=1`` convolution over channels is the same linear map, which we
apply as one GEMM over ``T*B*N`` rows with the release's ``Conv1d`` weight (so state dicts
keep the release's names and shapes).

Every conv / linear followed by a batch norm goes through
:meth:`~dvsstream.models.fusion.FusableMixin._cbn`, which in eval mode can use
batch-norm-folded weights (see :func:`~dvsstream.models.fusion.fuse_bn`). The tokenizers
(image-like maps to tokens) are in :mod:`~dvsstream.models.tokenizers`.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from dvsstream.models.fusion import FusableMixin, _bn, _linear, _small
from dvsstream.models.neurons import LIF

__all__ = [
    "SSA",
    "MLP",
    "Block",
    "TokenMixer",
    "SpikingSSA",
    "SpikingMLP",
    "SpikingBlock",
]


# ----------------------------------------------------------------------------- Spikformer
class SSA(FusableMixin, nn.Module):
    """Spiking self-attention (Spikformer). In / out: ``[T, B, N, C]``.

    ``q, k, v = LIF(BN(Conv1d_k1(x)))``; per head ``y = (q k^T) v * scale``;
    ``LIF(th=attn_threshold)``; ``LIF(BN(Conv1d_k1 with bias))``. No softmax, so
    ``(q k^T) v == q (k^T v)`` exactly (integer sums in float): the cheaper order is used
    (``matmul_order="auto"``) unless attention is being tapped.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        scale: float = 0.25,
        attn_threshold: float = 0.5,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        grid: tuple[int, int] = (8, 8),
        matmul_order: str = "auto",
        spike_driven: bool = False,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        if matmul_order not in ("auto", "nn", "dd"):
            raise ValueError(f"matmul_order must be 'auto', 'nn' or 'dd', got {matmul_order!r}")
        self._fused = None
        self.dim, self.heads, self.scale = dim, heads, scale
        self.grid = grid
        self.matmul_order = matmul_order
        self.spike_driven = spike_driven  # Spikingformer: LIF first, no LIF after proj
        lif = lambda th=v_threshold: LIF(tau, th, inplace=True)  # noqa: E731
        if spike_driven:
            self.proj_lif = LIF(tau, v_threshold, inplace=False)  # input is the residual stream
        for n in "qkv":
            setattr(self, f"{n}_conv", nn.Conv1d(dim, dim, 1, bias=False))
            setattr(self, f"{n}_bn", nn.BatchNorm1d(dim))
            setattr(self, f"{n}_lif", lif())
        self.attn_lif = lif(attn_threshold)
        self.proj_conv = nn.Conv1d(dim, dim, 1, bias=True)
        self.proj_bn = nn.BatchNorm1d(dim)
        if not spike_driven:
            self.proj_lif = lif()
        self.tap: Optional[list] = None
        self.last_order: Optional[str] = None

    def fuse_pairs(self) -> list[tuple[str, str]]:
        return [("q_conv", "q_bn"), ("k_conv", "k_bn"), ("v_conv", "v_bn"), ("proj_conv", "proj_bn")]

    def folded(self) -> dict[str, tuple[Tensor, Tensor]]:
        """:meth:`FusableMixin.folded` and ``"qkv"``: the folded q, k and v weights and
        biases stacked, for one GEMM."""
        f = super().folded()
        f["qkv"] = (
            torch.cat([f[n][0].flatten(1) for n in ("q_conv", "k_conv", "v_conv")]),
            torch.cat([f[n][1] for n in ("q_conv", "k_conv", "v_conv")]),
        )
        return f

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        h, d = self.heads, C // self.heads
        if self.spike_driven:
            x = self.proj_lif(x)
        xf = x.reshape(T * B * N, C)
        qkv = self._fused.get("qkv") if (self._fused and not self.q_bn.training) else None
        if qkv is not None and self._meter is None:  # one GEMM for q, k and v (folded BNs)
            y = _linear(xf, qkv[0], qkv[1]).view(T, B, N, 3, C)
            q = self.q_lif(y[:, :, :, 0])
            k = self.k_lif(y[:, :, :, 1])
            v = self.v_lif(y[:, :, :, 2])
        elif self._meter is None and self._fused is None and _small(xf) and (w_qkv := self._qkv_weight()) is not None:
            # unfused, few rows (a live step): one GEMM with the three weights stacked
            # (channel-major out, as _cbn's small-row path), then each batch norm
            y = torch.mm(w_qkv, xf.t())  # [3C, rows]
            q = self.q_lif(_bn(self.q_bn, y[:C].unsqueeze(0))[0].t().view(T, B, N, C))
            k = self.k_lif(_bn(self.k_bn, y[C : 2 * C].unsqueeze(0))[0].t().view(T, B, N, C))
            v = self.v_lif(_bn(self.v_bn, y[2 * C :].unsqueeze(0))[0].t().view(T, B, N, C))
        else:
            q = self._cbn_lif("q_conv", "q_bn", self.q_lif, xf, (T, B, N))
            k = self._cbn_lif("k_conv", "k_bn", self.k_lif, xf, (T, B, N))
            v = self._cbn_lif("v_conv", "v_bn", self.v_lif, xf, (T, B, N))
        order = self.matmul_order
        if order == "auto":
            order = "dd" if d < N else "nn"
        if self.tap is not None:
            order = "nn"
        self.last_order = order
        if order == "dd" and T * B == 1 and q.dtype not in (torch.float16, torch.bfloat16) and all(
            t.stride(2) == 1 and t.stride(3) == N for t in (q, k, v)
        ):
            # one frame with q, k, v channel-major ([C, N] in memory: the small-row GEMM's
            # output, see fusion.small_rows): per head (q (k^T v))^T = (k^T v)^T q^T as two plain
            # batched products on [h, d, N] views, giving y channel-major too (what the
            # proj GEMM wants) with no copies. Same exact integer sums as below.
            qt, kt, vt = q[0, 0].t().view(h, d, N), k[0, 0].t().view(h, d, N), v[0, 0].t().view(h, d, N)
            y = torch.bmm(torch.bmm(kt, vt.transpose(1, 2)).transpose(1, 2), qt).mul_(self.scale)
            y = y.view(C, N).t().view(T, B, N, C)
        else:
            q = q.view(T, B, N, h, d).transpose(2, 3)
            k = k.view(T, B, N, h, d).transpose(2, 3)
            v = v.view(T, B, N, h, d).transpose(2, 3)
            dtype = q.dtype
            if dtype in (torch.float16, torch.bfloat16):
                # integer sums up to N*d are exact in float32, not in half precision
                q, k, v = q.float(), k.float(), v.float()
            if order == "nn":
                attn = q @ k.transpose(-2, -1)  # [T, B, h, N, N]
                y = attn @ v
                if self.tap is not None:
                    self._record(attn)
            else:
                y = q @ (k.transpose(-2, -1) @ v)  # [T, B, h, N, d]
            y = (y * self.scale).to(dtype)
            y = y.transpose(2, 3).reshape(T, B, N, C)
        y = self.attn_lif(y)
        if self.spike_driven:
            return self._cbn("proj_conv", "proj_bn", y.view(T * B * N, C)).view(T, B, N, C)
        return self._cbn_lif("proj_conv", "proj_bn", self.proj_lif, y.view(T * B * N, C), (T, B, N))

    def _qkv_weight(self) -> Optional[Tensor]:
        """``cat(W_q, W_k, W_v)`` ``[3C, C]`` (None if the convs have biases), rebuilt when
        any of them changes."""
        mods = self._modules
        ps = (mods["q_conv"]._parameters, mods["k_conv"]._parameters, mods["v_conv"]._parameters)
        if any(p.get("bias") is not None for p in ps):
            return None
        ws = tuple(p["weight"] for p in ps)
        key = tuple((w.data_ptr(), w._version, w.dtype) for w in ws)
        cached = self.__dict__.get("_qkv_cat")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_qkv_cat"] = (key, torch.cat([w.detach().flatten(1) for w in ws]))
        return cached[1]

    def _record(self, attn: Tensor) -> None:
        T, B, h, N, _ = attn.shape
        gh, gw = self.grid
        received = attn.sum(dim=-2)  # attention each key token receives, summed over queries
        spatial = received.view(T, B, h, gh, gw) if gh * gw == N else received
        self.tap.append({"attn": attn.detach(), "map": spatial.detach()})  # type: ignore[union-attr]


class MLP(FusableMixin, nn.Module):
    """``LIF(BN(fc1)) -> LIF(BN(fc2))`` with k=1 convs (Spikformer). ``[T, B, N, C]``."""

    def __init__(self, dim: int, hidden: int, tau: float = 2.0, v_threshold: float = 1.0) -> None:
        super().__init__()
        self._fused = None
        self.hidden = hidden
        self.fc1_conv = nn.Conv1d(dim, hidden, 1)
        self.fc1_bn = nn.BatchNorm1d(hidden)
        self.fc1_lif = LIF(tau, v_threshold, inplace=True)
        self.fc2_conv = nn.Conv1d(hidden, dim, 1)
        self.fc2_bn = nn.BatchNorm1d(dim)
        self.fc2_lif = LIF(tau, v_threshold, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        x = self._cbn_lif("fc1_conv", "fc1_bn", self.fc1_lif, x.reshape(T * B * N, C), (T, B, N))
        return self._cbn_lif("fc2_conv", "fc2_bn", self.fc2_lif, x.reshape(T * B * N, self.hidden), (T, B, N))


class TokenMixer(nn.Module):
    """Attention-free token mixing (Spikformer with linear transforms): an
    unparameterised transform of the ``[N, C]`` token matrix followed by a LIF.

    * ``"fft"``: real part of the 1-D FFT over tokens;
    * ``"fft2d"``: real part of the 2-D FFT over (tokens, channels);
    * ``"haar"``: one level of the orthonormal 2-D Haar transform over (tokens, channels)
      (N and C must be even).
    """

    def __init__(self, mixer: str, num_tokens: int, dim: int, tau: float = 2.0, v_threshold: float = 1.0) -> None:
        super().__init__()
        if mixer not in ("fft", "fft2d", "haar"):
            raise ValueError(f"mixer must be 'fft', 'fft2d' or 'haar', got {mixer!r}")
        self.mixer = mixer
        if mixer == "haar":
            if num_tokens % 2 or dim % 2:
                raise ValueError(f"haar mixing needs an even token count and dim, got N={num_tokens}, C={dim}")
            self.register_buffer("haar_n", _haar_matrix(num_tokens), persistent=False)
            self.register_buffer("haar_c", _haar_matrix(dim), persistent=False)
        self.mix_lif = LIF(tau, v_threshold, inplace=True)
        self.tap: Optional[list] = None

    _meter: Optional[dict] = None

    def forward(self, x: Tensor) -> Tensor:
        if self._meter is not None:
            T, B, N, C = x.shape
            per_row = {"fft": N * max(1.0, math.log2(N)), "fft2d": N * C * max(1.0, math.log2(N * C)) / N, "haar": 2 * (N + C) / 2}
            rec = self._meter.setdefault("mixer", [0, 0, 0, 0])
            rec[0] += 1
            rec[1] += int((x != 0).sum().item())
            rec[2] += x.numel()
            # approximate additions of the fast transform: ~N log2 N per column (FFT),
            # 2 per element per dimension (one-level Haar)
            rec[3] += int(T * B * C * per_row[self.mixer]) if self.mixer != "haar" else int(2 * x.numel())
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # no half FFT on CPU
        if self.mixer == "fft":
            y = torch.fft.fft(xf, dim=2).real.to(x.dtype)
        elif self.mixer == "fft2d":
            y = torch.fft.fft2(xf, dim=(2, 3)).real.to(x.dtype)
        else:
            hn = self.haar_n.to(x.dtype)
            hc = self.haar_c.to(x.dtype)
            y = torch.matmul(torch.matmul(hn, x), hc.t())
        return self.mix_lif(y.contiguous())


def _haar_matrix(n: int) -> Tensor:
    """Orthonormal one-level Haar analysis matrix ``[n, n]``: first n/2 rows average pairs,
    last n/2 rows difference them, both scaled by 1/sqrt(2)."""
    m = torch.zeros(n, n, dtype=torch.float64)
    s = 1.0 / math.sqrt(2.0)
    for i in range(n // 2):
        m[i, 2 * i] = s
        m[i, 2 * i + 1] = s
        m[n // 2 + i, 2 * i] = s
        m[n // 2 + i, 2 * i + 1] = -s
    return m.float()


class Block(nn.Module):
    """Spikformer encoder block: ``x = x + attn(x); x = x + mlp(x)`` (attn: SSA or a mixer)."""

    def __init__(self, attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.attn = attn
        self.mlp = mlp

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return x


# ----------------------------------------------------------------------------- Spikingformer
class SpikingMLP(FusableMixin, nn.Module):
    """Spikingformer MLP: ``LIF -> fc -> BN -> LIF -> fc -> BN`` (real-valued output)."""

    def __init__(self, dim: int, hidden: int, tau: float = 1.5, v_threshold: float = 1.0) -> None:
        super().__init__()
        self._fused = None
        self.hidden = hidden
        self.mlp1_lif = LIF(tau, v_threshold, inplace=False)
        self.mlp1_conv = nn.Conv1d(dim, hidden, 1)
        self.mlp1_bn = nn.BatchNorm1d(hidden)
        self.mlp2_lif = LIF(tau, v_threshold, inplace=True)
        self.mlp2_conv = nn.Conv1d(hidden, dim, 1)
        self.mlp2_bn = nn.BatchNorm1d(dim)

    def fuse_pairs(self) -> list[tuple[str, str]]:
        return [("mlp1_conv", "mlp1_bn"), ("mlp2_conv", "mlp2_bn")]

    def forward(self, x: Tensor) -> Tensor:
        T, B, N, C = x.shape
        x = self.mlp1_lif(x)
        x = self._cbn("mlp1_conv", "mlp1_bn", x.reshape(T * B * N, C)).view(T, B, N, self.hidden)
        x = self.mlp2_lif(x)
        return self._cbn("mlp2_conv", "mlp2_bn", x.reshape(T * B * N, self.hidden)).view(T, B, N, C)


SpikingBlock = Block
SpikingSSA = SSA
