"""Can DADA's sub-policy weights learn in a search of the quick budget? The signal
one hypergradient step gives them, measured per sub-policy.

Each step of DADA's search informs the weights about the one sub-policy it sampled:
the score-function estimator (``estimator: relax``) multiplies d log p(k) by the cost
c_k = -lr v . g_k (v: the search-val gradient at the one-step unrolled weights; g_k:
the training gradient on the batch augmented by sub-policy k), and the Gumbel
estimator turns a first-order proxy of the same quantity into its gradient. A weight
can rise above uniform for a reason, rather than by chance, only when its
sub-policy's expected cost stands out from the others' by more than the noise of the
few samples ("pulls") it gets: 310 steps over 120 sub-policies on mnist_rot give each
about 2.6.

The script builds the search's model as the search has it half-way (``--warm`` steps
of its SGD on search-train batches, each augmented by a uniformly drawn sub-policy
of the starting policy, as the search's own model step; ``--clean-warm``: on clean
batches instead), then pulls every sub-policy ``--pulls`` times (fresh search-train
and search-val batches, gates drawn with probability 0.5, every level at ``--level``;
0.5 = DADA's start, the identity of every signed op) with the method's own
``sample_costs``, and prints:

- sigma_within, the noise of one pull, and sigma_between, the spread of the
  sub-policies' expected costs (standard deviation of the per-sub-policy means with
  the pull noise subtracted);
- the pulls per sub-policy, and the search steps (times the number of
  sub-policies), at which a sub-policy one sigma_between better than average would
  stand 3 standard errors out: 9 (sigma_within / sigma_between)^2 pulls;
- the sub-policies and ops with the highest and lowest mean cost.

    python benchmarks/dada_signal.py                        # mnist_rot, levels 0.5
    python benchmarks/dada_signal.py --level 0.75           # every level at half strength
    python benchmarks/dada_signal.py --clean-warm --pulls 8 # a model that never saw the policy
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.threads import calm_openmp, set_threads  # noqa: E402

calm_openmp()

from bench.api import Split  # noqa: E402
from bench.data import split_indices  # noqa: E402
from bench.registry import load_registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist_rot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm", type=int, default=155, help="SGD steps of the search model before measuring")
    parser.add_argument("--pulls", type=int, default=16, help="cost samples per sub-policy")
    parser.add_argument("--clean-warm", action="store_true", help="warm the model on clean batches")
    parser.add_argument("--level", type=float, default=0.5, help="every level of the policy (0.5: DADA's start)")
    args = parser.parse_args()
    set_threads(1)
    registry = load_registry()
    method = registry.method("dada")
    dada = sys.modules[method.cls.__module__]
    hp = method.defaults_for("quick")
    task = registry.task(args.task).cls()
    data = task.load("quick", None, seed=args.seed)
    torch.manual_seed(args.seed)

    n = min(int(hp["search_size"]), len(data.train))
    train_idx, val_idx = split_indices(len(data.train), (n // 2, n - n // 2), args.seed)
    search_train = Split(data.train.x[train_idx], data.train.y[train_idx])
    search_val = Split(data.train.x[val_idx], data.train.y[val_idx])
    generator = torch.Generator().manual_seed(args.seed)
    batch = int(hp["search_batch_size"])
    train_stream = dada.validation_stream(search_train, batch, generator)  # endless reshuffled passes
    val_stream = dada.validation_stream(search_val, batch, generator)

    policy = dada.DadaPolicy(dada.enumerate_sub_policies(task.augmentation_space), task.augmentation_kwargs,
                             hp["temperature"])
    with torch.no_grad():
        policy.magnitudes.fill_(args.level)

    def gates_of(k: int, n: int) -> torch.Tensor:
        """(n, 2) 0/1 gates of sub-policy k, drawn with its probabilities."""
        return (torch.rand(n, dada.OPS_PER_SUB_POLICY) < policy.probabilities[k].detach()).float()

    model = task.make_model("quick", 1.0, None)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=hp["search_lr"], momentum=hp["search_momentum"],
                                weight_decay=hp["search_weight_decay"])
    for _ in range(args.warm):  # the search's model step
        x, y = next(train_stream)
        k = int(torch.randint(len(policy.sub_policies), ()))
        gates = gates_of(k, len(x))
        if not args.clean_warm:
            with torch.no_grad():
                x = policy.apply_sub_policy(x, k, lambda stage: gates[:, stage])
        optimizer.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
        optimizer.step()

    k_count = len(policy.sub_policies)
    costs = torch.zeros(k_count, args.pulls, dtype=torch.float64)
    started = time.perf_counter()
    for pull in range(args.pulls):
        for k in range(k_count):
            x, y = next(train_stream)
            x_val, y_val = next(val_stream)
            cost, *_ = dada.sample_costs(model, optimizer, policy, task, x, y, x_val, y_val, lambda t: t, k,
                                         gates_of(k, len(x)))
            costs[k, pull] = float(cost.sum())
    seconds = time.perf_counter() - started

    means, variances = costs.mean(1), costs.var(1)
    within = float(variances.mean().sqrt())
    between_sq = float(means.var()) - float(variances.mean()) / args.pulls
    between = math.sqrt(max(between_sq, 0.0))
    warm = "clean" if args.clean_warm else "policy-augmented"
    print(f"DADA cost signal: {args.task}, seed {args.seed}, search model after {args.warm} steps on {warm} "
          f"batches, levels {args.level}, {k_count} sub-policies x {args.pulls} pulls ({seconds:.0f} s)\n")
    print(f"| sigma_within (one pull) | sigma_between (sub-policies' expected costs) | ratio | "
          f"pulls per sub-policy for 3 SE | search steps for 3 SE |")
    print("|---|---|---|---|---|")
    if between > 0:
        pulls = 9 * (within / between) ** 2  # the 1-sigma-better sub-policy 3 SE above the mean
        steps = f"{pulls * k_count:,.0f}"  # one sub-policy sampled per step
        print(f"| {within:.3g} | {between:.3g} | {between / within:.3f} | {pulls:,.0f} | {steps} |")
    else:
        print(f"| {within:.3g} | 0 (means spread no more than the pull noise) | 0 | inf | inf |")
    print(f"\nmean cost over every sample {float(costs.mean()):.3g}")
    order = torch.argsort(means, descending=True).tolist()
    se = within / math.sqrt(args.pulls)
    print(f"\nper-sub-policy mean cost, standard error of one mean {se:.3g}:")
    print("highest:", ", ".join(f"{'+'.join(policy.sub_policies[k])} {float(means[k]):.3g}" for k in order[:6]))
    print("lowest: ", ", ".join(f"{'+'.join(policy.sub_policies[k])} {float(means[k]):.3g}" for k in order[-6:]))
    ops = sorted({o for sp in policy.sub_policies for o in sp})
    by_op = {o: [k for k, sp in enumerate(policy.sub_policies) if o in sp] for o in ops}
    print("\nper op: mean cost of the sub-policies holding it (standard error):")
    for o in sorted(ops, key=lambda o: -float(means[by_op[o]].mean())):
        ks = by_op[o]
        print(f"  {o:16s} {float(means[ks].mean()):+.4f} ({within / math.sqrt(args.pulls * len(ks)):.4f})")
    z = (means - means.mean()) / se
    print(f"largest |mean - average| / SE: {float(z.abs().max()):.2f} (pure noise over {k_count} "
          f"sub-policies: about {math.sqrt(2 * math.log(k_count)):.1f})")


if __name__ == "__main__":
    main()
