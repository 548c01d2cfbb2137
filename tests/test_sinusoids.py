"""The sinusoids task (AugNet expressivity study): generated data, splits, symmetry, models."""
from __future__ import annotations

import math
from dataclasses import replace

import torch
from scipy import stats

from bench.api import Method, RunContext, Split, TaskData
from bench.config import RunConfig
from bench.progress import Progress
from bench.registry import load_registry
from bench.timing import PhaseTimer
from bench.training import fit
from datasets.sinusoids import FREQUENCIES_HZ, SFREQ

Sinusoids = load_registry().task("sinusoids").cls


def peak_frequency(x: torch.Tensor) -> torch.Tensor:
    """Frequency (Hz) of the largest spectral peak of each (N, 1, T) signal."""
    spectrum = torch.fft.rfft(x.squeeze(1).double(), dim=-1).abs()
    spectrum[:, 0] = 0
    return torch.fft.rfftfreq(x.shape[-1], d=1 / SFREQ)[spectrum.argmax(-1)]


def test_classes_are_sinusoids_near_their_frequency_and_splits_are_stratified() -> None:
    data = Sinusoids().load("quick", None, seed=3)
    assert data.train.x.shape == (400, 1, 1000) and len(data.test) == 200 and len(data.val) == 200
    for split in (data.train, data.val, data.test):
        assert torch.bincount(split.y).tolist() == [len(split) // 4] * 4
        peaks = peak_frequency(split.x)
        expected = torch.tensor(FREQUENCIES_HZ, dtype=peaks.dtype)[split.y]
        assert (peaks - expected).abs().max() <= 0.5 + 0.1  # shift U(+-0.5 Hz), 0.1 Hz bins


def test_generation_is_deterministic_per_seed() -> None:
    a, b, c = (Sinusoids().load("smoke", None, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)


def test_reference_shift_moves_frequencies_by_at_most_half_a_hertz_and_fixed_applies_to_about_half() -> None:
    torch.manual_seed(0)
    t = torch.arange(1000) / SFREQ
    x = torch.sin(2 * torch.pi * 4.0 * t).repeat(400, 1, 1)
    shifted = Sinusoids().reference_transform(x)
    moved = (peak_frequency(shifted) - 4.0).abs()
    assert moved.max() <= 0.5 + 1e-6 and moved.mean() > 0.15  # uniform in +-0.5 Hz: mean |shift| 0.25
    changed = (Sinusoids().fixed_augment(x) - x).abs().amax(dim=(1, 2)) > 1e-3
    assert 0.35 < changed.float().mean() < 0.65


def test_width_scales_neurons_and_depth_adds_hidden_layers() -> None:
    def n_params(width: float, depth: int | None) -> int:
        return sum(p.numel() for p in Sinusoids().make_model("quick", width, depth).parameters())

    assert n_params(0.5, None) == 1000 + 1 + 4 * 1 + 4  # one neuron: the paper's smallest model
    assert n_params(1.0, 1) == 2 * 1001 + 4 * 2 + 4
    assert n_params(1.0, 3) == n_params(1.0, 1) + 2 * (2 * 2 + 2)
    model = Sinusoids().make_model("quick", 2.0, 2)
    assert model(torch.randn(5, 1, 1000)).shape == (5, 4) and model.embed(torch.randn(5, 1, 1000)).shape == (5, 4)


def fit_sinusoids(x: torch.Tensor, centre_hz: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example least-squares sinusoid near ``centre_hz`` (+-0.6 Hz): frequency,
    amplitude, phase in [0, 2 pi) and the residual std (the noise)."""
    signal = x.squeeze(1).double()
    t = torch.arange(signal.shape[-1], dtype=torch.float64) / SFREQ

    def best(grid: torch.Tensor) -> torch.Tensor:  # (N, G) -> the grid frequency of largest projection
        angle = 2 * torch.pi * grid[..., None] * t  # (N or 1, G, T)
        power = torch.einsum("nt,ngt->ng", signal, torch.sin(angle).expand(len(signal), -1, -1)) ** 2 \
            + torch.einsum("nt,ngt->ng", signal, torch.cos(angle).expand(len(signal), -1, -1)) ** 2
        return grid.expand(len(signal), -1).gather(1, power.argmax(1, keepdim=True)).squeeze(1)

    coarse = best(torch.arange(centre_hz - 0.6, centre_hz + 0.6, 0.005, dtype=torch.float64)[None])
    freq = best(coarse[:, None] + torch.arange(-0.005, 0.005, 0.0002, dtype=torch.float64))
    design = torch.stack([torch.sin(2 * torch.pi * freq[:, None] * t), torch.cos(2 * torch.pi * freq[:, None] * t)], -1)
    coef = torch.linalg.lstsq(design, signal[..., None]).solution.squeeze(-1)  # a sin + b cos = A sin(. + phi)
    residual = signal - (design @ coef[..., None]).squeeze(-1)
    return freq, coef.norm(dim=1), torch.atan2(coef[:, 1], coef[:, 0]) % (2 * torch.pi), residual.std(dim=1)


def test_generator_statistics_match_the_official_generator() -> None:
    """generate_data.make_dataset as train_augnet.py calls it: frequency f_c + U(-0.5,
    0.5) Hz, amplitude 1, phase U(0, 4 pi / f_c) rad, white noise of std 0.5."""
    data = Sinusoids().load("paper", None, seed=5)
    x = torch.cat([data.train.x, data.val.x, data.test.x])
    y = torch.cat([data.train.y, data.val.y, data.test.y])
    shifts = []
    for c, f in enumerate(FREQUENCIES_HZ):
        freq, amplitude, phase, noise = fit_sinusoids(x[y == c], f)
        shifts.append(freq - f)
        assert abs(amplitude.mean().item() - 1.0) < 0.03 and abs(noise.mean().item() - 0.5) < 0.01
        top = 4 * math.pi / f  # the phase range: two periods of the class frequency, in radians
        if top < 2 * math.pi - 0.5:  # (at 2 Hz it is the whole circle)
            phase = (phase + 0.25) % (2 * math.pi) - 0.25  # a phase of 0 may be estimated as -0.01
            assert phase.min().item() > -0.1 and phase.max().item() < top + 0.1
        assert stats.kstest((phase.numpy() % top) / top, "uniform").pvalue > 1e-3
    shifts = torch.cat(shifts).numpy()
    assert shifts.min() > -0.51 and shifts.max() < 0.51
    assert stats.kstest((shifts + 0.5) / 1.0, "uniform").pvalue > 1e-3  # U(-0.5, 0.5) Hz, not +-1 Hz nor normal


class RecordingMethod(Method):
    """The harness's plain method, remembering the labels of each training batch."""
    name = "recording"

    def __init__(self, ctx, model, hparams):
        super().__init__(ctx, model, hparams)
        self.seen: list[list[int]] = []

    def training_loss(self, x, y):
        self.seen.append(y.tolist())
        return super().training_loss(x, y)


def batch_orders(shuffle: bool) -> list[list[list[int]]]:
    """The batches (as label lists) of each of 3 epochs of ``fit`` on 12 examples, batch 4."""
    task = Sinusoids()
    x, y = torch.randn(12, 1, 1000), torch.arange(12) % 4
    profile = replace(task.profile("paper"), epochs=3, batch_size=4, shuffle=shuffle)
    data = TaskData(Split(x, y), None, Split(x, y))
    model = task.make_model("paper", 1.0, 1)
    ctx = RunContext(RunConfig("sinusoids", "paper", "recording"), task, profile, data, torch.device("cpu"),
                     lambda: task.make_model("paper", 1.0, 1), Progress(enabled=False))
    method = RecordingMethod(ctx, model, {})
    fit(method, PhaseTimer(torch.device("cpu")), torch.Generator().manual_seed(0))
    return [method.seen[i:i + 3] for i in range(0, 9, 3)]


def test_paper_profile_trains_in_one_fixed_batch_order_as_the_official_loader() -> None:
    assert Sinusoids().profile("paper").shuffle is False and Sinusoids().profile("quick").shuffle is False
    fixed = batch_orders(shuffle=False)
    assert fixed[0] == fixed[1] == fixed[2]  # the order of the (once shuffled) training split, every epoch
    shuffled = batch_orders(shuffle=True)  # the harness default reshuffles each epoch
    assert not (shuffled[0] == shuffled[1] == shuffled[2])
