"""EEG ops on standardised signals (B, C, T): the set Rommel et al. compared for sleep
staging (braindecode's transforms), differentiable where the op allows.

Every op takes the sampling frequency as the fact ``sfreq`` (Hz; from the task's
``augmentation_kwargs``). Ranges follow AugNet's differentiable EEG transforms and
braindecode: Gaussian noise std up to 0.2 (signals are standardised), frequency
shift up to +-5 Hz, FT-surrogate phase noise 0 to 1 (times 2 pi), channel dropout /
shuffle probability 0 to 1, time mask up to 1 s, band-stop width up to 2 Hz, time
shift up to +-1 s.

Gradient to the magnitude: native for gaussian_noise (std), frequency_shift (through
the analytic signal), ft_surrogate (phase scale), time_shift (a fractional circular
shift through an FFT phase ramp) and channel_dropout (relaxed-Bernoulli channel
gates); straight-through for time_mask (mask length), bandstop_filter (band width)
and channel_shuffle (shuffle probability); time_reverse and sign_flip have no
strength: their magnitude is the probability of applying them (relaxed Bernoulli).
"""
from __future__ import annotations

import math

import torch

from bench.augment.core import Op, bernoulli_gate, expand_to, register


def _sfreq(facts: dict) -> float:
    if "sfreq" not in facts:
        raise ValueError("EEG ops need the sampling frequency: pass sfreq=... (Task.augmentation_kwargs)")
    return float(facts["sfreq"])


@register
class TimeReverse(Op):
    name, modality, kind, unit = "time_reverse", "eeg", "on_off", "probability"
    assumption = "TimeReverse: the label does not change when the window is played backwards."

    def transform(self, x, value, training, **facts):
        return x.flip(-1)


@register
class SignFlip(Op):
    name, modality, kind, unit = "sign_flip", "eeg", "on_off", "probability"
    assumption = "SignFlip: the label does not change when the polarity of every channel is inverted."

    def transform(self, x, value, training, **facts):
        return -x


@register
class FTSurrogate(Op):
    name, modality, low, high, unit = "ft_surrogate", "eeg", 0.0, 1.0, "phase noise (x 2 pi)"
    assumption = "FTSurrogate: the label depends on the amplitude spectrum, not on the phases."

    def transform(self, x, value, training, **facts):
        spectrum = torch.fft.rfft(x, dim=-1)
        phases = torch.rand(len(x), 1, spectrum.shape[-1], device=x.device, dtype=x.dtype)
        phases[..., 0] = 0  # keep the mean real
        if x.shape[-1] % 2 == 0:
            phases[..., -1] = 0  # and the Nyquist bin
        rotation = torch.polar(torch.ones_like(phases), 2 * math.pi * phases * expand_to(value, phases))
        return torch.fft.irfft(spectrum * rotation, n=x.shape[-1], dim=-1)


def analytic_signal(x: torch.Tensor) -> torch.Tensor:
    """The analytic signal along the last axis (FFT Hilbert transform)."""
    n = x.shape[-1]
    h = torch.zeros(n, device=x.device, dtype=x.dtype)
    h[0] = 1
    if n % 2 == 0:
        h[n // 2] = 1
        h[1:n // 2] = 2
    else:
        h[1:(n + 1) // 2] = 2
    return torch.fft.ifft(torch.fft.fft(x, dim=-1) * h, dim=-1)


@register
class FrequencyShift(Op):
    name, modality, low, high, unit, symmetric = "frequency_shift", "eeg", 0.0, 5.0, "Hz", True
    assumption = "FrequencyShift: the label does not change when every frequency is shifted by up to 5 Hz."

    def transform(self, x, value, training, **facts):
        t = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype) / _sfreq(facts)
        ramp = torch.polar(torch.ones_like(t), 2 * math.pi * expand_to(value, x) * t)
        return (analytic_signal(x) * ramp).real


@register
class GaussianNoise(Op):
    name, modality, low, high, unit = "gaussian_noise", "eeg", 0.0, 0.2, "noise std (signal std = 1)"
    assumption = "GaussianNoise: the label does not change with additive white noise of std up to 0.2."

    def transform(self, x, value, training, **facts):
        return x + expand_to(value, x) * torch.randn_like(x)


@register
class ChannelDropout(Op):
    name, modality, low, high, unit = "channel_dropout", "eeg", 0.0, 1.0, "drop probability per channel"
    assumption = "ChannelDropout: the label can be read from any subset of channels."

    def transform(self, x, value, training, **facts):
        keep = bernoulli_gate(1 - value.view(-1, 1), x.shape[:2], temperature=facts["temperature"],
                              training=training)
        return x * keep.unsqueeze(-1)


@register
class ChannelShuffle(Op):
    name, modality, kind, low, high, unit = "channel_shuffle", "eeg", "discrete", 0.0, 1.0, "shuffle probability"
    assumption = "ChannelShuffle: the label does not depend on which channel is which."

    def transform(self, x, value, training, **facts):
        b, c = x.shape[:2]
        chosen = torch.rand(b, c, device=x.device) < value.view(-1, 1)
        index = torch.arange(c, device=x.device).expand(b, c).float()
        # Chosen channels first, in random order; then the others in their own order.
        source = torch.where(chosen, torch.rand(b, c, device=x.device) - 2, index).argsort(dim=1, stable=True)
        # Chosen positions first, in ascending order; then the others in their own order.
        target = torch.where(chosen, index - c, index).argsort(dim=1, stable=True)
        permutation = torch.empty_like(source).scatter_(1, target, source)
        return x.gather(1, permutation.unsqueeze(-1).expand_as(x))


@register
class TimeMask(Op):
    name, modality, kind, low, high, unit = "time_mask", "eeg", "discrete", 0.0, 1.0, "seconds masked"
    assumption = "TimeMask: the label can be read when up to 1 s of the window is zeroed."

    def transform(self, x, value, training, **facts):
        n = x.shape[-1]
        length = (value * _sfreq(facts)).round().clamp(0, n).view(-1, 1, 1)
        start = (torch.rand_like(length) * (n - length + 1)).floor()
        t = torch.arange(n, device=x.device, dtype=x.dtype)
        masked = (t >= start) & (t < start + length)
        return x * (~masked).to(x.dtype)


@register
class BandstopFilter(Op):
    name, modality, kind, low, high, unit = "bandstop_filter", "eeg", "discrete", 0.0, 2.0, "band width (Hz)"
    assumption = "BandstopFilter: the label does not depend on any single 2 Hz frequency band."

    def transform(self, x, value, training, **facts):
        sfreq = _sfreq(facts)
        spectrum = torch.fft.rfft(x, dim=-1)
        freqs = torch.fft.rfftfreq(x.shape[-1], d=1 / sfreq).to(x.device, x.dtype)
        width = value.view(-1, 1, 1)
        centre = width / 2 + torch.rand_like(width) * (sfreq / 2 - width)  # the band fits the spectrum
        stop = (freqs - centre).abs() < width / 2
        return torch.fft.irfft(spectrum * (~stop), n=x.shape[-1], dim=-1)


@register
class TimeShift(Op):
    name, modality, low, high, unit, symmetric = "time_shift", "eeg", 0.0, 1.0, "seconds", True
    assumption = "TimeShift: the label does not change when the window is shifted (circularly) by up to 1 s."

    def transform(self, x, value, training, **facts):
        spectrum = torch.fft.rfft(x, dim=-1)
        freqs = torch.fft.rfftfreq(x.shape[-1], d=1 / _sfreq(facts)).to(x.device, x.dtype)
        ramp = torch.polar(torch.ones_like(freqs), -2 * math.pi * freqs * expand_to(value, x))
        return torch.fft.irfft(spectrum * ramp, n=x.shape[-1], dim=-1)


def random_sign_flip_time_shift(x: torch.Tensor, sfreq: float, max_shift_s: float = 1.0) -> torch.Tensor:
    """The EEG reference group used by the sleep task: a sign flip with probability
    1/2 and a circular shift by a whole number of samples, uniform in +-max_shift_s
    (exact, for evaluation; the TimeShift op shifts by fractions of a sample)."""
    b, _, n = x.shape
    signs = (torch.rand(b, 1, 1, device=x.device) < 0.5).to(x.dtype) * 2 - 1
    max_shift = int(round(max_shift_s * sfreq))
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 1), device=x.device)
    source = (torch.arange(n, device=x.device) - shifts) % n
    return (x * signs).gather(-1, source.unsqueeze(1).expand_as(x))
