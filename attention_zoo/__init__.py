"""attention_zoo: attention mechanisms behind one interface.

    import attention_zoo as zoo
    zoo.names()                                   # ['flash', 'lotformer', 'performer', ...]
    attn = zoo.create("lotformer", heads=8, head_dim=64, r=32)
    out = attn(q, k, v, padding_mask=None)        # (B, H, N, D) -> (B, H, N, D)
    A = attn.attention_matrix(q, k)               # dense (B, H, N, N), small N only
    zoo.info("lotformer").complexity             # 'linear'

A new mechanism is one file here with an `@register(...)` class, plus its import below.
"""

# registrations: importing a mechanism's module adds it to the zoo
from attention_zoo import flash, lotformer, performer, sinkformer, softmax  # noqa: F401
from attention_zoo.base import Attention
from attention_zoo.registry import MechanismInfo, create, info, names, register

__all__ = ["Attention", "MechanismInfo", "create", "info", "names", "register"]
