"""Training checkpoints resume, and a checkpoint that carries a pickled object is refused
instead of run (torch.load with weights_only)."""


import pytest
import torch
from torch import nn

from hannah_hw.qat.dataset import Dataset
from hannah_hw.qat.trainer import CheckpointError, FitConfig, fit


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    return Dataset("toy", x, (x[:, 0] > 0).long(), x[:8], (x[:8, 0] > 0).long(), ["neg", "pos"])


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_checkpoint_resumes_and_a_pickled_object_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    h1 = fit(net, _data(), FitConfig(epochs=1), ckpt, progress=False)
    h2 = fit(net, _data(), FitConfig(epochs=2), ckpt, progress=False)
    assert [e["epoch"] for e in h2["history"]] == [1, 2] and h1["history"][0] == h2["history"][0]
    saved = torch.load(ckpt, weights_only=True)
    saved["state"]["evil"] = _Evil()
    torch.save(saved, ckpt)
    with pytest.raises(CheckpointError, match="not a hannah-hw training checkpoint"):
        fit(net, _data(), FitConfig(epochs=3), ckpt, progress=False)
    ckpt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="delete it"):
        fit(net, _data(), FitConfig(epochs=3), ckpt, progress=False)
