"""How often does a 95 % interval over n seeds contain the true mean? The measurement
behind the choice of interval in ``bench/stats.py`` (t below 30 values, BCa from 30).

    python benchmarks/interval_coverage.py [--trials 1000] [--ns 2,3,5,10,20]

For each n and each distribution of paired differences (normal; exponential, i.e.
skewed), draws ``--trials`` samples of n values with a known mean and counts how often
each interval contains it: Student's t, the percentile bootstrap and BCa
(``scipy.stats.bootstrap``, 1,999 resamples). An interval scipy cannot compute (NaN)
counts as a miss. Prints a Markdown table of coverage (target 0.95) and mean width.
"""
from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
from scipy import stats


def t_interval(x: np.ndarray) -> tuple[float, float]:
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def bootstrap_interval(x: np.ndarray, method: str, rng: np.random.Generator) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = stats.bootstrap((x,), np.mean, method=method, n_resamples=1999, rng=rng).confidence_interval
    return ci.low, ci.high


DISTRIBUTIONS = {"normal": (lambda rng, n: rng.normal(0.0, 1.0, n), 0.0),
                 "exponential (skewed)": (lambda rng, n: rng.exponential(1.0, n), 1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--ns", default="2,3,5,10,20")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| distribution | n | interval | coverage | mean width |")
    print("|---|---|---|---|---|")
    for name, (draw, true_mean) in DISTRIBUTIONS.items():
        for n in (int(v) for v in args.ns.split(",")):
            makers = {"t": t_interval, "percentile bootstrap": lambda x: bootstrap_interval(x, "percentile", rng),
                      "BCa bootstrap": lambda x: bootstrap_interval(x, "BCa", rng)}
            for label, make in makers.items():
                hits, widths = 0, []
                for _ in range(args.trials):
                    low, high = make(draw(rng, n))
                    if np.isfinite(low) and np.isfinite(high):
                        hits += low <= true_mean <= high
                        widths.append(high - low)
                width = f"{np.mean(widths):.2f}" if widths else "–"
                print(f"| {name} | {n} | {label} | {hits / args.trials:.3f} | {width} |")


if __name__ == "__main__":
    main()
