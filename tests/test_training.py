"""Trained networks per data set: the QAT model and the QGraph agree on every output
integer of every test sample, at 8, 4 and 2 bits; the trainer resumes exactly."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import SPACES, run_cli
from hannah_hw.ir.qgraph import QGraph
from hannah_hw.nas.archspec import ArchSpec, build_space
from hannah_hw.nas.functional_operators.executor import BasicExecutor
from hannah_hw.qat.datasets import load_digits
from hannah_hw.qat.pipeline import TrainConfig, build_for, load_data, train_network
from hannah_hw.qat.trainer import FitConfig, fit

BITS = [(8, 8), (4, 4), (2, 2)]


def arch(name, seed, **kw):
    g = build_space(SPACES[name], kw)
    g.sample(seed)
    return ArchSpec.from_graph(SPACES[name], g, kw)


def check_dataset(cfg_kwargs, space, seed):
    base = TrainConfig(**cfg_kwargs)
    data = load_data(base, progress=False)
    _, graph = build_for(arch(space, seed), data)
    for wbits, abits in BITS:
        cfg = TrainConfig(**{**cfg_kwargs, "wbits": wbits, "abits": abits})
        _, _, g, m = train_network(graph, data, cfg, progress=False)
        e = m["bit_exact"]
        assert e["samples"] == len(data.x_test) and e["identical"] == e["outputs"], (wbits, m)
        assert {t.bits for t in g.tensors.values()} <= {abits, 8}
        assert all(int(np.abs(g.param(n, "weight")).max()) <= 2 ** (wbits - 1) - 1
                   for n in g.nodes if n.op in ("conv", "linear"))
    return m


def test_digits_trained_network_is_bit_exact_at_8_4_2_bits():
    m = check_dataset({"dataset": "digits", "epochs": 4, "qat_epochs": 1}, "image", 5)
    assert m["float_accuracy"] > 0.5


@pytest.mark.slow
def test_fashion_trained_network_is_bit_exact_at_8_4_2_bits():
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("dataset-fashion-mnist not installed")  # make setup installs it
    check_dataset({"dataset": "fashion", "epochs": 1, "qat_epochs": 1, "limit": 1500},
                  "image", 2)


@pytest.mark.slow
def test_kws_trained_network_is_bit_exact_at_8_4_2_bits(tmp_path, monkeypatch):
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed")  # make setup installs it
    monkeypatch.setenv("HANNAH_HW_CACHE", str(tmp_path))
    check_dataset({"dataset": "kws", "epochs": 2, "qat_epochs": 1, "kws_clips": 360},
                  "kws", 1)


def test_trainer_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import hannah_hw.qat.trainer as trainer

    data = load_digits()
    g = build_space(SPACES["image"], data.space_kwargs())
    g.sample(1)

    def model():
        torch.manual_seed(0)
        return BasicExecutor(g)

    straight = model()
    fit(straight, data, FitConfig(3, seed=1), progress=False)

    real, calls = trainer.F.cross_entropy, {"n": 0}

    def dies_in_epoch_two(*a, **k):  # the process "dies" part way through epoch 2
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt
        return real(*a, **k)

    ckpt = tmp_path / "c.ckpt"
    monkeypatch.setattr(trainer.F, "cross_entropy", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        fit(model(), data, FitConfig(3, seed=1), ckpt, progress=False)
    monkeypatch.setattr(trainer.F, "cross_entropy", real)
    assert torch.load(ckpt, weights_only=False)["state"]["epoch"] == 1
    resumed = model()
    fit(resumed, data, FitConfig(3, seed=1), ckpt, progress=False)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_train_and_infer_cli(tmp_path):
    out = tmp_path / "run"
    arch("image", 3, input_shape=[1, 1, 8, 8], num_classes=10).save(tmp_path / "arch.json")
    res = run_cli("train", tmp_path / "arch.json", "--dataset", "digits", "--epochs", "3",
                  "--qat-epochs", "1", "--wbits", "4", "--abits", "8", "--out", out, check=True)
    assert "QAT model = QGraph on" in res.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["bit_exact"]["identical"] == metrics["bit_exact"]["outputs"]
    for f in ("float.pt", "qat.pt", "qgraph.json", "qgraph.npz", "arch.json"):
        assert (out / f).is_file()
    g = QGraph.load(out / "qgraph.json")
    run_cli("infer", out / "qgraph.json", "--input", out / "test_inputs.npy", "--output",
            tmp_path / "y.npy", check=True)
    assert np.array_equal(np.load(tmp_path / "y.npy"), np.load(out / "test_outputs.npy"))
    run_cli("infer", out / "qgraph.json", "--input", out / "test_inputs.npy", "--output",
            tmp_path / "yf.npy", "--dequantize", check=True)
    yf = np.load(tmp_path / "yf.npy")
    t = g.tensors[g.outputs[0]]
    assert yf.dtype == np.float32 and np.allclose(yf, np.load(out / "test_outputs.npy") * t.scale)
    xi = np.load(out / "test_outputs.npy")  # integers are taken as they are
    np.save(tmp_path / "xi.npy", np.zeros((2, 1, 8, 8), np.int64))
    run_cli("infer", out / "qgraph.json", "--input", tmp_path / "xi.npy", "--output",
            tmp_path / "y0.npy", check=True)
    assert np.load(tmp_path / "y0.npy").shape == (2, *xi.shape[1:])
    # rerun: resumes from the checkpoints and gives the same graph
    run_cli("train", tmp_path / "arch.json", "--dataset", "digits", "--epochs", "3",
            "--qat-epochs", "1", "--wbits", "4", "--abits", "8", "--out", out, check=True)
    g2 = QGraph.load(out / "qgraph.json")
    assert all(np.array_equal(g.arrays[k], g2.arrays[k]) for k in g.arrays)
