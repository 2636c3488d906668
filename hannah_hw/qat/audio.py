"""Audio helpers for keyword spotting: WAV I/O, resampling, and a pure-torch MFCC
(HTK mel filterbank, log, DCT-II; torchaudio from PyPI would replace the pinned torch)."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import numpy as np
import torch

SAMPLE_RATE = 16000


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes to (mono int16 samples, rate); tolerates the bogus sizes that
    streaming writers (``espeak-ng --stdout``) put in the header."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos, rate, channels, width = 12, None, 1, 2
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            _, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body:body + 16])
            width = bits // 8
        elif cid == b"data":
            if rate is None or width != 2:
                raise ValueError("only 16-bit PCM WAV is supported")
            raw = data[body:body + min(size, len(data) - body)]
            pcm = np.frombuffer(raw[: len(raw) // 2 * 2], "<i2")
            return pcm.reshape(-1, channels)[:, 0].copy(), rate
        pos = body + size + (size & 1)
    raise ValueError("no data chunk")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    return parse_wav(Path(path).read_bytes())


def write_wav(path: Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, "<i2").tobytes())
    Path(path).write_bytes(buf.getvalue())


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    if rate == target:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(x.astype(np.float32), target // g, rate // g).astype(np.float32)


def _mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_filterbank(n_mels: int, n_fft: int, rate: int, fmin: float, fmax: float) -> torch.Tensor:
    """HTK-style triangular filters, (n_mels, n_fft // 2 + 1)."""
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    pts = 700.0 * (10 ** (np.linspace(_mel(fmin), _mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    lo, mid, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return torch.from_numpy(fb.astype(np.float32))


def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II, (n_mfcc, n_mels)."""
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    d = np.cos(np.pi / n_mels * (n + 0.5) * k) * math.sqrt(2.0 / n_mels)
    d[0] /= math.sqrt(2.0)
    return torch.from_numpy(d.astype(np.float32))


class MFCC:
    """MFCC features of 1 s clips: 25 ms windows every 10 ms -> (n_mfcc, 101)."""

    def __init__(self, n_mfcc: int = 40, n_mels: int = 40, n_fft: int = 512, win: int = 400,
                 hop: int = 160, fmin: float = 20.0, fmax: float = 7600.0):
        self.n_fft, self.win, self.hop = n_fft, win, hop
        self.fb = mel_filterbank(n_mels, n_fft, SAMPLE_RATE, fmin, fmax)
        self.dct = dct_matrix(n_mfcc, n_mels)
        self.window = torch.hann_window(win)

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """(N, samples) float in [-1, 1] -> (N, n_mfcc, frames)."""
        spec = torch.stft(audio, self.n_fft, self.hop, self.win, self.window, center=True,
                          return_complex=True).abs() ** 2
        mel = torch.einsum("mf,nft->nmt", self.fb, spec)
        return torch.einsum("cm,nmt->nct", self.dct, torch.log(mel + 1e-6))
