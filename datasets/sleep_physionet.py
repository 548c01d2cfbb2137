"""Sleep Physionet: 5-class sleep staging on Sleep-EDF expanded (sleep-cassette).

Data: the 153 night recordings of 78 healthy subjects (Mourtazaev et al. 1995) through
MNE's fetcher (``mne.datasets.sleep_physionet.age.fetch_data``, into MNE's folder
``~/mne_data/physionet-sleep-data`` or ``$PHYSIONET_SLEEP_PATH/physionet-sleep-data``),
or ``--data-root DIR`` holding Sleep-EDF ``*-PSG.edf`` / ``*-Hypnogram.edf`` pairs
(in DIR or below it). A PSG file and its hypnogram share the first 6 characters of
their names (``SC4001E0-PSG.edf`` with ``SC4001EC-Hypnogram.edf``): ``SC4ssN``, ss the
subject, N the night.

Protocol: the one of Rommel et al. (2022), "Data augmentation for learning predictive
models on EEG: a systematic comparison" (eeg-augmentation-benchmark-2022, their Sleep
Physionet setting, after braindecode's SleepPhysionet and Chambon et al. 2018):
EEG Fpz-Cz and Pz-Oz at 100 Hz, in microvolts, low-pass 30 Hz (MNE's default FIR);
non-overlapping 30 s windows aligned with the hypnogram annotations; 5 classes W, N1,
N2, N3 (R&K stages 3 and 4 merged, as AASM), REM; ``Sleep stage ?`` and ``Movement
time`` epochs dropped; wake trimmed to 30 min before the first and after the last
sleep epoch; every channel standardised over the windows of its recording; subject-wise
train / validation / test splits (both nights of a subject in the same split), fixed
by a split seed that never depends on the run seed.

Metric: balanced accuracy, with Cohen's kappa beside it.

Model: the sleep stager of Chambon et al. (2018), as braindecode's
SleepStagerChambon2018 with the settings of Rommel et al. (0.5 s temporal filters,
batch norm): a spatial convolution over the 2 channels, two temporal conv + max-pool
blocks, dropout 0.25 and a linear layer; ``width`` multiplies the number of feature
maps of the temporal convolutions (8 in the paper).

Where this differs from Rommel et al.: one fixed subject-wise split instead of their
10-fold subject cross-validation (validation = 20 % of the training subjects there,
18 % of all subjects here); standardisation over each recording's windows (their code
applies sklearn's ``scale`` to the epochs of each recording); the wake trimming ends
30 min after the *end* of the last sleep epoch (MNE's sleep tutorial; braindecode
counts from its onset); early stopping on validation balanced accuracy (AugNet's
monitor) rather than validation loss. The paper profile balances the training classes
by random downsampling, as their ``--downsampling`` runs do (they downsample every
split; here validation and test keep their natural class mix, and the metric is
balanced accuracy).

``fixed`` applies the reference group (a sign flip with probability 1/2 and a circular
shift by up to 1 s): Rommel et al. compare single augmentations, with no one
hand-designed baseline to copy.

Windowed arrays are cached per recording under ``~/.cache/invbench`` (keyed by the
file names, sizes and modification times and the protocol), written atomically; a
corrupt cache is rebuilt. A corrupt or truncated EDF file is a `UserError` naming it.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment.eeg import random_sign_flip_time_shift
from bench.data import bounded_download, downloads_allowed, split_indices
from bench.errors import DataUnavailable, UserError

CHANNELS = ("EEG Fpz-Cz", "EEG Pz-Oz")
SFREQ = 100.0
WINDOW_S = 30.0
LOWPASS_HZ = 30.0
CROP_WAKE_S = 30 * 60.0
# R&K stages 3 and 4 are merged into N3; "Sleep stage ?" and "Movement time" are dropped.
STAGE_LABELS = {"Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
                "Sleep stage 4": 3, "Sleep stage R": 4}
SLEEP_STAGES = ("Sleep stage 1", "Sleep stage 2", "Sleep stage 3", "Sleep stage 4", "Sleep stage R")
CLASS_NAMES = ("W", "N1", "N2", "N3", "REM")
# Sleep-cassette subjects (MNE's fetcher): 0-82 without 39, 68, 69, 78 and 79.
SUBJECTS = tuple(s for s in range(83) if s not in (39, 68, 69, 78, 79))
LAYOUT = ("Sleep-EDF sleep-cassette files: SC4ssNxx-PSG.edf with its SC4ssNxx-Hypnogram.edf "
          "(same first 6 characters), in DIR or below it")
CACHE_DIR = Path.home() / ".cache" / "invbench"
PROCESSING_VERSION = 1  # bump when the processing below changes: rebuilds the caches
SPLIT_SEED = 20180101  # fixed: the subjects of each split never depend on the run seed
PROTOCOL = {"channels": CHANNELS, "sfreq": SFREQ, "window_s": WINDOW_S, "lowpass_hz": LOWPASS_HZ,
            "crop_wake_s": CROP_WAKE_S, "labels": STAGE_LABELS, "version": PROCESSING_VERSION}


@dataclass(frozen=True)
class Recording:
    """One night: a PSG file, its hypnogram, the subject and the night number."""

    psg: Path
    hypnogram: Path
    subject: int
    night: int


def mne_folder() -> Path:
    """Where MNE's sleep fetcher keeps the files (its own rule: PHYSIONET_SLEEP_PATH,
    else MNE_DATA, else ~/mne_data; then ``physionet-sleep-data``)."""
    import mne

    base = mne.get_config("PHYSIONET_SLEEP_PATH") or mne.get_config("MNE_DATA") or Path.home() / "mne_data"
    return Path(base).expanduser() / "physionet-sleep-data"


def find_recordings(folder: Path) -> list[Recording]:
    """Every sleep-cassette PSG / hypnogram pair in ``folder`` or below, in name order.
    Other Sleep-EDF files (the temazepam study's ST*, which MNE keeps in the same
    folder) are ignored: their subject numbers are another study's."""
    psgs = {p.name[:6]: p for p in sorted(folder.rglob("SC4*-PSG.edf"))}
    hypnograms = {p.name[:6]: p for p in sorted(folder.rglob("SC4*-Hypnogram.edf"))}
    recordings = []
    for key, psg in sorted(psgs.items()):
        if key not in hypnograms:
            raise UserError(f"{psg} has no hypnogram: expected a {key}*-Hypnogram.edf beside it ({LAYOUT})")
        if not (key[3:6].isdigit()):
            raise UserError(f"{psg.name} does not follow the Sleep-EDF naming SC4ssN...: ss the subject, N the night")
        recordings.append(Recording(psg, hypnograms[key], subject=int(key[3:5]), night=int(key[5])))
    return recordings


def check_edf_size(path: Path) -> None:
    """Raise ValueError when the EDF header is unreadable or the file is shorter than
    its header says (MNE would silently read only the complete records)."""
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256:
            raise ValueError("shorter than an EDF header")
        header_bytes, n_records, n_signals = int(head[184:192]), int(head[236:244]), int(head[252:256])
        f.seek(256 + n_signals * 216)  # the per-signal "samples per record" fields
        samples = [int(f.read(8)) for _ in range(n_signals)]
    expected = header_bytes + n_records * 2 * sum(samples)
    if n_records >= 0 and path.stat().st_size < expected:
        raise ValueError(f"{path.stat().st_size} bytes, the header announces {expected}")


def window_recording(recording: Recording) -> tuple[np.ndarray, np.ndarray]:
    """The 30 s windows of one night, (n, 2, 3000) float32, channel-wise standardised,
    and their stage labels (n,) int64 - the protocol of the module docstring."""
    import mne

    for path in (recording.psg, recording.hypnogram):
        try:
            check_edf_size(path)
        except (OSError, ValueError) as exc:
            raise UserError(f"Sleep-EDF file {path} is corrupt or truncated ({exc}); "
                            "delete it to download again, or replace it") from None
    try:
        raw = mne.io.read_raw_edf(recording.psg, include=list(CHANNELS), preload=False, verbose="error")
    except Exception as exc:  # noqa: BLE001 - MNE raises several types for bad files
        raise UserError(f"Sleep-EDF file {recording.psg} is corrupt or truncated ({exc})") from None
    try:
        annotations = mne.read_annotations(recording.hypnogram)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"Sleep-EDF hypnogram {recording.hypnogram} is corrupt or truncated ({exc})") from None
    missing = [c for c in CHANNELS if c not in raw.ch_names]
    if missing:
        raise UserError(f"{recording.psg} has no channel {', '.join(missing)} (it has {', '.join(raw.ch_names)})")
    raw.pick(list(CHANNELS))
    if raw.info["sfreq"] != SFREQ:
        raw.load_data().resample(SFREQ, verbose="error")

    onsets, durations, stages = annotations.onset, annotations.duration, list(annotations.description)
    sleep = [i for i, stage in enumerate(stages) if stage in SLEEP_STAGES]
    if not sleep:
        raise UserError(f"hypnogram {recording.hypnogram} has no sleep stage annotation")
    # Wake trimming: keep 30 min before the first and after the end of the last sleep epoch.
    first = max(0, int(round((onsets[sleep[0]] - CROP_WAKE_S) * SFREQ)))
    last = min(raw.n_times, int(round((onsets[sleep[-1]] + durations[sleep[-1]] + CROP_WAKE_S) * SFREQ)))
    signal = raw.get_data(start=first, stop=last) * 1e6  # volts -> microvolts
    signal = mne.filter.filter_data(signal, SFREQ, l_freq=None, h_freq=LOWPASS_HZ, verbose="error")

    size = int(WINDOW_S * SFREQ)
    starts, labels = [], []
    for onset, duration, stage in zip(onsets, durations, stages):
        if stage not in STAGE_LABELS:
            continue
        for k in range(int(duration // WINDOW_S)):  # one window per 30 s epoch of the annotation
            start = int(round((onset + k * WINDOW_S) * SFREQ)) - first
            if 0 <= start and start + size <= signal.shape[1]:
                starts.append(start)
                labels.append(STAGE_LABELS[stage])
    if not starts:
        raise UserError(f"{recording.psg}: no 30 s window with a sleep stage inside the recording")
    windows = np.stack([signal[:, s:s + size] for s in starts])
    mean, std = windows.mean(axis=(0, 2), keepdims=True), windows.std(axis=(0, 2), keepdims=True)
    windows = (windows - mean) / np.maximum(std, 1e-12)
    return windows.astype(np.float32), np.asarray(labels, dtype=np.int64)


def cache_path(recording: Recording) -> Path:
    stamp = [repr(sorted(PROTOCOL.items()))]
    stamp += [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (recording.psg, recording.hypnogram)]
    digest = hashlib.sha256(repr(stamp).encode()).hexdigest()[:16]
    return CACHE_DIR / f"sleep-{recording.psg.name[:8]}-{digest}.pt"


def build_cache(recording: Recording) -> dict[str, torch.Tensor]:
    x, y = window_recording(recording)
    windows = {"x": torch.from_numpy(x), "y": torch.from_numpy(y)}
    path = cache_path(recording)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(windows, tmp)
    tmp.replace(path)  # atomic: a killed process never leaves half a cache
    return windows


def load_windows(recording: Recording) -> dict[str, torch.Tensor]:
    """The windows of one night, from the cache when it is there and intact."""
    path = cache_path(recording)
    if path.is_file():
        try:
            windows = torch.load(path, weights_only=True)
            x, y = windows["x"], windows["y"]
            if x.shape[1:] == (len(CHANNELS), int(WINDOW_S * SFREQ)) and len(x) == len(y):
                return windows
        except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt, never trusted
            pass
        path.unlink(missing_ok=True)
    return build_cache(recording)


def subject_split(subjects: list[int], fractions: tuple[float, float, float]) -> tuple[list[int], ...]:
    """Disjoint train / val / test subject lists (at least one subject each), fixed by
    SPLIT_SEED."""
    n = len(subjects)
    n_test = max(1, round(fractions[2] * n))
    n_val = max(1, round(fractions[1] * n))
    if n - n_test - n_val < 1:
        raise UserError(f"subject-wise splits need at least 3 subjects; found {n} ({subjects})")
    parts = split_indices(n, (n - n_val - n_test, n_val, n_test), SPLIT_SEED)
    return tuple(sorted(subjects[i] for i in part.tolist()) for part in parts)


def balance_classes(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices keeping, for every class present, as many random windows as the rarest has."""
    classes = y.unique()
    n = min(int((y == c).sum()) for c in classes)
    keep = [torch.nonzero(y == c).squeeze(1)[torch.randperm(int((y == c).sum()), generator=generator)[:n]]
            for c in classes]
    return torch.cat(keep).sort().values


class SleepStagerChambon2018(nn.Module):
    """Chambon et al. (2018): spatial conv over channels, two blocks of temporal conv
    (0.5 s) + batch norm + ReLU + max-pool (0.125 s), dropout, linear layer."""

    def __init__(self, n_conv_chs: int = 8, n_channels: int = len(CHANNELS), sfreq: float = SFREQ,
                 input_size_s: float = WINDOW_S, n_classes: int = len(CLASS_NAMES), dropout: float = 0.25,
                 batch_norm: bool = True):
        super().__init__()
        time_conv, pool, pad = math.ceil(0.5 * sfreq), math.ceil(0.125 * sfreq), math.ceil(0.25 * sfreq)
        self.spatial_conv = nn.Conv2d(1, n_channels, (n_channels, 1))

        def norm() -> nn.Module:
            return nn.BatchNorm2d(n_conv_chs) if batch_norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(1, n_conv_chs, (1, time_conv), padding=(0, pad)), norm(), nn.ReLU(), nn.MaxPool2d((1, pool)),
            nn.Conv2d(n_conv_chs, n_conv_chs, (1, time_conv), padding=(0, pad)), norm(), nn.ReLU(),
            nn.MaxPool2d((1, pool)),
        )
        n_features = n_conv_chs * n_channels * self.time_steps(math.ceil(input_size_s * sfreq), time_conv, pool, pad)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_classes))

    @staticmethod
    def time_steps(n: int, time_conv: int, pool: int, pad: int) -> int:
        for _ in range(2):
            n = (n + 2 * pad - time_conv + 1) // pool
        return n

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.spatial_conv(x.unsqueeze(1)).transpose(1, 2)  # (B, 1, C, T): each virtual channel a row
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class SleepPhysionet(Task):
    name = "sleep_physionet"
    description = "Sleep-EDF (sleep-cassette) 5-stage sleep staging from Fpz-Cz and Pz-Oz; subject-wise splits."
    modality = "eeg"
    metric = "balanced_accuracy"
    extra_metrics = ("cohen_kappa",)
    num_classes = len(CLASS_NAMES)
    input_shape = (len(CHANNELS), int(WINDOW_S * SFREQ))
    augmentation_space = ("time_reverse", "sign_flip", "ft_surrogate", "frequency_shift", "gaussian_noise",
                          "channel_dropout", "channel_shuffle", "time_mask", "bandstop_filter", "time_shift")
    augmentation_kwargs = {"sfreq": SFREQ}
    reference_symmetry = "sign flip (p = 1/2) and circular time shift uniform in +-1 s"
    fixed_augmentation = "sign flip (p = 1/2) and circular time shift uniform in +-1 s"
    profiles = {
        "smoke": Profile(epochs=1, batch_size=16, lr=1e-3, eval_batch_size=256,
                         options={"n_subjects": 4, "split": (0.5, 0.25, 0.25), "max_windows": (256, 128, 128),
                                  "balance_train": False, "base_k": 4}),
        # CPU minutes: 10 subjects (20 nights), balanced training classes, capped splits.
        "quick": Profile(epochs=3, batch_size=32, lr=1e-3, eval_batch_size=512,
                         options={"n_subjects": 10, "split": (0.6, 0.2, 0.2), "max_windows": (3000, 1000, 1500),
                                  "balance_train": True, "base_k": 8}),
        # Rommel et al. (2022): Adam 1e-3, batch 16, up to 300 epochs, early stopping
        # with patience 30 restoring the best weights; all 78 subjects; balanced classes.
        "paper": Profile(epochs=300, batch_size=16, lr=1e-3, select_best_val=True, patience=30,
                         options={"n_subjects": None, "split": (0.72, 0.18, 0.10), "max_windows": None,
                                  "balance_train": True, "base_k": 8}),
    }

    def recordings(self, profile: str, data_root: Path | None, download: bool = False) -> list[Recording]:
        """The nights of the profile's subjects (the first ``n_subjects`` there are)."""
        n = self.profile(profile).options["n_subjects"]
        if data_root is not None:
            folder = Path(data_root)
            found = find_recordings(folder)
            if not found:
                raise DataUnavailable(f"no Sleep-EDF recordings under --data-root {folder}; expected {LAYOUT}")
            subjects = sorted({r.subject for r in found})[:n]
            return [r for r in found if r.subject in subjects]
        folder = mne_folder()
        subjects = list(SUBJECTS[:n])
        found = find_recordings(folder) if folder.is_dir() else []
        if not set(subjects) <= {r.subject for r in found}:
            if not download:
                raise DataUnavailable(f"Sleep Physionet is not in {folder}; pass --data-root DIR with {LAYOUT}")
            self.download(subjects, folder)
            found = find_recordings(folder)
        return [r for r in found if r.subject in subjects]

    def download(self, subjects: list[int], folder: Path) -> None:
        where = f"pass --data-root DIR with {LAYOUT}"
        if not downloads_allowed():
            raise DataUnavailable(f"Sleep Physionet is not in {folder} and downloads are off; {where}")
        from mne.datasets.sleep_physionet import age

        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            with bounded_download():
                age.fetch_data(subjects, recording=(1, 2), path=str(folder.parent), on_missing="ignore",
                               verbose="error")
        except Exception as exc:  # noqa: BLE001 - any network failure means "unavailable here"
            raise DataUnavailable(f"Sleep Physionet could not be downloaded ({type(exc).__name__}); {where}") from None

    def prepare(self, profile: str, data_root: Path | None) -> None:
        """Find (or download) the nights and window every one not cached yet, so a
        corrupt file is reported before any run starts."""
        for recording in self.recordings(profile, data_root, download=True):
            if not cache_path(recording).is_file():
                build_cache(recording)

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        opts = self.profile(profile).options
        recordings = self.recordings(profile, data_root)
        subjects = subject_split(sorted({r.subject for r in recordings}), opts["split"])
        generator = torch.Generator().manual_seed(SPLIT_SEED)
        splits = []
        for i, members in enumerate(subjects):
            nights = [load_windows(r) for r in recordings if r.subject in members]
            x, y = torch.cat([n["x"] for n in nights]), torch.cat([n["y"] for n in nights])
            if i == 0 and opts["balance_train"]:
                keep = balance_classes(y, generator)
                x, y = x[keep], y[keep]
            cap = opts["max_windows"][i] if opts["max_windows"] else None
            if cap is not None and len(y) > cap:
                keep = torch.randperm(len(y), generator=generator)[:cap].sort().values
                x, y = x[keep], y[keep]
            splits.append(Split(x, y))
        info = {"subjects": dict(zip(("train", "val", "test"), subjects)),
                "class_counts": {name: torch.bincount(s.y, minlength=len(CLASS_NAMES)).tolist()
                                 for name, s in zip(("train", "val", "test"), splits)}}
        return TaskData(*splits, info=info)

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        if depth is not None:
            raise UserError("sleep_physionet's Chambon et al. stager has a fixed depth; omit --depths for this task")
        return SleepStagerChambon2018(n_conv_chs=max(1, round(self.profile(profile).options["base_k"] * width)))

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_sign_flip_time_shift(x, SFREQ)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_sign_flip_time_shift(x, SFREQ)
