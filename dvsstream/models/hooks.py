"""Whether calling a module would run forward hooks.

The models' fast paths call a module's kernel directly instead of through
``nn.Module.__call__`` (the batch norms of :mod:`~dvsstream.models.fusion`, the LIF and
pool in one pass, :mod:`~dvsstream.models.bn_lif`'s node); they apply only where no
forward hook would be skipped, so that taps, meters and the user's hooks see every call.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module_hooks

__all__ = ["hooked"]


def hooked(m: nn.Module) -> bool:
    """Whether calling ``m`` would run forward hooks (then it must be called as a module)."""
    return bool(
        m._forward_hooks or m._forward_pre_hooks
        or _module_hooks._global_forward_hooks or _module_hooks._global_forward_pre_hooks
    )
