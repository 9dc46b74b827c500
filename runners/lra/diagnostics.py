"""Attention diagnostics during training: each layer's attention on a fixed validation batch,
summarised (attention_zoo.diagnostics) into the columns of a learning-curve point.

    probe = Probe(model, splits["val"], device)      # once per run
    columns = probe.columns()                        # at step 0 and at every validation

`train.diagnostics = true` in a profile turns it on (mini, recall and smoke ship with it on).
It changes what a run records, not what it trains: the model is evaluated under no_grad
with the global random state restored afterwards, so a run with diagnostics gives the
same weights as one without, and the switch is not part of the configuration's hash.

The batch: the first DIAGNOSTICS_EXAMPLES validation examples, the same at every point.
A layer's queries and keys are caught on their way into its zoo mechanism (a forward
pre-hook), and its `attention_matrix` is summarised over the real tokens. A mechanism
without `attention_matrix` (a plugin may lack it), or a sequence past MAX_TOKENS (the
rank's SVDs would cost more than the run), records why in `diag_skipped` and training goes on.
"""

from __future__ import annotations

import time

import torch

from attention_zoo.base import Attention
from attention_zoo.diagnostics import summarise
from lra.data import TaskData

DIAGNOSTICS_EXAMPLES = 16
# the rank's SVDs grow as N^3: at N = 1,024 (Pathfinder-32) one point took tens of seconds
# on 2 cores, more than a smoke run's 40 steps; to 512 a point stays under a second or two
MAX_TOKENS = 512
# the curve columns, one value per layer (diag_* apart)
COLUMNS = ("colsum_dev", "rowsum_dev", "entropy", "rank", "rank_max", "colsum_quantiles")


def _layers(model: torch.nn.Module) -> list[Attention]:
    return [m for m in model.modules() if isinstance(m, Attention)]


class Probe:
    """The diagnostics of one run: its model, its fixed batch and the hooks that catch q, k."""

    def __init__(self, model: torch.nn.Module, val: TaskData, device: torch.device) -> None:
        self.model, self.device = model, device
        self.layers = _layers(model)
        n = min(DIAGNOSTICS_EXAMPLES, len(val))
        self.inputs = val.inputs[:n]
        self.inputs2 = None if val.inputs2 is None else val.inputs2[:n]
        self.skipped = self._why_not()

    def _why_not(self) -> str | None:
        if not self.layers:
            return "no zoo attention module in the model"
        tokens = self.inputs.shape[1]
        if tokens > MAX_TOKENS:
            return (
                f"sequence of {tokens} tokens > {MAX_TOKENS}: the dense matrices' SVDs would "
                "cost more than the run"
            )
        return None

    def _caught(self) -> dict[int, list[tuple]]:
        """Run the batch once; each layer's (q, k, padding_mask) calls (a pair model calls
        every layer twice)."""
        caught: dict[int, list[tuple]] = {i: [] for i in range(len(self.layers))}

        def hook(index: int):
            def catch(_module, args, kwargs):
                q, k = args[0], args[1]
                caught[index].append((q.detach(), k.detach(), kwargs.get("padding_mask")))

            return catch

        handles = [
            layer.register_forward_pre_hook(hook(i), with_kwargs=True)
            for i, layer in enumerate(self.layers)
        ]
        try:
            x = self.inputs.to(self.device)
            x2 = None if self.inputs2 is None else self.inputs2.to(self.device)
            self.model(x, x2)
        finally:
            for handle in handles:
                handle.remove()
        return caught

    def columns(self) -> dict:
        """The curve columns: per-layer lists (module docstring), `diag_seconds` (what it
        cost) and `diag_skipped` (why not, or None)."""
        if self.skipped:
            return {"diag_skipped": self.skipped}
        t0 = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                caught = self._caught()
                per_layer = [self._summary(self.layers[i], calls) for i, calls in caught.items()]
        except NotImplementedError as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.skipped = f"{type(self.layers[0]).__name__} has no attention_matrix{detail}"
            return {"diag_skipped": self.skipped}
        finally:
            self.model.train(was_training)
        out: dict = {f"attn_{name}": [getattr(s, name) for s in per_layer] for name in COLUMNS}
        out["attn_colsum_quantiles"] = [list(q) for q in out["attn_colsum_quantiles"]]
        return {**out, "diag_seconds": time.perf_counter() - t0, "diag_skipped": None}

    @staticmethod
    def _summary(layer: Attention, calls: list[tuple]):
        matrices, masks = [], []
        for q, k, mask in calls:
            A = layer.attention_matrix(q, k, padding_mask=mask)
            matrices.append(A)
            masks.append(
                torch.ones(A.shape[0], A.shape[-1], dtype=torch.bool, device=A.device)
                if mask is None
                else mask
            )
        return summarise(torch.cat(matrices), torch.cat(masks))
