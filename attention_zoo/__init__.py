"""attention_zoo: attention mechanisms behind one interface.

    import attention_zoo as zoo
    zoo.names()                                   # ['flash', 'lotformer', 'performer', ...]
    attn = zoo.create("lotformer", heads=8, head_dim=64, r=32)
    out = attn(q, k, v, padding_mask=None)        # (B, H, N, D) -> (B, H, N, D)
    A = attn.attention_matrix(q, k)               # dense (B, H, N, N), small N only
    zoo.info("lotformer").complexity             # 'linear'

A built-in mechanism is one file here with an `@register(...)` class, plus its import
below. A mechanism from elsewhere registers the same way in its own package and declares
an entry point in the group `attention_zoo.mechanisms` (found the first time the zoo is
asked), or is loaded with `import_plugin` (the runners' `--import MODULE_OR_FILE`).
"""

# registrations: importing a mechanism's module adds it to the zoo
from attention_zoo import flash, lotformer, performer, sinkformer, softmax  # noqa: F401
from attention_zoo.base import Attention
from attention_zoo.plugins import import_plugin
from attention_zoo.registry import MechanismInfo, create, info, names, register

__all__ = ["Attention", "MechanismInfo", "create", "import_plugin", "info", "names", "register"]
