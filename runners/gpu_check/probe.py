"""What the GPU check records about the machine and the kernels that ran on it.

    python -m runners.gpu_check.probe kernels.json   # flash, streaming sinkformer, lotformer's
                                               # compiled solver: the kernels each ran
    facts = device_facts()                     # device, driver, versions, commit

PyTorch's profiler lists the CUDA kernels of one warmed-up forward and backward of each
case; `last_backend` is what the mechanism itself says it ran.
"""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path

from results.files import write_json_atomic
from runners.provenance import provenance


def device_facts() -> dict[str, object]:
    """Device name, driver, torch / CUDA / cuDNN / Triton / Python versions, provenance."""
    import torch

    facts: dict[str, object] = {
        "device_name": torch.cuda.get_device_name(0),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version(),
        "python_version": platform.python_version(),
        "hostname": platform.node(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        import triton

        facts["triton_version"] = triton.__version__
    except ImportError:
        facts["triton_version"] = None
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        driver, memory = (x.strip() for x in smi.stdout.splitlines()[0].split(","))
        facts.update(driver=driver, memory_total=memory)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        facts.update(driver=None, memory_total=None)
    env = provenance(torch.device("cuda"))
    facts.update(git_commit=env["git_commit"], git_dirty=env["git_dirty"])
    return facts


def probe_backends(path: Path) -> int:
    """Which kernels ran, by PyTorch's profiler: flash (bf16, with and without a padding
    mask), the streaming sinkformer, lotformer's compiled solver. Written to `path`."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    import attention_zoo as zoo
    from attention_zoo import lotformer_plans

    def kernels(fn) -> list[str]:
        fn()  # warm-up: compilation and autotuning stay out of the listing
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        names = {e.name for e in prof.events() if e.device_type == DeviceType.CUDA}
        wanted = ("flash", "fmha", "attention", "cudnn", "triton", "sdpa", "mem_eff")
        return sorted(n for n in names if any(w in n.lower() for w in wanted))[:20]

    def case(name: str, n: int, masked: bool, **options) -> dict[str, object]:
        torch.manual_seed(0)
        attn = zoo.create(name, heads=8, head_dim=64, **options).cuda()
        q, k, v = (
            torch.randn(2, 8, n, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            for _ in range(3)
        )
        mask = None
        if masked:
            mask = torch.ones(2, n, dtype=torch.bool, device="cuda")
            mask[1, n // 2 :] = False

        def step() -> None:
            attn(q, k, v, padding_mask=mask).float().sum().backward()

        listed = kernels(step)
        return {
            "method": name,
            "options": options,
            "seq_len": n,
            "masked": masked,
            "last_backend": getattr(attn, "last_backend", None),
            "kernels": listed,
        }

    cases = [
        ("flash", 4096, False, {}),
        ("flash", 4096, True, {}),
        ("sinkformer", 4096, False, {"impl": "streaming"}),
        ("lotformer", 16384, False, {"compiled": "on"}),
    ]
    found = []
    for name, n, masked, options in cases:
        try:
            found.append(case(name, n, masked, **options))
        except Exception as exc:  # a probe that fails is reported, the others still run
            found.append({"method": name, "seq_len": n, "error": f"{type(exc).__name__}: {exc}"})
    compile_failed = list(lotformer_plans._COMPILE_FAILED)
    result = {"cases": found, "lotformer_compile_failed": compile_failed}
    write_json_atomic(path, result)
    for c in found:
        what = c.get("error") or f"last_backend={c['last_backend']} kernels={c['kernels']}"
        print(f"{c['method']} N={c['seq_len']} masked={c.get('masked')}: {what}")
    print(f"lotformer torch.compile: {'failed: ' + compile_failed[0] if compile_failed else 'ok'}")
    return 1 if any("error" in c for c in found) or compile_failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m runners.gpu_check.probe KERNELS.json")
    sys.exit(probe_backends(Path(sys.argv[1])))
