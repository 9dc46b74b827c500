"""One side of the paired gate: a process that imports one tree's zoo and times its calls.

    python -m runners.bench.worker --device cpu      # started by runners.bench.paired, not by hand

The gate starts two of these, one whose working directory holds the base commit's
`attention_zoo` (first on sys.path, so that one is imported) and one on the working tree, and
asks them in turn for one timed call each. Both build the call with this tree's measuring code
(`gate.prepare`), so only the zoo differs. The protocol is a JSON object a line: requests on
stdin, replies on the original stdout (anything the zoo prints goes to stderr instead):

    {"op": "setup", "case": ["softmax", 512, "forward"]} -> {"peak_mem_bytes": ..., "ms": ...}
    {"op": "time", "n": 3}                                -> {"ms": [9.6, 9.5, 9.8]}
    {"op": "reference", "n": 3}                           -> {"ms": [17.1, 17.0, 17.3]}

A request that raises answers {"error": "..."}; the gate turns it into one line and stops.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import traceback

import torch


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.bench.worker")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the zoo's prints must not enter the protocol

    import attention_zoo as zoo
    from runners.bench import gate

    device = torch.device(args.device)
    torch.set_num_threads(gate.THREADS)
    gate.cases_from_environment()  # imports what --import named, as the head's process did
    timer = gate._timer(device)
    reference = gate.reference_workload(device)
    call = None

    def handle(request: dict) -> dict:
        nonlocal call
        op = request["op"]
        if op == "setup":
            call = None
            gc.enable()
            gc.collect()
            method, seq_len, pass_ = request["case"]
            if method not in zoo.names():
                return {"missing": f"{method} is not in this tree's zoo"}
            attn, call, before = gate.prepare(gate.Case(method, seq_len, pass_), device)
            timer(call)  # warm-up: kernel selection, lazy allocations
            ms = timer(call)
            peak = gate.measure_memory(call, device, before).peak_bytes
            timer(call)  # the memory meter's call left the allocator cold: warm it again
            gc.collect()
            gc.disable()  # no cyclic collection inside a timed call
            return {
                "ms": ms,
                "peak_mem_bytes": int(peak),
                "backend": getattr(attn, "last_backend", None),
            }
        if op == "time":  # a block of consecutive calls
            return {"ms": [timer(call) for _ in range(int(request.get("n", 1)))]}
        if op == "reference":
            return {"ms": [timer(reference) for _ in range(int(request.get("n", 1)))]}
        raise ValueError(f"unknown request {op!r}")

    hello = {
        "zoo": str(os.path.dirname(zoo.__file__)),
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
    }
    replies.write(json.dumps(hello) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            reply = handle(request)
        except Exception as exc:  # one line back to the gate, the traceback to stderr
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
