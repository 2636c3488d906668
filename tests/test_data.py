"""Data sets: the Speech Commands layout, the synthesiser's voice split, QGraph files."""

import json
import shutil

import numpy as np
import pytest

from conftest import run_cli
from hannah_hw.ir.qgraph import QGraph, QGraphError, from_dict
from hannah_hw.qat.audio import MFCC, parse_wav, write_wav
from hannah_hw.qat.dataset import DatasetError
from hannah_hw.qat.datasets import load_dataset, read_idx
from hannah_hw.qat.kws import CLASSES, is_test_voice, load_kws, plan


def test_speech_commands_layout_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HANNAH_HW_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "sc"
    rng = np.random.default_rng(0)
    tests = []
    for word in ("yes", "no", "bed", "stop"):
        (root / word).mkdir(parents=True)
        for spk in range(4):
            f = f"spk{spk}_nohash_0.wav"
            write_wav(root / word / f, (rng.normal(0, 3000, 16000)).astype(np.int16))
            if spk == 3:
                tests.append(f"{word}/{f}")
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white.wav", rng.normal(0, 2000, 48000).astype(
        np.int16))
    (root / "testing_list.txt").write_text("\n".join(tests))
    d = load_kws(data_dir=root, progress=False)
    assert d.x_train.shape[1:] == (40, 101) and len(d.x_test) >= 4
    labels = set(d.y_train.tolist()) | set(d.y_test.tolist())
    assert {CLASSES.index("yes"), CLASSES.index("no"), CLASSES.index("stop"),
            CLASSES.index("_unknown_"), CLASSES.index("_silence_")} <= labels


def test_synthesis_plan_keeps_voices_apart():
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed")
    specs = plan(600, 0, ("espeak", "flite"), 0.2)
    train = {s["voice"] for s in specs if not s["test"]}
    test = {s["voice"] for s in specs if s["test"]}
    assert train and test and not train & test
    assert all(is_test_voice(v, 0.2) for v in test)
    counts = np.bincount([s["label"] for s in specs], minlength=len(CLASSES))
    assert counts.min() == counts.max() == 50


def test_wav_parsing_tolerates_streaming_headers(tmp_path):
    write_wav(tmp_path / "a.wav", np.arange(100, dtype=np.int16))
    data = bytearray((tmp_path / "a.wav").read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # espeak-ng --stdout writes this
    pcm, rate = parse_wav(bytes(data))
    assert rate == 16000 and pcm.tolist() == list(range(100))


def test_mfcc_shape_and_finite():
    x = np.random.default_rng(0).normal(0, 0.1, (3, 16000)).astype(np.float32)
    import torch

    f = MFCC()(torch.from_numpy(x))
    assert f.shape == (3, 40, 101) and torch.isfinite(f).all()


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset("cifar")
    (tmp_path / "bad-idx").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DatasetError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "bad-idx")


def _tiny_graph(tmp_path):
    d = {"format": "hannah-hw-qgraph", "format_version": 1, "name": "t", "inputs": ["x"],
         "outputs": ["y"],
         "tensors": {"x": {"shape": [4], "bits": 8, "signed": True, "scale_m": 1,
                           "scale_e": -4, "zero_point": 0},
                     "y": {"shape": [2], "bits": 8, "signed": True, "scale_m": 1,
                           "scale_e": -3, "zero_point": 0}},
         "nodes": [{"op": "linear", "name": "fc", "inputs": ["x"], "output": "y",
                    "attrs": {"relu": False, "wbits": 4},
                    "params": {"weight": "w", "bias": "b", "m": "m", "sh": "sh"}}],
         "arrays": {}}
    arrays = {"w": np.array([[1, -2, 3, 7], [0, 1, -7, 2]], np.int8),
              "b": np.array([3, -5], np.int64), "m": np.array([1, 1], np.int64),
              "sh": np.array([2, 3], np.int32)}
    d["arrays"] = {k: {"dtype": str(a.dtype), "shape": list(a.shape)} for k, a in arrays.items()}
    return d, arrays


def test_qgraph_round_trip_and_checker(tmp_path):
    d, arrays = _tiny_graph(tmp_path)
    g = from_dict(d, arrays)
    g.save(tmp_path / "g.json")
    g2 = QGraph.load(tmp_path / "g.json")
    assert g2.to_dict() == g.to_dict() and g2.macs() == 8
    bad = json.loads(json.dumps(d))
    bad["format_version"] = 7
    with pytest.raises(QGraphError, match="format_version"):
        from_dict(bad, arrays)
    arrays_bad = {**arrays, "w": np.array([[1, -2, 3, 9], [0, 1, -7, 2]], np.int8)}
    from hannah_hw.ir.qgraph import check

    with pytest.raises(QGraphError, match=r"node fc \(linear\): weights outside the 4-bit"):
        check(from_dict(d, arrays_bad))
    bad = json.loads(json.dumps(d))
    bad["nodes"][0]["inputs"] = ["nope"]
    with pytest.raises(QGraphError, match="input 'nope' is not defined"):
        check(from_dict(bad, arrays))
    bad = json.loads(json.dumps(d))
    bad["tensors"]["y"]["shape"] = [3]
    with pytest.raises(QGraphError, match=r"output shape \(3,\)"):
        check(from_dict(bad, arrays))


def test_bad_input_to_the_cli_is_one_line(tmp_path):
    d, arrays = _tiny_graph(tmp_path)
    from_dict(d, arrays).save(tmp_path / "g.json")
    np.save(tmp_path / "x.npy", np.zeros((2, 5), np.float32))
    (tmp_path / "broken.json").write_text("{not json")
    cases = [
        (["infer", tmp_path / "g.json", "--input", tmp_path / "x.npy", "--output",
          tmp_path / "y.npy"], "does not fit the graph's input (N, 4)"),
        (["infer", tmp_path / "broken.json", "--input", tmp_path / "x.npy", "--output",
          tmp_path / "y.npy"], "not JSON"),
    ]
    for args, msg in cases:
        r = run_cli(*args)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("train", "nas/kws_tcresnet8.json", "--dataset", "digits", "--wbits", "9",
                "--out", tmp_path / "r")  # click's usage error: exit 2, no traceback
    assert r.returncode == 2 and "'--wbits': 9 is not in the range 2<=x<=8" in r.stderr
    np.save(tmp_path / "xi.npy", np.full((1, 4), 300, np.int64))
    r = run_cli("infer", tmp_path / "g.json", "--input", tmp_path / "xi.npy", "--output",
                tmp_path / "y.npy")
    assert r.returncode == 2 and "outside the input's range [-128, 127]" in r.stderr
    np.save(tmp_path / "xi.npy", np.array([[16, -32, 5, 1]], np.int64))
    run_cli("infer", tmp_path / "g.json", "--input", tmp_path / "xi.npy", "--output",
            tmp_path / "y.npy", check=True)
    # 16 + 64 + 15 + 7 + 3 = 105 -> (105 + 2) >> 2 = 26; 0 - 32 - 35 + 2 - 5 = -70 ->
    # (-70 + 4) >> 3 = -9 (arithmetic shift floors)
    assert np.load(tmp_path / "y.npy").tolist() == [[26, -9]]
