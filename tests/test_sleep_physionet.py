"""The sleep_physionet task: the real MNE loading code on tiny Sleep-EDF files written
with edfio, the windowing protocol, subject-wise splits, the cache, the model and an
end-to-end smoke run through the CLI."""
from __future__ import annotations

import datetime
from pathlib import Path

import edfio
import numpy as np
import pytest
import torch

from bench import store
from bench.cli import main
from bench.errors import DataUnavailable, UserError
from bench.registry import load_registry
from tests.helpers import run_cli

SleepPhysionet = load_registry().task("sleep_physionet").cls
task_module = __import__("sys").modules[SleepPhysionet.__module__]

# Each stage is written as a sinusoid of its own frequency, so a window's dominant
# frequency says which annotation it was cut from.
FREQ = {"Sleep stage W": 2.0, "Sleep stage 1": 4.0, "Sleep stage 2": 6.0, "Sleep stage 3": 8.0,
        "Sleep stage 4": 8.0, "Sleep stage R": 10.0, "Sleep stage ?": 14.0, "Movement time": 16.0}
LABEL_FREQ = {0: 2.0, 1: 4.0, 2: 6.0, 3: 8.0, 4: 10.0}
START = datetime.datetime(1989, 4, 24, 16, 13)
# One long night of subject 0: 40 min of wake on each side of a short sleep period,
# with stages 3 and 4, an unscored epoch, a movement epoch, and a trailing "?" that
# runs past the end of the signal, as in Sleep-EDF.
LONG_NIGHT = [("Sleep stage W", 2400), ("Sleep stage 1", 60), ("Sleep stage 2", 90), ("Sleep stage 3", 60),
              ("Sleep stage 4", 30), ("Sleep stage R", 60), ("Sleep stage ?", 30), ("Movement time", 30),
              ("Sleep stage 2", 30), ("Sleep stage W", 2400), ("Sleep stage ?", 600)]
# Sleep spans 2400-2790 s: wake more than 30 min away from it is [0, 600) and [4590, 5190).
LONG_NIGHT_FAR_WAKE = ((0, 600), (4590, 5190))
SHORT_NIGHT = [("Sleep stage W", 120), ("Sleep stage 1", 60), ("Sleep stage 2", 120), ("Sleep stage 3", 60),
               ("Sleep stage R", 90), ("Sleep stage W", 60)]
NIGHTS = {("SC4001E0", "SC4001EC"): LONG_NIGHT, ("SC4011E0", "SC4011EH"): SHORT_NIGHT,
          ("SC4012E0", "SC4012EC"): SHORT_NIGHT, ("SC4021E0", "SC4021EH"): SHORT_NIGHT,
          ("SC4031E0", "SC4031EC"): SHORT_NIGHT}


def write_night(folder: Path, psg_name: str, hypnogram_name: str, stages: list[tuple[str, int]], seed: int,
                far_wake: tuple[tuple[int, int], ...] = ()) -> None:
    """A Sleep-EDF-like night: the two EEG derivations at 100 Hz in uV, with their own
    offset and gain, plus an unused 1 Hz channel; and an EDF+ hypnogram. The
    ``far_wake`` intervals (s) carry a 12 Hz wave: wake that trimming must drop."""
    rng = np.random.default_rng(seed)
    seconds = sum(d for stage, d in stages if stage != "Sleep stage ?" or d < 600)
    t = np.arange(seconds * 100) / 100
    wave = np.zeros_like(t)
    onset = 0
    for stage, duration in stages:
        inside = (t >= onset) & (t < onset + duration)
        wave[inside] = np.sin(2 * np.pi * FREQ[stage] * t[inside])
        onset += duration
    for start, stop in far_wake:
        inside = (t >= start) & (t < stop)
        wave[inside] = np.sin(2 * np.pi * 12.0 * t[inside])
    fpz = 30 + 40 * wave + rng.normal(0, 2, t.size)
    pz = -10 + 15 * wave + rng.normal(0, 1, t.size)
    signals = [
        edfio.EdfSignal(fpz, 100, label="EEG Fpz-Cz", physical_dimension="uV", physical_range=(-300, 300)),
        edfio.EdfSignal(pz, 100, label="EEG Pz-Oz", physical_dimension="uV", physical_range=(-300, 300)),
        edfio.EdfSignal(rng.normal(36, 0.1, seconds), 1, label="Temp rectal", physical_dimension="DegC",
                        physical_range=(30, 40)),
    ]
    recording = edfio.Recording(startdate=START.date())
    edfio.Edf(signals, starttime=START.time(), recording=recording, data_record_duration=30 if seconds % 30 == 0 else 1
              ).write(folder / f"{psg_name}-PSG.edf")
    annotations, onset = [], 0
    for stage, duration in stages:
        annotations.append(edfio.EdfAnnotation(onset, duration, stage))
        onset += duration
    edfio.Edf([], starttime=START.time(), recording=recording, annotations=annotations
              ).write(folder / f"{hypnogram_name}-Hypnogram.edf")


@pytest.fixture(scope="module")
def tiny_sleep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sleep-edf")
    for seed, ((psg, hypnogram), stages) in enumerate(NIGHTS.items()):
        write_night(folder, psg, hypnogram, stages, seed, LONG_NIGHT_FAR_WAKE if stages is LONG_NIGHT else ())
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(task_module, "CACHE_DIR", tmp_path / "cache")
    return tmp_path / "cache"


def dominant_frequency(windows: torch.Tensor) -> torch.Tensor:
    spectrum = torch.fft.rfft(windows[:, 0], dim=-1).abs()
    return torch.fft.rfftfreq(windows.shape[-1], d=1 / 100)[spectrum[:, 1:].argmax(dim=1) + 1]


def test_windows_follow_the_hypnogram(tiny_sleep: Path) -> None:
    [night] = [r for r in task_module.find_recordings(tiny_sleep) if r.psg.name.startswith("SC4001")]
    assert night.hypnogram.name == "SC4001EC-Hypnogram.edf" and (night.subject, night.night) == (0, 1)
    x, y = task_module.window_recording(night)
    # 30 min of wake kept on each side (60 + 60 windows); 3 + 4 merged; ? and movement dropped.
    assert x.shape == (60 + 2 + 3 + 2 + 1 + 2 + 1 + 60, 2, 3000) and x.dtype == np.float32
    assert np.bincount(y, minlength=5).tolist() == [120, 2, 4, 3, 2]
    assert y[:60].tolist() == [0] * 60 and y[60:].tolist() == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 2] + [0] * 60
    # Every window was cut from its own annotation (its stage's frequency dominates), and
    # none from the wake more than 30 min away from sleep (12 Hz there).
    expected = torch.tensor([LABEL_FREQ[int(c)] for c in y])
    torch.testing.assert_close(dominant_frequency(torch.from_numpy(x)), expected, atol=0.01, rtol=0)
    # Channel-wise standardisation over the recording's windows (offsets and gains removed).
    assert np.allclose(x.mean(axis=(0, 2)), 0, atol=1e-4) and np.allclose(x.std(axis=(0, 2)), 1, atol=1e-4)


def test_subject_wise_splits_are_disjoint_and_fixed(tiny_sleep: Path, cache: Path) -> None:
    task = SleepPhysionet()
    task.prepare("smoke", tiny_sleep)
    a, b = task.load("smoke", tiny_sleep, seed=0), task.load("smoke", tiny_sleep, seed=7)
    subjects = a.info["subjects"]
    assert sorted(subjects["train"] + subjects["val"] + subjects["test"]) == [0, 1, 2, 3]
    assert (len(subjects["train"]), len(subjects["val"]), len(subjects["test"])) == (2, 1, 1)
    assert subjects == b.info["subjects"] and torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    # Both nights of subject 1 land in one split: 17 windows per short night, 131 in the long one.
    sizes = {0: 131, 1: 34, 2: 17, 3: 17}
    for name, split in (("train", a.train), ("val", a.val), ("test", a.test)):
        assert len(split) == min(sum(sizes[s] for s in subjects[name]), {"train": 256, "val": 128, "test": 128}[name])
        assert split.x.shape[1:] == (2, 3000)
        assert sum(a.info["class_counts"][name]) == len(split)


def test_balanced_training_classes() -> None:
    y = torch.tensor([0] * 10 + [1] * 3 + [2] * 5)
    keep = task_module.balance_classes(y, torch.Generator().manual_seed(0))
    assert torch.bincount(y[keep]).tolist() == [3, 3, 3] and len(keep.unique()) == 9


def test_cache_is_reused_and_a_corrupt_one_is_rebuilt(tiny_sleep: Path, cache: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    [night] = [r for r in task_module.find_recordings(tiny_sleep) if r.psg.name.startswith("SC4021")]
    first = task_module.load_windows(night)
    path = task_module.cache_path(night)
    assert path.is_file() and path.parent == cache and not list(cache.glob("*.tmp*"))
    real = task_module.window_recording
    monkeypatch.setattr(task_module, "window_recording", lambda r: pytest.fail("the cache was not used"))
    assert torch.equal(task_module.load_windows(night)["x"], first["x"])
    path.write_bytes(b"not a torch file")
    monkeypatch.setattr(task_module, "window_recording", real)
    again = task_module.load_windows(night)
    assert torch.equal(again["x"], first["x"]) and torch.equal(again["y"], first["y"])
    assert torch.load(path, weights_only=True)["y"].tolist() == first["y"].tolist()


def test_missing_hypnogram_channel_or_files_are_clear_errors(tmp_path: Path, cache: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_night(tmp_path, "SC4001E0", "SC4001EC", SHORT_NIGHT, 0)
    (tmp_path / "ST7011J0-PSG.edf").write_bytes(b"")  # the temazepam study's files are not ours: ignored
    assert [r.psg.name for r in task_module.find_recordings(tmp_path)] == ["SC4001E0-PSG.edf"]
    (tmp_path / "SC4001EC-Hypnogram.edf").rename(tmp_path / "SC4002EC-Hypnogram.edf")
    with pytest.raises(UserError, match="SC4001E0-PSG.edf has no hypnogram"):
        task_module.find_recordings(tmp_path)
    (tmp_path / "SC4002EC-Hypnogram.edf").rename(tmp_path / "SC4001EC-Hypnogram.edf")
    monkeypatch.setattr(task_module, "CHANNELS", ("EEG Fpz-Cz", "EEG Oz"))
    with pytest.raises(UserError, match="has no channel EEG Oz"):
        task_module.window_recording(task_module.find_recordings(tmp_path)[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailable, match="--data-root"):
        SleepPhysionet().prepare("smoke", tmp_path / "empty")


@pytest.mark.parametrize("width, k", [(0.5, 4), (1.0, 8), (2.0, 16)])
def test_model_shapes_and_width(width: float, k: int) -> None:
    model = SleepPhysionet().make_model("quick", width, None)
    x = torch.randn(3, 2, 3000)
    assert model(x).shape == (3, 5)
    assert model.embed(x).shape == (3, k * 2 * 17)  # 3000 samples -> 230 -> 17 after two 13x pools
    assert model.features[0].out_channels == k and model.head[1].in_features == k * 2 * 17


def test_wider_models_have_more_parameters_and_depth_is_rejected() -> None:
    counts = [sum(p.numel() for p in SleepPhysionet().make_model("paper", w, None).parameters()) for w in (0.5, 1, 2)]
    assert counts[0] < counts[1] < counts[2]
    with pytest.raises(UserError, match="fixed depth"):
        SleepPhysionet().make_model("paper", 1.0, 3)


def test_reference_and_fixed_transforms_are_sign_flips_and_shifts() -> None:
    x = torch.randn(16, 2, 3000)
    y = SleepPhysionet().reference_transform(x)
    # Recover each example's shift and sign from the circular cross-correlation, then check exactly.
    correlation = torch.fft.irfft(torch.fft.rfft(y) * torch.fft.rfft(x).conj(), n=3000).sum(1)
    peak = correlation.abs().argmax(dim=1)
    shifts, signs = (peak + 1500) % 3000 - 1500, correlation.gather(1, peak[:, None]).squeeze(1).sign()
    assert shifts.abs().max() <= 100 and set(signs.tolist()) == {-1.0, 1.0}
    for i in range(16):
        assert torch.equal(y[i], signs[i] * torch.roll(x[i], int(shifts[i]), dims=-1))
    assert SleepPhysionet().fixed_augment(x).shape == x.shape


def test_smoke_run_of_erm_and_fixed_through_the_cli(tiny_sleep: Path, tmp_path: Path, cache: Path) -> None:
    assert main(["run", "--tasks", "sleep_physionet", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0",
                 "--data-root", str(tiny_sleep), "--results-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    records = store.load_records(tmp_path / "r")
    assert sorted(r["method"] for r in records) == ["erm", "fixed"]
    for record in records:
        assert record["status"] == "ok" and record["metric"] == "balanced_accuracy"
        assert 0 <= record["test_metric"] <= 1 and -1 <= record["test"]["cohen_kappa"] <= 1
        assert record["invariance"]["agreement"] is not None
    assert len(list(cache.glob("sleep-*.pt"))) == len(NIGHTS)


def test_corrupt_edf_is_one_line_error(tiny_sleep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the subprocess's cache folder
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_sleep.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    psg = broken / "SC4001E0-PSG.edf"  # the first night: nothing is windowed before it
    psg.write_bytes(psg.read_bytes()[:50_000])
    result = run_cli("run", "--tasks", "sleep_physionet", "--methods", "erm", "--profile", "smoke", "--seeds", "0",
                     "--data-root", str(broken), "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SC4001E0-PSG.edf" in lines[0] and "corrupt or truncated" in lines[0]


def test_missing_data_is_skipped_in_a_suite_and_an_error_when_named(tmp_path: Path, cache: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PHYSIONET_SLEEP_PATH", str(tmp_path / "no-mne-data"))  # MNE's folder: empty
    suite = tmp_path / "sleep.yaml"
    suite.write_text("description: test\nprofile: smoke\ntasks: [sleep_physionet]\nmethods: [erm]\nseeds: [0]\n")
    assert main(["run", "--suite", str(suite), "--results-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    assert "1 skipped" in capsys.readouterr().out
    [record] = store.load_records(tmp_path / "r")
    assert record["status"] == "skipped" and "--data-root" in record["error"]
    assert main(["run", "--tasks", "sleep_physionet", "--methods", "erm", "--profile", "smoke",
                 "--results-dir", str(tmp_path / "r2"), "--no-progress"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "sleep_physionet" in line and "--data-root" in line and "PSG.edf" in line


def test_augmentation_space_is_the_eeg_ops_and_they_apply_to_windows() -> None:
    from bench.augment import get_op, ops_for

    task = SleepPhysionet()
    assert sorted(task.augmentation_space) == sorted(op.name for op in ops_for("eeg"))
    x = torch.randn(4, 2, 3000)
    for name in task.augmentation_space:
        out = get_op(name)(x, torch.full((4,), 0.5), **task.augmentation_kwargs)
        assert out.shape == x.shape and torch.isfinite(out).all(), name
