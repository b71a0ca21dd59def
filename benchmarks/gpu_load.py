"""Keep the GPU busy for a while, so that a capture records a working GPU. (Needs PyTorch and CUDA.)

    python benchmarks/gpu_load.py [--seconds 30]

bf16 matrix products of 8192x8192 on GPU 0, back to back, until the time is up; prints how many ran.
Used by device_check.sh to capture the same GPU idle and under load.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < end:
        for _ in range(50):
            a @ b
        torch.cuda.synchronize()
        n += 50
    print(f"{n} matrix products in {args.seconds:.0f} s")


if __name__ == "__main__":
    main()
