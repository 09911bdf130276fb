"""Whether bf16 autocast can run natively on this machine (`train.bf16: auto`)."""

from __future__ import annotations


def bf16_supported() -> bool:
    """True where bf16 autocast runs natively: a bf16 GPU, or a CPU with AVX-512 BF16 or AMX."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, check, lambda: False)() for check in checks)
