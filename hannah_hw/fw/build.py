"""Building an FWDIR for the host or the RV32 SoC, running the host program, and what a run
on the SoC reads from an FWDIR (its SoC, its image, its inputs); the run itself is a stage
(stages/soc_sim.py), which picks the FPGA family the SoC is built as."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import AccelConfig, ConfigError
from hannah_hw.soc.cores import CPU_ISAS
from hannah_hw.util.jsonfile import Record, read_object, show
from hannah_hw.util.proc import run

RAM_SIZES = tuple(1 << k for k in range(15, 22))  # bytes, 32 KiB to 2 MiB: the smallest it fits
RV_GCC = "riscv64-unknown-elf-gcc"


class FirmwareError(RuntimeError):
    """A firmware that does not build, or a host program that failed."""


def _make(fwdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["make", "-s", "-C", str(fwdir), *args], tree=True, capture_output=True,
               text=True)


def _first_error(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.startswith(("make", "cppcheck "))]
    lines = [ln for ln in lines if ": error" in ln or ": style" in ln or ": warning" in ln
             or "overflowed" in ln] or lines
    return lines[0].strip() if lines else "no output"


def build_firmware(fwdir: Path, target: str, isa: str | None = None, reference: bool = True,
                   cpu: str = "picorv32") -> dict:
    """``make host`` or ``make rv32`` for ``isa`` (default: the widest ``cpu`` runs) in the
    smallest RAM it fits (without the reference kernels and their model copy unless
    ``reference``), then ``make check`` (cppcheck) when cppcheck is installed. Returns the
    build record (firmware.json); the SoC it runs on has ``cpu`` for its core."""
    fwdir = Path(fwdir)
    record: dict = {"target": target}
    if target == "host":
        r = _make(fwdir, "host")
        if r.returncode:
            raise FirmwareError(f"the host build failed: {_first_error(r.stderr)}")
    elif target == "rv32":
        if shutil.which(RV_GCC) is None:
            raise FirmwareError(f"{RV_GCC} is not installed: run 'make setup' (Debian packages "
                                "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)")
        if cpu not in CPU_ISAS:
            raise FirmwareError(f"unknown core {cpu!r}: one of {', '.join(CPU_ISAS)}")
        isa = isa or CPU_ISAS[cpu][0]
        if isa not in CPU_ISAS[cpu]:
            raise FirmwareError(f"ISA {isa!r} does not run on {cpu}: one of "
                                f"{', '.join(CPU_ISAS[cpu])}")
        for ram in RAM_SIZES:
            (fwdir / "hh_fw.elf").unlink(missing_ok=True)
            r = _make(fwdir, "rv32", f"RAM_SIZE={ram:#x}", f"ARCH={isa}",
                      f"REF={int(reference)}")
            if r.returncode == 0 or "overflowed" not in r.stderr:
                break
        if r.returncode:
            raise FirmwareError(f"the rv32 build failed: {_first_error(r.stderr)}")
        record.update(isa=isa, cpu=cpu, reference=reference, ram_bytes=ram,
                      size=size_report(fwdir))
    else:
        raise FirmwareError(f"unknown target {target!r}: host or rv32")
    if shutil.which("cppcheck"):
        r = _make(fwdir, "check")
        if r.returncode:
            raise FirmwareError(f"cppcheck: {_first_error(r.stderr + r.stdout)}")
        record["cppcheck"] = "clean"
    old = _record(fwdir, strict=False)
    old[target] = record
    (fwdir / "firmware.json").write_text(json.dumps(old, indent=2) + "\n")
    return record


def _record(fwdir: Path, strict: bool = True) -> dict:
    """firmware.json: the build record of each target ({} before the first build). A reader
    refuses one that is not a JSON object (``strict``); a build replaces it."""
    p = Path(fwdir) / "firmware.json"
    if not p.exists():
        return {}
    try:
        return read_object(p, FirmwareError, "a firmware directory's build record").data
    except FirmwareError:
        if strict:
            raise
        return {}


def size_report(fwdir: Path) -> dict:
    """text/data/bss bytes of the ELF, and the bytes of the model's arrays."""
    fwdir = Path(fwdir)
    secs = {}
    for line in (fwdir / "hh_fw.size").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            secs[parts[0]] = int(parts[1])
    nm = run(["riscv64-unknown-elf-nm", "-S", str(fwdir / "hh_fw.elf")],
             capture_output=True, text=True).stdout
    sym = {p[3]: int(p[1], 16) for p in (ln.split() for ln in nm.splitlines()) if len(p) == 4}
    acc = sum(sym.get(s, 0) for s in ("hh_desc_words", "hh_param_words", "hh_weight_words"))
    ref = sum(sym.get(s, 0) for s in ("hh_ref_desc", "hh_ref_weights", "hh_ref_params"))
    return {"text": secs.get(".text", 0), "rodata": secs.get(".rodata", 0),
            "data": secs.get(".data", 0), "bss": secs.get(".bss", 0),
            "model_bytes_accel": acc, "model_bytes_reference": ref,
            "weight_bytes": sym.get("hh_weight_words", 0)}


def hwdir_of(fwdir: Path) -> Path:
    """The HWDIR an FWDIR was emitted from (hwdir.json)."""
    p = Path(fwdir) / "hwdir.json"
    if not p.exists():
        raise ConfigError(f"{fwdir}: not a firmware directory (hwdir.json missing); run "
                          "'hannah-hw firmware' first")
    rec = read_object(p, ConfigError, "a firmware directory's link to its HWDIR")
    hwdir = rec.get("hwdir", str)
    if not hwdir or "\0" in hwdir:
        rec.fail(f"hwdir is {show(hwdir)}; must be the path of a hardware directory")
    return Path(hwdir)


def run_host(fwdir: Path, x: np.ndarray, out_shape: tuple) -> np.ndarray:
    """Integer inputs through the host program (reference kernels)."""
    exe = Path(fwdir) / "hh_host"
    if not exe.is_file():
        raise FirmwareError(f"{fwdir}: no host build; run 'hannah-hw firmware --target host'")
    with tempfile.TemporaryDirectory() as tmp:
        fi, fo = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        np.asarray(x, np.int32).tofile(fi)
        r = run([str(exe), str(fi), str(fo)], capture_output=True, text=True)
        if r.returncode:
            raise FirmwareError(f"the host program failed: {r.stderr.strip()}")
        return np.fromfile(fo, np.int32).astype(np.int64).reshape(len(x), *out_shape)


def pack_inputs(x: np.ndarray) -> np.ndarray:
    """Inputs as the firmware's byte buffers: four values per little-endian word."""
    x = np.asarray(x, np.int64).reshape(len(x), -1)
    b = (x & 0xFF).astype(np.uint8)
    b = np.pad(b, ((0, 0), (0, -b.shape[1] % 4)))
    return b.reshape(len(x), -1).view("<u4")


def soc_config(fwdir: Path) -> tuple[AccelConfig, int, str, str]:
    """The accelerator, RAM bytes, ISA and core of the SoC an rv32 build runs on."""
    rec = _record(fwdir)
    if rec.get("rv32") is None:
        raise FirmwareError(f"{fwdir}: no rv32 build; run 'hannah-hw firmware --target rv32'")
    rv = Record(rec, Path(fwdir) / "firmware.json", FirmwareError).obj("rv32")
    ram = rv.get("ram_bytes", int)
    if ram not in RAM_SIZES:
        rv.fail(f"rv32.ram_bytes is {show(ram)}; must be one of {', '.join(map(str, RAM_SIZES))}")
    cpu = rv.choice("cpu", tuple(CPU_ISAS), "picorv32")
    isa = rv.choice("isa", CPU_ISAS[cpu], CPU_ISAS[cpu][0])
    return AccelConfig.load(hwdir_of(fwdir) / "config.json"), ram, isa, cpu


def soc_image(fwdir: Path, ram: int) -> bytes:
    """hh_fw.bin, the rv32 build's RAM image: present, and within the SoC's ``ram`` bytes."""
    p = Path(fwdir) / "hh_fw.bin"
    if not p.is_file():
        raise FirmwareError(f"{p}: {'not a file' if p.exists() else 'missing'}; run "
                            "'hannah-hw firmware --target rv32'")
    image = p.read_bytes()
    if not image or len(image) > ram:
        raise FirmwareError(f"{p}: {len(image):,} bytes; an image takes 1 to the {ram:,} bytes "
                            "of the SoC's RAM (firmware.json)")
    return image
