"""``hannah-hw report RUNDIR``: one self-contained HTML page (plots inlined) and the same
numbers in Markdown, read only from the files the flow wrote, so a report can be remade
from any RUNDIR without running anything again."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from hannah_hw.accel.config import AccelConfig, ConfigError
from hannah_hw.accel.energy import event_energies, load_table, per_mac_text
from hannah_hw.flow_config import FlowError, read_record
from hannah_hw.nas.search.objectives import SearchConfigError
from hannah_hw.util.names import md_text, printable

PLOTS = ("front", "history", "layers", "energy")


def _load(path: Path):
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FlowError(f"{path} is corrupt ({e}); rerun its stage with 'hannah-hw flow'") \
            from None


def _plots(run: Path, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        return _draw(run, out, plt)
    finally:  # a malformed record fails mid-plot: its figures must not pile up
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def _draw(run: Path, out: Path, plt) -> dict[str, Path]:
    from hannah_hw.nas.search.runner import plot_summary

    made = {}
    s = _load(run / "search" / "summary.json")
    if s:
        made["front"] = plot_summary(s, out / "front.png")
        done = [r for r in s["rows"] if r["state"] == "done"]
        names = [o.split(":") for o in s["config"]["objectives"]]
        fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.2 * len(names)), dpi=110,
                                 sharex=True, squeeze=False)
        for ax, (name, direction) in zip(axes[:, 0], names):
            xs = [r["number"] for r in done]
            ys = [r["metrics"][name] for r in done]
            best = (np.minimum if direction == "min" else np.maximum).accumulate(ys) \
                if ys else []
            ax.scatter(xs, ys, s=12, c="tab:blue", label="candidate")
            ax.step(xs, best, where="post", c="tab:red", label=f"best ({direction})")
            ax.set_ylabel(name)
        axes[0, 0].legend(fontsize=7)
        axes[-1, 0].set_xlabel("candidate")
        fig.suptitle("search history")
        fig.tight_layout()
        fig.savefig(out / "history.png")
        plt.close(fig)
        made["history"] = out / "history.png"
    sim = _load(run / "sim-report.json")
    if sim:
        layers = sim["layers"]
        names = [f"{i}:{ly['op']}" for i, ly in enumerate(layers)]
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 5), dpi=110, sharex=True)
        a1.bar(names, [ly["cycles"] for ly in layers], color="tab:blue", label="measured")
        a1.plot(names, [ly["predicted_cycles"] for ly in layers], "rx", label="cost model")
        a1.set_ylabel("cycles")
        a1.legend(fontsize=7)
        a2.bar(names, [ly["utilization"] for ly in layers], color="tab:green")
        a2.set_ylabel("utilisation")
        a2.set_ylim(0, 1.05)
        a2.tick_params(axis="x", rotation=90, labelsize=7)
        fig.suptitle(f"per layer: {sim['cycles']:,} cycles, U = {sim['utilization']:.3f}")
        fig.tight_layout()
        fig.savefig(out / "layers.png")
        plt.close(fig)
        made["layers"] = out / "layers.png"
        parts = energy_breakdown(run, sim)
        fig, ax = plt.subplots(figsize=(6, 3), dpi=110)
        ax.barh(list(parts), [v / 1e6 for v in parts.values()], color="tab:orange")
        ax.set_xlabel("uJ per inference")
        ax.set_title(f"energy: {sim['energy_uj']:.3f} uJ ({sim['ratio_to_floor']:.1f}x floor)")
        fig.tight_layout()
        fig.savefig(out / "energy.png")
        plt.close(fig)
        made["energy"] = out / "energy.png"
    return made


def energy_breakdown(run: Path, sim: dict) -> dict[str, float]:
    """pJ per inference by event kind: the measured counters times the per-event energies."""
    cfg = AccelConfig.load(run / "hw" / "config.json")
    e = event_energies(cfg, load_table())
    total = {k: sum(ly[k] for ly in sim["layers"]) for k in
             ("macs", "act_reads", "act_writes", "weight_reads", "param_reads")}
    parts = {"MACs": total["macs"] * e["mac"],
             "activation SRAM": (total["act_reads"] + total["act_writes"]) * e["act_access"],
             "weight SRAM": total["weight_reads"] * e["weight_read"],
             "parameter SRAM": total["param_reads"] * e["param_read"]}
    parts["leakage"] = max(0.0, sim["energy_uj"] * 1e6 - sum(parts.values()))
    return parts


def _rows(rec: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """The report's sections as (title, [(label, value)]) in display order."""
    st = {k: v["result"] for k, v in rec["stages"].items()}
    cfg = rec.get("config", {})
    sections = [("Run", [("name", cfg.get("name", "")), ("space", cfg.get("space", "")),
                         ("data set", str(cfg.get("data", {}).get("dataset"))),
                         ("board", str(cfg.get("hardware", {}).get("board")))]
                 + [(f"stage {k}", f"{v['seconds']:.1f} s, finished {v['finished']}")
                    for k, v in rec["stages"].items()])]
    if "search" in st:
        s = st["search"]
        rate = s["candidates"] / max(s["seconds"], 1e-9) * 3600
        sections.append(("Search", [
            ("strategy", cfg["search"]["strategy"]), ("objectives",
                                                       ", ".join(cfg["search"]["objectives"])),
            ("constraints", ", ".join(cfg["search"]["constraints"]) or "none"),
            ("candidates", f"{s['candidates']} ({s['failed']} failed), {rate:.0f} per hour"),
            ("Pareto front", ", ".join(map(str, s["front"])))]))
    if "confirm" in st:
        c = st["confirm"]
        sections.append(("Front confirmed in RTL simulation", [
            (f"candidate {e['number']}",
             f"cycles {e['measured_cycles']:,} measured / {int(e['predicted_cycles']):,} "
             f"predicted ({100 * e['cycle_error']:+.2f} %), energy "
             f"{e['measured_energy_uj']:.3f} / {e['predicted_energy_uj']:.3f} uJ, error "
             f"{100 * e['metrics']['error']:.2f} %, U {e['utilization']:.3f}, "
             f"{'bit-exact' if e['bit_exact'] else 'NOT bit-exact'}") for e in c["candidates"]]
            + [("cost model error (max)", f"cycles {100 * c['max_cycle_error']:.2f} %, energy "
                                          f"{100 * c['max_energy_error']:.2f} %")]))
    if "train" in st:
        t = st["train"]
        be = t.get("bit_exact") or {}
        sections.append(("Chosen network", [
            ("candidate", f"{t['candidate']} (lowest {t['choose']} on the confirmed front)"),
            ("float accuracy", f"{100 * t['float_accuracy']:.2f} %"),
            ("quantised accuracy", f"{100 * t['quant_accuracy']:.2f} %")]
            + ([("QAT model == interpreter", f"{be['identical']:,}/{be['outputs']:,} outputs")]
               if be else [])))
    if "generate" in st:
        g = st["generate"]
        sections.append(("Accelerator", [(k, str(v)) for k, v in g["config"].items()]
                         + [("memory bits", ", ".join(f"{k} {v:,}" for k, v in
                                                      g["memory_bits"].items()))]))
    if "simulate" in st:
        s = st["simulate"]
        sections.append(("RTL simulation", [
            ("cycles per inference", f"{s['cycles']:,} (cost model {s['predicted_cycles']:,})"),
            ("utilisation", f"{s['utilization']:.3f}"),
            ("energy", f"{s['energy_uj']:.3f} uJ, {per_mac_text(s['pj_per_mac'])}, "
                       f"{s['ratio_to_floor']:.1f}x the floor"),
            ("latency", f"{s['latency_s'] * 1e3:.3f} ms at {s['clock_hz'] / 1e6:g} MHz"),
            ("simulator speed", f"{s['sim_cycles_per_s'] / 1e6:.2f} M cycles/s")]))
    if "firmware" in st:
        f = st["firmware"]
        sz = f["size"]
        sections.append(("Firmware", [
            ("rv32 size", f"text {sz['text']:,} B, rodata {sz['rodata']:,} B, bss {sz['bss']:,} B"
                          f", RAM {f['ram_bytes'] // 1024} KiB"
                          f" ({f.get('isa', 'rv32im')} on {f.get('cpu', 'picorv32')}"
                          f"{'' if f.get('reference', True) else ', accelerator only'})"),
            ("cppcheck", str(f["cppcheck"]))]))
    if "soc" in st:
        s = st["soc"]
        sections.append((f"SoC simulation ({s.get('cpu', 'picorv32')} + accelerator)", [
            ("cycles per inference", f"{s['cycles']:,} end to end: accelerator "
                                     f"{s['accel_cycles']:,}, input DMA {s['dma_cycles']:,}, "
                                     f"driver {s['driver_cycles']:,} "
                                     f"({100 * s['driver_share']:.2f} %)")]))
    if "bitstream" in st:
        for top, b in st["bitstream"].items():
            sections.append((f"Bitstream ({top} on {b.get('board', '')})", _resource_rows(b)))
    sections.append(("Bit-exactness checks", _checks(st)))
    return sections


def _resource_rows(b: dict) -> list[tuple[str, str]]:
    rows = [("bitstream", str(b.get("bitstream")))]
    for name, r in b.get("resources", {}).items():
        rows.append((name, f"{r['used']:,} / {r['available']:,} "
                           f"({100 * r['used'] / max(r['available'], 1):.0f} %)"))
    lc, lut = b.get("placed", {}).get("lc"), b.get("resources", {}).get("lut")
    if lc and lut:  # iCE40: a LUT4 and a flip-flop share a logic cell, when they can
        rows.append(("logic cells (placed)", f"{lc:,} / {lut['available']:,} "
                                             f"({100 * lc / lut['available']:.0f} %)"))
    if "fmax_mhz" in b:
        rows.append(("fmax", f"{b['fmax_mhz']:.1f} MHz (target {b.get('target_mhz', 0):g} MHz)"))
    return rows


def _checks(st: dict) -> list[tuple[str, str]]:
    out = []
    be = (st.get("train") or {}).get("bit_exact")
    if be:
        out.append(("QAT model vs interpreter", "pass" if be["identical"] == be["outputs"]
                    else "FAIL"))
    if "confirm" in st:
        ok = all(e["bit_exact"] for e in st["confirm"]["candidates"])
        out.append(("RTL vs interpreter (front)", "pass" if ok else "FAIL"))
    for stage, key, label in (("simulate", "reference_match", "RTL vs interpreter (chosen)"),
                              ("firmware", "host_bit_exact", "firmware on the host"),
                              ("soc", "reference_match", "firmware on the SoC")):
        if stage in st:
            out.append((label, "pass" if st[stage][key] else "FAIL"))
    return out


def _html(text) -> str:
    """A value from the records (any JSON type, maybe a lone surrogate) as HTML text."""
    return html.escape(printable(str(text), max_len=1000))


def write_report(rundir: Path) -> tuple[Path, Path]:
    """RUNDIR/report.html (self-contained) and RUNDIR/report.md (plots in RUNDIR/report/)."""
    run = Path(rundir)
    rec = read_record(run)
    if not rec["stages"]:
        raise FlowError(f"{run}: no finished flow stages (no {run}/flow.json); run "
                        "'hannah-hw flow' first")
    pdir = run / "report"
    pdir.mkdir(exist_ok=True)
    try:  # a hand-edited or foreign record: one line, not a KeyError from deep inside
        plots = _plots(run, pdir)
        sections = _rows(rec)
        title = f"hannah-hw report: {rec.get('config', {}).get('name', run.name)}"
    except (ConfigError, SearchConfigError):  # the user errors reading the records can raise
        raise  # (a bad config.json or energy table; a corrupt file: FlowError) say it already
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError,
            ArithmeticError) as e:  # ArithmeticError: e.g. a huge int matplotlib cannot take
        raise FlowError(f"{run}: the flow's records are incomplete or malformed "
                        f"({type(e).__name__}: {e}); rerun 'hannah-hw flow'") from None
    md = [f"# {md_text(title)}", ""]
    body = [f"<h1>{_html(title)}</h1>"]
    for name in PLOTS:
        if name in plots:
            data = base64.b64encode(plots[name].read_bytes()).decode()
            body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
            md.append(f"![{name}](report/{plots[name].name})")
    for head, rows in sections:
        md += ["", f"## {md_text(head)}", "", "| | |", "|---|---|"]
        md += [f"| {md_text(k)} | {md_text(v)} |" for k, v in rows]
        body.append(f"<h2>{_html(head)}</h2><table>" + "".join(
            f"<tr><th>{_html(k)}</th><td>{_html(v)}</td></tr>" for k, v in rows)
            + "</table>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}img{max-width:100%}"
             "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;"
             "text-align:left}")
    (run / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_html(title)}"
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n",
        encoding="utf-8")
    (run / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return run / "report.html", run / "report.md"
