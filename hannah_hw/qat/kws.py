"""Keyword spotting data: a Speech-Commands-like set synthesised offline with Debian's TTS
engines (espeak-ng accents x voice variants, flite, festival), varied in speed and pitch,
placed at a random offset in 1 s, mixed with noise; split so that no voice is in both train
and test. Generated once per configuration, in parallel, cached as MFCC features. The same
loader reads the real Google Speech Commands layout when given ``data_dir``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
from pathlib import Path

import numpy as np
import torch

from hannah_hw.util.paths import cache_dir
from hannah_hw.util.proc import die_with_parent, run

from .audio import MFCC, SAMPLE_RATE, parse_wav, read_wav, resample
from .dataset import Dataset, DatasetError

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
           "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero",
           "learn", "follow", "forward", "backward", "visual"]
CLASSES = ["_silence_", "_unknown_", *KEYWORDS]
ESPEAK_ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                  "en-gb-x-gbcwmd", "en-029"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
VERSION = 1


def cache_root() -> Path:
    return cache_dir()


def espeak_variants() -> list[str]:
    out = run(["espeak-ng", "--voices=variant"], capture_output=True, text=True)
    names = [ln.split()[3] for ln in out.stdout.splitlines()[1:] if len(ln.split()) > 3]
    return sorted({n.removeprefix("!v/") for n in names})


def voices(engines: tuple[str, ...]) -> list[str]:
    """Every voice identity: ``engine:voice`` (espeak: ``espeak:accent+variant``)."""
    result = []
    if "espeak" in engines:
        result += [f"espeak:{a}+{v}" for a in ESPEAK_ACCENTS for v in espeak_variants()]
    if "flite" in engines:
        result += [f"flite:{v}" for v in FLITE_VOICES]
    if "festival" in engines:
        result += [f"festival:{v}" for v in FESTIVAL_VOICES]
    return result


def is_test_voice(voice: str, test_fraction: float) -> bool:
    """Hold out whole voices; espeak variants are held out across all accents."""
    timbre = voice.split("+")[-1] if voice.startswith("espeak:") else voice
    h = int(hashlib.sha1(timbre.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < test_fraction


def synthesize(voice: str, word: str, speed: float, pitch: float) -> np.ndarray:
    """Float samples at 16 kHz; ``speed`` ~1 (duration factor), ``pitch`` in [0, 1]."""
    engine, name = voice.split(":", 1)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "w.wav"
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", name, "-s", str(int(170 / speed)), "-p",
                   str(int(20 + 60 * pitch)), "-w", str(wav), word]
        elif engine == "flite":
            cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={speed:.2f}",
                   "--setf", f"int_f0_target_mean={int(80 + 90 * pitch)}", "-t", word,
                   "-o", str(wav)]
        else:
            (Path(tmp) / "t.txt").write_text(word)
            cmd = ["text2wave", "-eval", f"(voice_{name})", "-F", str(SAMPLE_RATE), "-o",
                   str(wav), str(Path(tmp) / "t.txt")]
        run(cmd, check=True, capture_output=True, timeout=60)
        pcm, rate = parse_wav(wav.read_bytes())
    return resample(pcm, rate) / 32768.0


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise, unit RMS."""
    kind = rng.integers(3)
    white = rng.standard_normal(n)
    if kind == 0:
        x = white
    else:
        spec = np.fft.rfft(white)
        f = np.maximum(np.arange(len(spec)), 1)
        x = np.fft.irfft(spec / (np.sqrt(f) if kind == 1 else f), n)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def make_clip(spec: dict) -> np.ndarray:
    """One augmented 1 s clip as int16."""
    rng = np.random.default_rng(spec["seed"])
    out = np.zeros(SAMPLE_RATE, np.float32)
    if spec["word"] is not None:
        speech = synthesize(spec["voice"], spec["word"], spec["speed"], spec["pitch"])
        idx = np.nonzero(np.abs(speech) > 0.02 * (np.abs(speech).max() + 1e-9))[0]
        speech = speech[idx[0]:idx[-1] + 1] if len(idx) else speech
        speech = speech[:SAMPLE_RATE]
        start = int(rng.integers(0, SAMPLE_RATE - len(speech) + 1))
        out[start:start + len(speech)] = speech / (np.abs(speech).max() + 1e-9) * \
            rng.uniform(0.3, 0.9)
        rms = np.sqrt(np.mean(out ** 2)) + 1e-9
        out += noise(rng, SAMPLE_RATE) * rms / 10 ** (rng.uniform(5, 30) / 20)
    else:
        out += noise(rng, SAMPLE_RATE) * rng.uniform(0.0, 0.1)
    return np.clip(out * 32767, -32768, 32767).astype(np.int16)


def plan(n_clips: int, seed: int, engines: tuple[str, ...], test_fraction: float) -> list[dict]:
    """What to synthesise: balanced keywords, ~1/12 unknown words and ~1/12 silence."""
    rng = np.random.default_rng(seed)
    all_voices = voices(engines)
    festival = [v for v in all_voices if v.startswith("festival:")]
    others = [v for v in all_voices if not v.startswith("festival:")]
    specs = []
    for i in range(n_clips):
        label = i % len(CLASSES)
        word = None if label == 0 else (
            UNKNOWN[rng.integers(len(UNKNOWN))] if label == 1 else CLASSES[label])
        pool = festival if festival and rng.random() < 0.03 else others  # festival is slow
        voice = pool[rng.integers(len(pool))]
        specs.append({"word": word, "label": label, "voice": voice,
                      "speed": float(rng.uniform(0.8, 1.25)), "pitch": float(rng.random()),
                      "seed": int(rng.integers(2 ** 31)),
                      "test": is_test_voice(voice, test_fraction)})
    return specs


def _check_engines(engines) -> None:
    need = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
    missing = [need[e] for e in engines if shutil.which(need[e]) is None]
    if missing:
        raise DatasetError(f"keyword spotting synthesis needs {', '.join(missing)}: install "
                           "the Debian packages espeak-ng flite festival festvox-kallpc16k "
                           "festvox-kdlpc16k festvox-us-slt-hts (make setup does), or pass "
                           "--data-dir with Google Speech Commands")


def features(audio: np.ndarray, batch: int = 512) -> torch.Tensor:
    mfcc = MFCC()
    out = [mfcc(torch.from_numpy(audio[i:i + batch].astype(np.float32) / 32768.0))
           for i in range(0, len(audio), batch)]
    return torch.cat(out) if out else torch.zeros(0, 40, 101)


def synthesize_set(n_clips: int, seed: int, engines: tuple[str, ...], test_fraction: float,
                   workers: int, progress: bool = True) -> dict[str, np.ndarray]:
    from tqdm import tqdm

    _check_engines(engines)
    specs = plan(n_clips, seed, engines, test_fraction)
    ctx = mp.get_context("fork")
    # workers start from this thread and die with this process (a killed run leaves none)
    with ctx.Pool(workers, die_with_parent, (signal.SIGKILL, os.getpid())) as pool:
        audio = list(tqdm(pool.imap(make_clip, specs, chunksize=16), total=len(specs),
                          desc="synthesising keyword clips", disable=not progress))
    return {"audio": np.stack(audio), "label": np.array([s["label"] for s in specs]),
            "test": np.array([s["test"] for s in specs]),
            "voice": np.array([s["voice"] for s in specs])}


def load_speech_commands(data_dir: Path, seed: int, limit: int | None) -> dict[str, np.ndarray]:
    """The Google Speech Commands folder layout (word folders, testing_list.txt)."""
    if not data_dir.is_dir():
        raise DatasetError(f"--data-dir {data_dir} is not a directory")
    testing = set()
    if (data_dir / "testing_list.txt").is_file():
        testing = set((data_dir / "testing_list.txt").read_text().split())
    files = sorted(p for p in data_dir.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not files:
        raise DatasetError(f"{data_dir}: no <word>/*.wav files (Speech Commands layout)")
    rng = np.random.default_rng(seed)
    if limit and len(files) > limit:
        files = [files[i] for i in sorted(rng.choice(len(files), limit, replace=False))]
    audio, label, test, voice = [], [], [], []
    for p in files:
        pcm, rate = read_wav(p)
        x = resample(pcm, rate).astype(np.int16)[:SAMPLE_RATE]
        audio.append(np.pad(x, (0, SAMPLE_RATE - len(x))))
        word = p.parent.name
        label.append(CLASSES.index(word) if word in KEYWORDS else 1)
        rel = f"{word}/{p.name}"
        test.append(rel in testing)
        voice.append(p.name.split("_nohash_")[0])
    noise_files = sorted((data_dir / "_background_noise_").glob("*.wav"))
    n_sil = max(1, len(files) // len(CLASSES))
    for i in range(n_sil if noise_files else 0):
        pcm, rate = read_wav(noise_files[i % len(noise_files)])
        x = resample(pcm, rate)
        start = int(rng.integers(0, max(1, len(x) - SAMPLE_RATE)))
        clip = (x[start:start + SAMPLE_RATE] * rng.uniform(0, 1)).astype(np.int16)
        audio.append(np.pad(clip, (0, SAMPLE_RATE - len(clip))))
        label.append(0)
        test.append(i % 10 == 0)
        voice.append("_background_noise_")
    return {"audio": np.stack(audio), "label": np.array(label), "test": np.array(test),
            "voice": np.array(voice)}


def load_kws(n_clips: int = 20000, seed: int = 0, data_dir: str | Path | None = None,
             engines: tuple[str, ...] = ("espeak", "flite", "festival"),
             test_fraction: float = 0.2, workers: int | None = None, progress: bool = True,
             limit: int | None = None, **_ignored) -> Dataset:
    """MFCC features (40 x 101, standardised with training statistics) and labels."""
    config = {"n": limit or n_clips, "seed": seed, "engines": list(engines),
              "test_fraction": test_fraction, "v": VERSION,
              "data_dir": str(Path(data_dir).resolve()) if data_dir else None}
    key = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    cache = cache_root() / "kws" / f"{key}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            feats, label, test = torch.from_numpy(z["features"].astype(np.float32)), \
                torch.from_numpy(z["label"]), torch.from_numpy(z["test"])
    else:
        if data_dir:
            raw = load_speech_commands(Path(data_dir), seed, limit)
        else:
            raw = synthesize_set(config["n"], seed, tuple(engines), test_fraction,
                                 workers or min(2, os.cpu_count() or 1), progress)
        feats, label, test = features(raw["audio"]), torch.from_numpy(raw["label"]), \
            torch.from_numpy(raw["test"])
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")  # two runs at once
        np.savez(tmp, features=feats.numpy().astype(np.float16), label=raw["label"],
                 test=raw["test"], voice=raw["voice"], config=json.dumps(config))
        os.replace(tmp, cache)
    if test.all() or not test.any():
        raise DatasetError("the keyword data has no train/test split (too few voices or clips)")
    tr, te = ~test, test
    mean = feats[tr].mean(dim=(0, 2), keepdim=True)
    std = feats[tr].std(dim=(0, 2), keepdim=True) + 1e-5
    norm = (feats - mean) / std
    return Dataset("kws", norm[tr], label[tr].long(), norm[te], label[te].long(), CLASSES)
