"""Optimizer-step time of every registered family on the charlm example, relative to AdamW.

Usage (from the repository root)::

    python benchmarks/step_time.py                      # all families, charlm defaults
    python benchmarks/step_time.py --families 'adam*,muon' --steps 100 --threads 2

All families are measured in ONE process, on the same model size and the same batches. Each family
gets its own copy of the model (same initial weights) and the optimizer tunekit builds for it (its
grouping rule, defaults and the centre of its LR range). The steps run round-robin (a few steps of
each family in turn, ``--rounds`` times) so load from other processes falls on all of them alike.
Only ``optimizer.step()`` is timed, after ``--warmup`` untimed steps per family (state allocation,
lazy initialisation, Muon/SOAP set-up); forward and backward are run but not counted.
"""

from __future__ import annotations

import argparse
import fnmatch
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CENTRE_LR = 3e-3  # the default prior's AdamW LR


def build(family, model, max_steps: int):
    """What ``tunekit.training.optimization.create_optimizer`` builds, with the step budget passed on."""
    from tunekit.training.optimization import instantiate
    from tunekit.training.param_groups import group_parameters

    hparams = family.resolve({hp: r.centre(CENTRE_LR) for hp, r in family.lr_params.items()})
    if family.schedule_free:
        hparams["warmup_steps"] = max(1, max_steps // 20)
    optimizer = instantiate(family, group_parameters(family.grouping, model, hparams), hparams, max_steps=max_steps)
    if family.schedule_free:
        optimizer.train()
    return optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="*", help="comma-separated globs over the registry (default: all)")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per family")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per family first")
    parser.add_argument("--rounds", type=int, default=6, help="round-robin rounds the timed steps are split into")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared box)")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from tunekit.search_spaces.catalog import list_families
    from tunekit.training.script import ScriptSpec, load_script

    torch.set_num_threads(args.threads)
    patterns = [p.strip() for p in args.families.split(",")]
    families = [f for f in list_families() if any(fnmatch.fnmatchcase(f.name, p) for p in patterns)]
    if not any(f.name == "adamw" for f in families):
        families = [f for f in list_families() if f.name == "adamw"] + families

    script = load_script(ScriptSpec(str(REPO / "examples" / "charlm.py")))
    data = script.build_data(args.batch_size)
    data.setup("fit")
    loader = iter(data.train_dataloader())
    batches = [next(loader) for _ in range(8)]

    runs = []
    for family in families:
        torch.manual_seed(0)
        model = script.build_model()
        runs.append((family, model, build(family, model, args.warmup + args.steps)))
    n_params = sum(p.numel() for p in runs[0][1].parameters())

    def train_step(model, optimizer, i: int, timings: list | None) -> None:
        x, y = batches[i % len(batches)]
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        start = time.perf_counter()
        optimizer.step()
        if timings is not None:
            timings.append(time.perf_counter() - start)

    for _, model, optimizer in runs:
        for i in range(args.warmup):
            train_step(model, optimizer, i, None)
    timings: dict[str, list[float]] = {f.name: [] for f, _, _ in runs}
    per_round = -(-args.steps // args.rounds)
    for r in range(args.rounds):
        for family, model, optimizer in runs:
            for i in range(per_round):
                train_step(model, optimizer, args.warmup + r * per_round + i, timings[family.name])

    base = statistics.mean(timings["adamw"])
    print(
        f"charlm ({n_params / 1e3:.0f}k parameters, batch {args.batch_size}), torch {torch.__version__}, "
        f"{args.threads} thread(s); {per_round * args.rounds} timed steps per family after {args.warmup} untimed"
    )
    header = (
        f"{'family':<20} {'implementation':<32} {'default LR':>10} {'LR vs AdamW':>11} {'ms/step':>8} {'vs AdamW':>8}"
    )
    print(header)
    print("-" * len(header))
    for family, _, _ in runs:
        mean = statistics.mean(timings[family.name])
        ratio = f"{family.lr_ratio:g}x" if family.lr_ratio is not None else "own scale"
        print(
            f"{family.name:<20} {family.implementation:<32} {family.defaults['lr']:>10.3g} {ratio:>11} "
            f"{mean * 1e3:>8.3f} {mean / base:>7.2f}x"
        )


if __name__ == "__main__":
    main()
