"""QM9 molecular properties: HOMO (task ``qm9``), LUMO (``qm9_lumo``) and the HOMO-LUMO
gap (``qm9_gap``), the targets of Augerino's QM9 experiments.

Data: the 130,831 molecules of the ``qm9pack`` wheel (QM9 without the 3,054
molecules that failed the consistency check, the same set as Cormorant / LieConv),
read from its CSV files (or from ``--data-root DIR`` holding ``qm9_part1.csv`` ...
in the same format) and processed once into a cached tensor file under
``~/.cache/invbench``. Energies are converted from Hartree to eV; MAE is reported in
meV.

Protocol (Cormorant / LieConv, used by Augerino): 100,000 training molecules, 10 %
test, the rest validation, from a permutation drawn with NumPy seed 0 (Cormorant's
``gen_splits_gdb9`` as we read it); L1 loss on targets normalised by the training
median and median absolute deviation (LieConv). ``smoke`` / ``quick`` take the first
molecules of each split.

Input: one tensor (N, 29, 3 + 5 + 1): coordinates in Angstrom, centred on the
centroid of the molecule; one-hot H, C, N, O, F; padding mask. Model: a transformer
over atoms with masked attention and masked mean pooling - permutation-invariant,
but it reads raw coordinates, so it is not rotation-invariant by construction (any
rotation invariance has to come from the method). It replaces the official code's
LieConv ResNet (an SE(3)-equivariant network would leave nothing to learn).
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from bench.api import Profile, Split, Task, TaskData
from bench.augment.points import random_rotation_translation
from bench.errors import DataUnavailable, UserError

HARTREE_EV = 27.211386245988  # CODATA 2018
ELEMENTS = ("H", "C", "N", "O", "F")
MAX_ATOMS = 29
FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
COLUMNS = ["Index", "N_atoms", "Elements", "XYZ_Ang", "HOMO_au", "LUMO_au", "HOMO_LUMO_gap_au"]
TARGET_COLUMNS = {"homo": "HOMO_au", "lumo": "LUMO_au", "gap": "HOMO_LUMO_gap_au"}
CACHE_DIR = Path.home() / ".cache" / "invbench"
PROCESSING_VERSION = 1  # bump when the processing below changes: rebuilds the cache
N_TRAIN = 100_000


def wheel_folder() -> Path | None:
    spec = importlib.util.find_spec("qm9pack")  # locate only: importing it needs setuptools
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "data"


def source_folder(data_root: Path | None) -> Path:
    if data_root is not None:
        return Path(data_root)
    folder = wheel_folder()
    if folder is None:
        raise DataUnavailable("QM9 needs the qm9pack wheel (pip install -r requirements.txt) or "
                              f"--data-root DIR with {', '.join(FILES)}")
    return folder


def parse_csv(path: Path) -> dict[str, np.ndarray]:
    """One QM9 CSV file (qm9pack format) as arrays: coordinates (N, 29, 3), atom type
    indices (N, 29) with -1 for padding, and the three energies in eV."""
    try:
        frame = pd.read_csv(path, usecols=COLUMNS)
        n = len(frame)
        if n == 0 or frame.isna().any().any():
            raise ValueError("no molecules" if n == 0 else "missing values (a row is cut short)")
        xyz = np.zeros((n, MAX_ATOMS, 3), dtype=np.float32)
        types = np.full((n, MAX_ATOMS), -1, dtype=np.int8)
        for i, (count, elements, coords) in enumerate(zip(frame["N_atoms"], frame["Elements"], frame["XYZ_Ang"])):
            symbols = elements.strip("[]").replace("'", "").replace(" ", "").split(",")
            values = np.array(coords.replace("[", "").replace("]", "").split(","), dtype=np.float32)
            if len(symbols) != count or values.size != 3 * count or count > MAX_ATOMS:
                raise ValueError(f"molecule {frame['Index'].iloc[i]}: {count} atoms but {len(symbols)} elements "
                                 f"and {values.size} coordinates")
            xyz[i, :count] = values.reshape(count, 3)
            types[i, :count] = [ELEMENTS.index(s) for s in symbols]
        energies = {key: frame[column].to_numpy(np.float64) * HARTREE_EV for key, column in TARGET_COLUMNS.items()}
    except (OSError, ValueError, KeyError, AttributeError, pd.errors.ParserError) as exc:
        raise UserError(f"QM9 file {path} is corrupt or truncated ({type(exc).__name__}: {exc})") from None
    return {"index": frame["Index"].to_numpy(np.int64), "xyz": xyz, "types": types, **energies}


def cache_path(folder: Path) -> Path:
    stamp = [PROCESSING_VERSION, str(folder.resolve())]
    stamp += [(f, (folder / f).stat().st_size, (folder / f).stat().st_mtime_ns) for f in FILES]
    return CACHE_DIR / f"qm9-{hashlib.sha256(repr(stamp).encode()).hexdigest()[:16]}.pt"


def load_molecules(folder: Path) -> dict[str, torch.Tensor]:
    """All molecules of ``folder``, from the cache when it is there and intact."""
    path = cache_path(folder)
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    parts = [parse_csv(folder / f) for f in FILES]
    molecules = {key: torch.from_numpy(np.concatenate([p[key] for p in parts])) for key in parts[0]}
    order = molecules["index"].argsort()  # the dataset's own order, whatever the file order
    molecules = {key: value[order] for key, value in molecules.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(molecules)}")
    torch.save(molecules, tmp)
    tmp.replace(path)  # atomic: a killed process never leaves half a cache
    return molecules


def cormorant_split(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test indices: 100k train, 10 % test, the rest validation
    (for a folder of fewer molecules than QM9, 80 % train)."""
    n_test = int(0.1 * n)
    n_train = min(N_TRAIN, int(0.8 * n))
    permutation = np.random.RandomState(0).permutation(n)
    return permutation[:n_train], permutation[n_train:n - n_test], permutation[n - n_test:]


def featurise(molecules: dict[str, torch.Tensor], index: np.ndarray) -> torch.Tensor:
    """(len(index), 29, 9): centred coordinates, one-hot types, padding mask."""
    idx = torch.as_tensor(index, dtype=torch.long)
    types = molecules["types"][idx].long()
    mask = (types >= 0).float().unsqueeze(-1)
    xyz = molecules["xyz"][idx]
    centroid = (xyz * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
    one_hot = torch.nn.functional.one_hot(types.clamp_min(0), len(ELEMENTS)).float() * mask
    return torch.cat([(xyz - centroid) * mask, one_hot, mask], dim=-1)


class AtomTransformer(nn.Module):
    """Self-attention over the real atoms of a molecule, masked mean pooling, MLP head.

    Reads raw coordinates and atom types; permutation-invariant, padding-invariant,
    not rotation-invariant."""

    def __init__(self, dim: int, layers: int, heads: int = 4):
        super().__init__()
        self.inputs = nn.Linear(3 + len(ELEMENTS), dim)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[..., -1] > 0
        h = self.encoder(self.inputs(x[..., :-1]), src_key_padding_mask=~mask)
        weights = mask.unsqueeze(-1).to(h.dtype)
        return (h * weights).sum(1) / weights.sum(1).clamp_min(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x)).squeeze(-1)


class Qm9Homo(Task):
    name = "qm9"
    description = "QM9 HOMO energy (MAE, meV) from 3D coordinates; Cormorant/LieConv split."
    target = "homo"
    modality = "molecule"
    metric = "mae_mev"
    num_classes = None
    input_shape = (MAX_ATOMS, 3 + len(ELEMENTS) + 1)
    reference_symmetry = "SE(3): uniformly random rotation about the centroid and a translation up to 1 Angstrom"
    fixed_augmentation = "uniformly random rotation about the centroid (SO(3))"
    invariance_representation = "embedding"  # the output is a scalar
    augmentation_space = ("so3_rotation", "translation", "jitter", "reflection")
    profiles = {
        "smoke": Profile(epochs=1, batch_size=64, lr=3e-3, eval_batch_size=256,
                         options={"n_train": 256, "n_val": 128, "n_test": 256, "dim": 16, "layers": 1}),
        "quick": Profile(epochs=8, batch_size=64, lr=3e-3, schedule="cosine",
                         options={"n_train": 6000, "n_val": 1000, "n_test": 2000, "dim": 32, "layers": 2}),
        # Augerino's QM9 trainer (LieConv): Adam 3e-3, batch 75, 500 epochs, cosine.
        "paper": Profile(epochs=500, batch_size=75, lr=3e-3, schedule="cosine",
                         options={"n_train": None, "n_val": None, "n_test": None, "dim": 128, "layers": 6}),
    }

    def prepare(self, profile: str, data_root: Path | None) -> None:
        folder = source_folder(data_root)
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise DataUnavailable(f"QM9 files missing in {folder}: {', '.join(missing)}; pass --data-root DIR "
                                  f"with {', '.join(FILES)} (the qm9pack CSV format)")

    def load(self, profile: str, data_root: Path | None, seed: int) -> TaskData:
        opts = self.profile(profile).options
        molecules = load_molecules(source_folder(data_root))
        splits = cormorant_split(len(molecules["index"]))
        sizes = (opts["n_train"], opts["n_val"], opts["n_test"])
        splits = [idx[:size] if size is not None else idx for idx, size in zip(splits, sizes)]
        targets = molecules[self.target]
        train_targets = targets[torch.as_tensor(splits[0])]
        median = train_targets.median().item()
        mad = (train_targets - median).abs().median().item()
        made = [Split(featurise(molecules, idx), ((targets[torch.as_tensor(idx)] - median) / mad).float())
                for idx in splits]
        return TaskData(*made, info={"target": self.target, "median_ev": median, "mad_ev": mad,
                                     "split_sizes": [len(s) for s in splits]})

    def make_model(self, profile: str, width: float, depth: int | None) -> nn.Module:
        opts = self.profile(profile).options
        dim = max(4, 4 * round(opts["dim"] * width / 4))  # a multiple of the 4 attention heads
        return AtomTransformer(dim, depth if depth is not None else opts["layers"])

    def evaluate(self, outputs: torch.Tensor, targets: torch.Tensor, info: dict) -> dict[str, float]:
        """MAE in meV of the de-normalised predictions."""
        error_ev = (outputs.reshape(targets.shape) - targets).abs() * info["mad_ev"]
        return {self.metric: 1000 * error_ev.mean().item()}

    def reference_transform(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotation_translation(x, max_shift=1.0)

    def fixed_augment(self, x: torch.Tensor) -> torch.Tensor:
        return random_rotation_translation(x, max_shift=0.0)


class Qm9Lumo(Qm9Homo):
    name = "qm9_lumo"
    description = "QM9 LUMO energy (MAE, meV) from 3D coordinates; Cormorant/LieConv split."
    target = "lumo"


class Qm9Gap(Qm9Homo):
    name = "qm9_gap"
    description = "QM9 HOMO-LUMO gap (MAE, meV) from 3D coordinates; Cormorant/LieConv split."
    target = "gap"
