"""The GPU check of issue #11 in one call: a search on the GPU and its steps/s against a plain loop there.

Usage (from the repository root, on a machine with a CUDA GPU)::

    python benchmarks/gpu_check.py                   # about 2-3 minutes on one GPU
    python benchmarks/gpu_check.py --steps 600 --rounds 3

It runs ``benchmarks/overhead.py``'s four methods on ``cuda`` with ``bf16-mixed`` precision and a
schedule-free family (``schedulefree_adamw``, facebookresearch/schedule_free), on
``examples/charlm.py`` at its default size, interleaved in each round:

- a plain PyTorch loop (``torch.autocast(bfloat16)``, the optimizer switched to eval for validation);
- a plain Lightning ``Trainer.fit(accelerator="gpu", precision="bf16-mixed")``;
- ``run_fit``, a trial's body;
- ``tunekit search --trials 4 --accelerator gpu --precision bf16-mixed --optimizers
  schedulefree_adamw`` end to end (``--jobs 1``, the default).

It prints the GPU, the steps/s table against the plain loop, the fixed overhead per trial of the
running search, and what the last search stored (each trial's state, value, family, precision).
Without a CUDA GPU it runs nothing and exits 2 with one sentence saying so.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # overhead.py, beside this file

from overhead import Setting, load_charlm, measure, parser  # noqa: E402

GPU = Setting(accelerator="gpu", precision="bf16-mixed", family="schedulefree_adamw", schedule="none")


def refuse_without_cuda() -> None:
    """Exit 2 with one sentence when this machine cannot run the check."""
    import torch

    if not torch.cuda.is_available():
        refuse(
            "benchmarks/gpu_check.py needs a CUDA GPU, and torch.cuda.is_available() is False here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); nothing was run, run it on a GPU machine."
        )
    if not torch.cuda.is_bf16_supported():
        refuse(
            f"benchmarks/gpu_check.py checks bf16-mixed, which {torch.cuda.get_device_name()} does not support; "
            "nothing was run, run it on an Ampere or newer GPU."
        )


def refuse(sentence: str) -> None:
    print(sentence, file=sys.stderr)
    sys.exit(2)  # bad input: the machine, not the check, is wrong


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.set_defaults(steps=300)
    args = arguments.parse_args()
    refuse_without_cuda()
    import torch

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print("\n".join(measure(load_charlm(args.threads), args, GPU)))


if __name__ == "__main__":
    main()
