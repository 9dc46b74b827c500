"""Dense bf16 matrix peaks of known GPUs, for the fraction of peak the reports state.

    peak_tflops("NVIDIA H200")     # 989.5
    peak_tflops("Intel Xeon ...")  # None: no fraction is stated

Dense means without 2:4 structured sparsity: the datasheets print the sparse figure first,
twice the dense one. Sources (vendor datasheets, SXM parts unless named):
- H100 and H200 SXM: 1,979 TFLOP/s bf16 with sparsity (NVIDIA H100 Tensor Core GPU
  datasheet; NVIDIA H200 Tensor Core GPU datasheet), so 989.5 dense;
- H100 NVL and H200 NVL: 1,671 with sparsity (same datasheets), 835.5 dense;
- H100 PCIe: 1,513 with sparsity (H100 datasheet), 756.5 dense;
- A100 (40 and 80 GB): 312 dense (NVIDIA A100 Tensor Core GPU datasheet);
- L40S: 362.05 dense (NVIDIA L40S datasheet); L4: 121 dense, 242 with sparsity (NVIDIA L4
  datasheet); A10: 125 dense (NVIDIA A10 datasheet).
A datasheet peak is a ceiling no kernel reaches: on one H200 here an 8192^3 bf16 matrix
product through PyTorch ran at 769-798 TFLOP/s (the lent machine's notes, 2026-11).
"""

from __future__ import annotations

import re

# first match wins: the more specific names come before the names they contain
DENSE_BF16_TFLOPS: list[tuple[str, float]] = [
    (r"\bH200 NVL\b", 835.5),
    (r"\bH200\b", 989.5),
    (r"\bH100 NVL\b", 835.5),
    (r"\bH100 PCIe\b", 756.5),
    (r"\bH100\b", 989.5),
    (r"\bA100\b", 312.0),
    (r"\bL40S\b", 362.05),
    (r"\bL4\b", 121.0),
    (r"\bA10\b", 125.0),
]


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of the GPU `device_name` names (torch's name), None if unknown."""
    for pattern, peak in DENSE_BF16_TFLOPS:
        if re.search(pattern, str(device_name)):
            return peak
    return None
