"""The qm9 task: the real CSV parser on a few rows, splits, the model, the symmetry."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from bench import store
from bench.cli import main
from bench.errors import UserError
from bench.registry import load_registry

task_module = __import__("sys").modules[load_registry().task("qm9").cls.__module__]
Qm9 = load_registry().task("qm9").cls

HEADER = ("XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,Harmonic_Freq_cmi,"
          "RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,R2_bohr2,"
          "ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,GibbsFreeEnergy_298K_au,"
          "Heatcapacity_Cv_cal_mol_K")


def row(index: int, elements: list[str], xyz: list[list[float]], homo: float, lumo: float) -> str:
    """One line in the qm9pack format (numbers written like the wheel's, e.g. '0.')."""
    coords = "[" + ",".join("[" + ",".join(f"{v:.10g}" if v else "0." for v in atom) + "]" for atom in xyz) + "]"
    symbols = "[" + ",".join(f"'{e}'" for e in elements) + "]"
    return (f'"dsgdb9nsd_{index:06d}.xyz",{index},"C","InChI=1S/X",{len(elements)},"[0,0,0,0,0]","{symbols}",'
            f'"{coords}","[0.1]","[1.0]",1.,1.,1.,0.,1.,{homo},{lumo},{lumo - homo},1.,0.1,-40.,-40.,-40.,-40.,6.')


def write_tiny_qm9(folder: Path, n: int = 60) -> Path:
    gen = torch.Generator().manual_seed(0)
    lines = []
    for i in range(1, n + 1):
        atoms = 2 + i % 5
        elements = ["C", "O", "N", "F", "H", "H", "H"][:atoms]
        xyz = (torch.randn(atoms, 3, generator=gen) * 1.5).tolist()
        lines.append(row(i, elements, xyz, homo=-0.2 - 0.001 * i, lumo=0.01 + 0.0005 * i))
    folder.mkdir(parents=True, exist_ok=True)
    thirds = [lines[k::3] for k in range(3)]  # rows spread over the three files, out of order
    for name, part in zip(task_module.FILES, thirds):
        (folder / name).write_text(HEADER + "\n" + "\n".join(part) + "\n")
    return folder


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(task_module, "CACHE_DIR", tmp_path / "cache")
    return write_tiny_qm9(tmp_path / "qm9")


def test_the_real_parser_reads_the_rows(tiny: Path) -> None:
    parsed = task_module.parse_csv(tiny / "qm9_part1.csv")
    assert parsed["xyz"].shape == (20, 29, 3)
    first = parsed["index"][0]
    assert first == 1 and (parsed["types"][0] >= 0).sum() == 3  # 2 + 1 % 5 atoms: C, O, N
    assert parsed["homo"][0] == pytest.approx(-0.201 * task_module.HARTREE_EV)


def test_splits_are_deterministic_and_disjoint(tiny: Path) -> None:
    task = Qm9()
    task.prepare("paper", tiny)
    a, b = task.load("paper", tiny, seed=0), task.load("paper", tiny, seed=5)
    assert a.info["split_sizes"] == [48, 6, 6]
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    keys = [set(map(tuple, s.x[:, 0, :3].tolist())) for s in (a.train, a.val, a.test)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    # Coordinates are centred, padding rows are zero, targets are normalised by train median / MAD.
    mask = a.train.x[..., -1:]
    centre = (a.train.x[..., :3] * mask).sum(1) / mask.sum(1)
    assert centre.abs().max() < 1e-4 and a.train.x[mask.squeeze(-1) == 0].abs().max() == 0
    assert a.train.y.median().abs() < 1e-6


def test_the_split_of_full_qm9_follows_cormorant() -> None:
    train, val, test = task_module.cormorant_split(130_831)
    assert (len(train), len(val), len(test)) == (100_000, 17_748, 13_083)
    assert len(set(train) | set(val) | set(test)) == 130_831


def test_cache_is_reused_and_a_corrupt_one_is_rebuilt(tiny: Path) -> None:
    first = task_module.load_molecules(tiny)
    path = task_module.cache_path(tiny)
    assert path.is_file()
    path.write_bytes(b"not a torch file")
    again = task_module.load_molecules(tiny)
    assert torch.equal(first["xyz"], again["xyz"])


def test_corrupt_csv_gives_a_clear_error(tiny: Path) -> None:
    target = tiny / "qm9_part2.csv"
    text = target.read_text()
    target.write_text(text[: text.index("\n") + 250])  # truncated in the first row
    with pytest.raises(UserError, match="corrupt or truncated"):
        task_module.load_molecules(tiny)


@pytest.mark.parametrize("width", [0.5, 1.0, 2.0])
def test_model_widths_and_padding_invariance(width: float, tiny: Path) -> None:
    data = Qm9().load("paper", tiny, seed=0)
    model = Qm9().make_model("smoke", width, None).eval()
    x = data.train.x[:8]
    assert model(x).shape == (8,) and model.embed(x).shape[0] == 8
    # Padding rows with garbage coordinates and types must not change anything.
    noisy = x.clone()
    padding = noisy[..., -1] == 0
    noisy[..., :8][padding] = torch.randn(int(padding.sum()), 8)
    torch.testing.assert_close(model(noisy), model(x))
    # Permuting the atoms does not change the output either.
    perm = torch.randperm(29)
    torch.testing.assert_close(model(x[:, perm]), model(x), atol=1e-5, rtol=1e-4)


def test_reference_transform_is_a_rigid_motion(tiny: Path) -> None:
    x = Qm9().load("paper", tiny, seed=0).train.x[:16]
    y = Qm9().reference_transform(x)
    mask = x[..., -1] > 0
    for i in range(16):
        real_x, real_y = x[i][mask[i], :3], y[i][mask[i], :3]
        torch.testing.assert_close(torch.cdist(real_y, real_y), torch.cdist(real_x, real_x), atol=1e-4, rtol=0)
    assert torch.equal(y[~mask], x[~mask]) and torch.equal(y[..., 3:], x[..., 3:])


def test_smoke_run_on_the_wheel_data(tmp_path: Path) -> None:
    """End to end on the real QM9 of the qm9pack wheel (builds the cache on first use)."""
    assert main(["run", "--tasks", "qm9", "--methods", "erm,fixed", "--profile", "smoke", "--seeds", "0",
                 "--results-dir", str(tmp_path), "--no-progress"]) == 0
    records = store.load_records(tmp_path)
    assert {r["status"] for r in records} == {"ok"}
    for record in records:
        assert record["metric"] == "mae_mev" and record["higher_is_better"] is False
        assert 10 < record["test_metric"] < 2000  # meV
        assert record["invariance"]["agreement"] is None and -10 < record["invariance"]["score"] <= 1


def test_data_root_without_the_files_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="QM9 files missing"):
        Qm9().prepare("quick", empty)
    shutil.rmtree(empty)
