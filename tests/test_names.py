"""Hostile names (issue 14): strings from a model file or a flow file must reach no generated
C, Verilog, Makefile, Markdown, HTML, ONNX name, file name or terminal line as they are.
Unit tests of hannah_hw/util/names.py, then one QGraph whose every name is hostile pushed
through every emitter: it still loads and runs, the firmware builds with -Werror and is
bit-exact, and no payload survives anywhere."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hannah_hw.util.names import (
    KEYWORDS,
    MAX_IDENT,
    c_string,
    file_stem,
    md_text,
    printable,
    safe_ident,
)

HOSTILE = [
    'x*/ __attribute__((constructor)) static void p(void){system("touch MARK");} /*',
    'a\n#include "/etc/passwd"\n',
    "\"'\\",
    "$(touch MARK)",
    "`touch MARK`",
    "../../etc/x",
    "L" * 300,
    "Ω–名",
    "??/\n#define HH_N_LAYERS 0",  # a trigraph: ??/ is a backslash in C99
    "\x1b[2J\u202eevil\r\x00",  # terminal escape, bidi override, carriage return, NUL
    "\ud800",  # a lone surrogate, valid in JSON
    "-rf .hidden",
    "", "int", "_", "0", "a__b",
]
# what must not appear in any generated text: the dangerous parts of each payload
TRACES = ["((constructor", "*/ __", '#include "/etc', "$(touch", "`touch", "../../etc",
          "L" * 60, "Ω", "名", "??/", "\x1b", "\u202e", "\x00", "\"'\\", "-rf .hidden"]
IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_ident_is_a_bounded_plain_identifier(text):
    s = safe_ident(text)
    assert IDENT.match(s) and "__" not in s and not s.endswith("_")
    assert len(s) <= MAX_IDENT and s not in KEYWORDS and s == safe_ident(text)
    assert len(safe_ident(text, 12)) <= 12


def test_safe_ident_keeps_ordinary_names_and_distinct_names_distinct():
    for ok in ("conv1", "kws_tcresnet", "Conv1d_0", "x"):
        assert safe_ident(ok) == ok
    near = ["a b", "a-b", "a.b", "a_b", "a__b", "_a_b", "a b ", "a/b", "A_b"]
    assert len({safe_ident(t) for t in near}) == len(near)
    assert len({safe_ident("L" * 300 + c) for c in "ab"}) == 2


@pytest.mark.parametrize("text", HOSTILE)
def test_file_stem_is_one_harmless_component(text):
    s = file_stem(text)
    assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", s) and ".." not in s
    assert s[0] not in ".-" and s == file_stem(text)


def test_file_stem_keeps_ordinary_names():
    assert file_stem("trial_00001.json") == "trial_00001.json"
    assert file_stem("..") != file_stem("._") and file_stem(".") != ""


@pytest.mark.parametrize("text", HOSTILE)
def test_printable_and_markdown_are_one_inert_line(text):
    p, m = printable(text), md_text(text)
    assert len(p) <= 80 and p.isprintable()
    assert m.isprintable() and "<" not in m and "\n" not in m
    assert re.search(r"(?<!\\)[|`\[\]]", m) is None  # table, code and link syntax escaped


def test_c_string_round_trips_every_byte(tmp_path):
    """c_string is lossless: a C program prints exactly the original bytes back."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    texts = [t for t in HOSTILE if t and "\x00" not in t]
    for t in texts:
        assert not {"\n", '"', "?", "*"} & set(c_string(t)[1:-1])
    src = ("#include <stdio.h>\nstatic const char *const s[] = {"
           + ", ".join(map(c_string, texts)) + "};\nint main(void) {\n  unsigned i;\n"
           "  for (i = 0; i < sizeof s / sizeof *s; i++) printf(\"%s%c\", s[i], 0);\n"
           "  return 0;\n}\n")
    (tmp_path / "s.c").write_text(src)
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o",
                    str(tmp_path / "s"), str(tmp_path / "s.c")], check=True)
    out = subprocess.run([str(tmp_path / "s")], capture_output=True, check=True).stdout
    assert out.split(b"\0")[:-1] == [t.encode("utf-8", "surrogatepass") for t in texts]


# ---- end to end: one graph, every name hostile, every emitter ----

def _hostile_graph(qg, mark: Path):
    """``qg`` with every graph, node, tensor and array name replaced by a hostile one (made
    unique by a suffix), consistently."""
    from hannah_hw.ir.qgraph import QGraph

    pool = [h.replace("MARK", str(mark)) for h in HOSTILE]
    it = iter(range(10 ** 6))

    def new(_old):
        i = next(it)
        return f"{pool[i % len(pool)]}#{i}"

    tn = {k: new(k) for k in qg.tensors}
    # array keys are .npz (zip) member names, which cannot hold NUL or lone surrogates
    an = {k: new(k).replace("\ud800", "?").replace("\0", "?") for k in qg.arrays}
    nodes = tuple(dataclasses.replace(n, name=new(n.name), output=tn[n.output],
                                      inputs=tuple(tn[i] for i in n.inputs),
                                      params={r: an[k] for r, k in n.params.items()})
                  for n in qg.nodes)
    return QGraph(pool[0], tuple(tn[i] for i in qg.inputs), tuple(tn[o] for o in qg.outputs),
                  {tn[k]: v for k, v in qg.tensors.items()}, nodes,
                  {an[k]: v for k, v in qg.arrays.items()}, qg.meta)


def _scan(root: Path) -> list[str]:
    """Every trace of a payload in the text files under ``root``, and every file name that is
    not plain. JSON files are data (the names are kept there, JSON-escaped) and skipped; the
    report's Markdown and HTML keep names readable, escaped, and are checked apart."""
    bad = []
    for f in sorted(root.rglob("*")):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", f.name):
            bad.append(f"file name {f}")
        if not f.is_file() or f.suffix in (".json", ".npz", ".npy", ".onnx", ".png", ".bin"):
            continue
        data = f.read_bytes()
        if b"\0" in data:  # an executable or object file
            continue
        text = data.decode("utf-8", "replace")
        bad += [f"{f}: {t!r}" for t in TRACES if t in text]
    return bad


def test_hostile_names_through_every_emitter(tmp_path):
    from click.testing import CliRunner
    from test_accel_model import lowered
    from test_qat import every_op_1d

    from hannah_hw.accel.config import derive_config
    from hannah_hw.accel.program import compile_program
    from hannah_hw.cli import main
    from hannah_hw.fw.build import build_firmware, run_host
    from hannah_hw.fw.emit import emit_firmware, model_sources
    from hannah_hw.ir.interpreter import quantize_input, run
    from hannah_hw.ir.onnx_export import export_onnx
    from hannah_hw.ir.qgraph import QGraph
    from hannah_hw.report import write_report
    from hannah_hw.stages.generate import generate

    mark = tmp_path / "pwned"
    qg, x = lowered(every_op_1d, n=4)
    xi = quantize_input(qg, x)
    out = tmp_path / "out"
    # names are data in the QGraph: it saves, loads and runs as the original does
    hg = QGraph.load(_hostile_graph(qg, mark).save(tmp_path / "g" / "hostile.json"))
    assert hg.name == HOSTILE[0].replace("MARK", str(mark))
    assert np.array_equal(run(hg, xi), run(qg, xi))

    # the model's C differs from the original's only by the (reduced) name
    cfg = derive_config(qg, pe_cols=4)
    plain = model_sources(qg, cfg, compile_program(qg, cfg))
    hostile = model_sources(hg, cfg, compile_program(hg, cfg))
    for a, b in zip(plain, hostile):
        drop = re.compile(r"^(/\* Generated|#define HH_NETWORK_NAME).*\n", re.M)
        assert drop.sub("", a) == drop.sub("", b)

    summary = generate(hg, out / "hw", pe_cols=4)
    emit_firmware(out / "hw", out / "fw")
    build_firmware(out / "fw", "host")  # -Werror -pedantic; cppcheck when installed
    y = run_host(out / "fw", xi, hg.tensors[hg.outputs[0]].shape)
    assert np.array_equal(y, run(qg, xi))
    assert re.search(r'#define HH_NETWORK_NAME "x_[A-Za-z0-9_]+"\n',
                     (out / "fw" / "hh_model.h").read_text())

    model = export_onnx(hg, out / "model.onnx")
    names = [model.graph.name] + [n.name for n in model.graph.node] + \
        [t for n in model.graph.node for t in (*n.input, *n.output)] + \
        [i.name for i in model.graph.initializer]
    assert all(IDENT.match(s) for s in names), [s for s in names if not IDENT.match(s)][:3]
    assert [n.op_type for n in model.graph.node] == \
        [n.op_type for n in export_onnx(qg, tmp_path / "plain.onnx").graph.node]

    r = CliRunner().invoke(main, ["cost", str(tmp_path / "g" / "hostile.json"), "--pe-cols",
                                  "4"])
    assert r.exit_code == 0, r.output
    layers = [ln for ln in r.output.splitlines() if " cycles  U " in ln]
    assert len(layers) == len(hg.nodes) and all(ln.isprintable() for ln in layers)

    run_dir = out / "run"
    run_dir.mkdir()
    stage = {"key": "k", "seconds": 1.0, "finished": "now", "result": summary}
    (run_dir / "flow.json").write_text(json.dumps(
        {"config": {"name": hg.name, "space": HOSTILE[1] + "|<script>x</script>[a](b)"},
         "stages": {"generate": stage}}))
    write_report(run_dir)
    md = (run_dir / "report.md").read_text()
    assert "<script>" not in md and "<script>" not in (run_dir / "report.html").read_text()
    assert all(ln.count("|") - ln.count("\\|") == 3 for ln in md.splitlines()
               if ln.startswith("| ") and "---" not in ln)

    assert _scan(out / "hw") == [] and _scan(out / "fw") == []
    assert not mark.exists()


def test_array_names_are_npz_members_whatever_they_say(tmp_path):
    """Keys that ``np.savez`` mishandles (``file`` is its own argument, a path-like key) round
    trip; keys a zip cannot hold are refused by name."""
    import numpy as np

    from hannah_hw.ir.qgraph import QGraphError, _write_npz

    arrays = {"file": np.arange(3), "../../etc/x": np.ones((2, 2), np.int8), "Ω名": np.zeros(0)}
    _write_npz(tmp_path / "a.npz", arrays)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert {k: z[k].tolist() for k in z.files} == {k: v.tolist() for k, v in arrays.items()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    for bad in ("a\0b", "\ud800", ""):
        with pytest.raises(QGraphError, match="cannot be stored"):
            _write_npz(tmp_path / "b.npz", {bad: np.arange(2)})
