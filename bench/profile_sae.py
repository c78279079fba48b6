#!/usr/bin/env python
"""Where one TopK SAE training step spends its time, phase by phase.

Trains latentcore.TopKSAE on planted sparse signals (bench_sparse.py's data:
--atoms unit-norm atoms, --planted-k of them per signal, noise 0.01) for
--steps timed steps after one untimed warm-up step, with the private phase
hook of latentcore.sae (off by default) recording the wall time of each
phase of every step. Then, to split the fused encoder (one kernel computes
the GEMM block by block and selects from each block at once), it times the
same work in pieces on one batch: the GEMM alone in numpy's SGEMM on the same
threads, and the top-k selection alone on those pre-activations
(select_topk_rows, the same selection code); the GEMM's GFLOP/s against
numpy's tells how efficient the encoder's blocking is.

--dead-after sets TopKSAE's dead_after (samples): small values make many
latents dead, so that the AuxK phase has work (by default nothing is dead in
the first 1000 * latents / k samples).

    python bench/profile_sae.py --dims 768 --latents 16384 --k 64 --steps 3
    python bench/profile_sae.py --dims 2048 --latents 65536 --k 64 --steps 2
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from common import planted

# Phases as the hook names them, with what they cover (in step order).
PHASES = {
    "batch": "next batch (gather of the batch's rows)",
    "prepare": "input checks (finite, shape)",
    "centre": "x - pre_bias",
    "encode": "encoder: GEMM + top-k selection (fused kernel) + ReLU",
    # the step before the fused kernels
    "decode": "sparse decoder forward",
    "loss": "error, FVU, output gradient",
    "zero grads": "zeroing the gradient arrays",
    "backward": "sparse decoder backward (decoder, encoder, bias gradients)",
    # the fused step
    "decode + loss": "sparse decoder forward + error + FVU + output gradient (fused)",
    "dead latents": "firing counters, dead latents",
    "auxk": "AuxK (encode dead latents, decode; before the fusion also its backward)",
    "pre_bias grad": "pre_bias gradient",
    "tangent": "decoder tangent projection",
    "adam": "Adam over all parameters",
    "renorm": "decoder renormalisation",
    "update": "backward + AuxK backward + tangent projection + Adam + renormalisation (fused)",
    "history": "counters, history",
    "progress": "progress bar, loop",
}


class PhaseClock:
    """The hook: wall time since the previous mark, per phase and step (the
    steps before `skip` marks of "batch" are not kept)."""

    def __init__(self, skip: int):
        self.steps: list[dict[str, float]] = []
        self.batches = 0
        self.skip = skip
        self.last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        if phase == "batch":
            self.batches += 1
            if self.batches > self.skip:
                self.steps.append(defaultdict(float))
        if self.steps:
            self.steps[-1][phase] += now - self.last
        self.last = time.perf_counter()

    def per_step(self) -> dict[str, float]:
        """Each phase's median over the steps: a step that another process
        slowed down moves it less than the mean."""
        phases = dict.fromkeys(phase for step in self.steps for phase in step)
        return {phase: float(np.median([step.get(phase, 0.0) for step in self.steps])) for phase in phases}


def markdown(rows, total: float) -> str:
    lines = ["| phase | seconds / step (median) | share |", "| --- | ---: | ---: |"]
    for name, seconds in rows:
        share = f"{100 * seconds / total:.1f}%" if total > 0 and not name.startswith("  ") else ""
        lines.append(f"| {name} | {seconds:.4f} | {share} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dims", type=int, default=768)
    p.add_argument("--latents", type=int, default=16384)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    p.add_argument("--atoms", type=int, default=1024, help="planted atoms of the data")
    p.add_argument("--planted-k", type=int, default=16, help="planted atoms per signal")
    p.add_argument("--dead-after", type=int, default=None, help="TopKSAE's dead_after (samples)")
    p.add_argument("--no-split", action="store_true", help="skip the GEMM / selection split of the encoder")
    p.add_argument("--split-repeats", type=int, default=2, help="runs of each piece of the split (the best kept)")
    args = p.parse_args()

    import latentcore
    from latentcore import _backend, _core, sae as sae_module

    n = args.batch * (args.steps + 1)
    X, _, _ = planted(n, args.dims, args.atoms, args.planted_k)
    model = latentcore.TopKSAE(args.latents, args.k, batch_size=args.batch, n_epochs=1, shuffle=False,
                               random_state=0, n_jobs=args.threads, dead_after=args.dead_after)
    clock = PhaseClock(skip=1)
    sae_module._phase_hook = clock
    try:
        with threadpool_limits(args.threads):
            start = time.perf_counter()
            model.fit(X)
            wall = time.perf_counter() - start
    finally:
        sae_module._phase_hook = None
    steps = len(clock.steps)
    per_step = clock.per_step()
    total = sum(per_step.values())
    rows = [(f"{phase}: {PHASES.get(phase, phase)}", per_step[phase]) for phase in PHASES if phase in per_step]
    rows += [(phase, seconds) for phase, seconds in per_step.items() if phase not in PHASES]

    flops = 2.0 * args.batch * args.dims * args.latents
    touched = None
    if not args.no_split and "encode" in per_step:
        # The encoder's work in pieces, on the last batch, with the trained
        # parameters; each piece's best of --split-repeats runs.
        x_centered = X[-args.batch:] - model.pre_bias_
        encoder, bias = model.encoder_, model.encoder_bias_
        score = np.empty((args.batch, args.k), np.float32)
        index = np.empty((args.batch, args.k), np.int32)
        t_gemm = t_select = t_fused = math.inf
        for _ in range(args.split_repeats):
            with threadpool_limits(args.threads):
                t0 = time.perf_counter()
                pre = x_centered @ encoder.T
                t_gemm = min(t_gemm, time.perf_counter() - t0)
            t0 = time.perf_counter()
            _core.select_topk_rows(pre, True, score, index, bias, args.threads)
            t_select = min(t_select, time.perf_counter() - t0)
            del pre
            with _backend.single_threaded_blas():
                t0 = time.perf_counter()
                _core.sae_topk_encode(x_centered, encoder, bias, _backend.scipy_sgemm(), score, index, args.threads)
                t_fused = min(t_fused, time.perf_counter() - t0)
        touched = np.unique(index[score > 0]).size / args.latents
        rows += [
            (f"  encoder kernel alone (sae_topk_encode): {flops / t_fused / 1e9:.0f} GFLOP/s", t_fused),
            (f"  GEMM alone, numpy sgemm {args.threads} threads: {flops / t_gemm / 1e9:.0f} GFLOP/s", t_gemm),
            ("  top-k selection alone (select_topk_rows on the GEMM's output)", t_select),
        ]
    print(f"### TopK SAE step profile: {args.dims} dims x {args.latents} latents, k={args.k}, batch {args.batch}, "
          f"{args.threads} threads, {steps} steps after 1 warm-up\n")
    print(markdown(rows, total))
    print(f"\nsum of the phases' medians {total:.4f} s/step ({args.batch / total:,.0f} samples/s); whole fit {wall:.2f} s "
          f"for {args.steps + 1} steps; the encoder GEMM alone is {flops / 1e9:.1f} GFLOP a step; "
          f"dead fraction at the end {model.history_['dead'][-1]:.3f}"
          + ("" if touched is None else f"; latents the last batch fires: {100 * touched:.1f}%"))


if __name__ == "__main__":
    main()
