"""What `vcs bench` writes: the report as JSON, per-frame and rate–distortion plots, and the tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import VcsError
from ..hardware import threads_phrase
from ..output import check_output_folder, held_signals, replaced_whole
from .paper import PAPER_FRAMES, PAPER_METHODS, ratio_key
from .run import rate_sweeps

if TYPE_CHECKING:
    from rich.console import Console


def _finite(value: Any) -> Any:
    """JSON has no infinity: an exact reconstruction's PSNR (inf) is written as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report as strict JSON, through a temporary file renamed on success; ``-`` prints it on standard
    output (`vcs compare … --json - | jq …`)."""
    text = json.dumps(_finite(report), indent=2, allow_nan=False) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    check_output_folder(path.parent)
    try:
        with held_signals(), replaced_whole(path) as temp:  # written and renamed, or nothing: a stop comes after
            temp.write_text(text)
    except OSError as e:
        raise VcsError(f"cannot write {path}: {e.strerror or e}") from None


def require_matplotlib() -> None:
    """Fail before the bench runs, not after, when ``--plot`` cannot be honoured."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise VcsError("--plot needs matplotlib: pip install 'vcscodec[plot]' (or pip install matplotlib)") from None


def write_plots(report: dict[str, Any], folder: Path) -> list[Path]:
    """One PNG per run: PSNR of every frame of every sequence, keyframes marked. Returns the files written."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    folder.mkdir(exist_ok=True)  # its parent was checked before the run (a mistyped path is not created)
    written = []
    for run in report["runs"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for seq in run["sequences"]:
            x = [f["frame"] for f in seq["per_frame"]]
            y = [f["psnr"] for f in seq["per_frame"]]
            (line,) = ax.plot(x, y, marker=".", label=seq["paper_name"] or seq["name"])
            keys = [(f["frame"], f["psnr"]) for f in seq["per_frame"] if f["key"]]
            ax.plot(*zip(*keys, strict=True), "s", color=line.get_color(), markersize=6)
        floor = run["floor"]
        if floor:
            ax.axhline(floor["psnr"], color="grey", linestyle="--", linewidth=1, label="linear floor (frames 1–16)")
        ax.set_xlabel("frame (squares: keyframes)")
        ax.set_ylabel("PSNR Y (dB)")
        ax.set_title(f"αn {run['ratio']:g} · {run['model']['name']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        step = f"-q{run['quant_step']:g}" if len(report["protocol"]["quant_steps"]) > 1 else ""
        path = folder / f"psnr-n{ratio_key(run['ratio'])}-{run['model']['name']}{step}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    if len(report["runs"]) + len(report["anchors"]) > 1:
        written.append(_plot_rd(report, folder / "rd.png", plt))
    return written


def _plot_rd(report: dict[str, Any], path: Path, plt: Any) -> Path:
    """Average PSNR against average bpp: one curve per model (its steps) and per anchor (its QPs)."""
    models, anchors = rate_sweeps(report["runs"], report["anchors"])
    sweeps = {**models, **anchors}
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, sweep in sweeps.items():
        points = sorted((run["average"]["bpp"], run["average"]["psnr"]) for run in sweep)
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    ax.set_xlabel("bits per luma pixel (whole file)")
    ax.set_ylabel("PSNR Y (dB), mean over sequences")
    ax.set_title(f"rate–distortion · {report['protocol']['frames']} frames · chroma {report['protocol']['chroma']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pair(p: float | None, s: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.2f}" if s is None else f"{p:.2f}/{s:.4f}"


def _mean_over(sequences: list[dict[str, Any]]) -> dict[str, Any]:
    """Our PSNR and SSIM averaged over some sequences, as the average row averages them all."""
    return {field: float(np.mean([s[field] for s in sequences])) for field in ("psnr", "ssim")}


def _delta(ours: dict[str, Any], ref: dict[str, Any] | None, field: str = "psnr") -> str:
    """ours[field] − ref's PSNR, and the SSIM difference too for the all-frames average."""
    if not ref:
        return ""
    p = ours[field]
    s = ours["ssim"] if field == "psnr" and "ssim" in ref else None
    if p is None:
        return ""
    text = f"{p - ref['psnr']:+.2f}"
    return text if s is None else f"{text}/{s - ref['ssim']:+.4f}"


def _chroma(row: dict[str, Any], shown: bool) -> list[str]:
    """The U/V column's cell: PSNR of U and V as "U/V" (dB), "–" for a sequence coded grey; no cell when the
    column is not ``shown``."""
    if not shown:
        return []
    u, v = row.get("psnr_u"), row.get("psnr_v")
    return ["–" if u is None or v is None else f"{u:.2f}/{v:.2f}"]


def _has_chroma(rows: list[dict[str, Any]]) -> bool:
    """Whether any of these sequences was coded (and scored) in colour: only then the U/V column is shown."""
    return any(r.get("psnr_u") is not None for r in rows)


def _subset_cells(
    avg: dict[str, Any], kind: str, refs: dict[str, Any], mark: str, methods: tuple[str, ...]
) -> list[str]:
    """Our PSNR/SSIM over one kind of frame (``nonkey`` or ``key``), then each paper method's PSNR and our Δ."""
    cells = [_pair(avg[f"psnr_{kind}"], avg[f"ssim_{kind}"])]
    for method in methods:
        ref = refs.get(method)
        cells += [_pair(ref["psnr"], None) + mark if ref else "", _delta(avg, ref, f"psnr_{kind}")]
    return cells


def _render_rd(report: dict[str, Any], console: Console) -> None:
    """The anchors' averages, then the Bjøntegaard deltas of each model against each anchor and the first model."""
    if report["anchors"]:
        _render_anchors(report["anchors"], console)
    if not report["rd"]:
        return
    for c in report["rd"]:
        rate, gain = c["bd_rate"], c["bd_psnr"]
        if rate["mean"] is None and gain["mean"] is None:
            console.print(
                f"  {c['model']} against {c['reference']}: no Bjøntegaard delta (it needs two or more points of "
                "distinct rates and PSNRs on each curve, overlapping in PSNR or rate: give several --quant-step values "
                "or widen --anchor-qp)",
                highlight=False,
            )
            continue
        total = len(c["per_sequence"])
        parts = []
        if rate["mean"] is not None:
            parts.append(f"BD-rate {rate['mean']:+.1f} % ({rate['sequences']} of {total} sequences)")
        else:  # said, not left out silently: apart in PSNR, or a curve with two points at one PSNR (`rd._curve`)
            parts.append("no BD-rate (on no sequence do both curves have distinct PSNRs and overlap in PSNR)")
        if gain["mean"] is not None:
            parts.append(f"BD-PSNR {gain['mean']:+.2f} dB ({gain['sequences']} of {total})")
        else:
            parts.append("no BD-PSNR (on no sequence do both curves have distinct rates and overlap in rate)")
        console.print(f"  {c['model']} against {c['reference']}: {', '.join(parts)}", highlight=False)
    console.print(
        "  Bjøntegaard deltas, per sequence where the curves overlap, then averaged; a negative BD-rate means "
        "fewer bits than the reference for the same PSNR",
        highlight=False,
    )


def _render_anchors(anchors: list[dict[str, Any]], console: Console) -> None:
    from rich.table import Table

    table = Table(title="anchors (the same frames, scored the same way)", title_justify="left")
    chroma = _has_chroma([run["average"] for run in anchors])
    for col in ("anchor", "QP", "PSNR/SSIM", *(["PSNR U/V"] if chroma else []), "bpp", "enc fps", "dec fps"):
        table.add_column(col, justify="left" if col == "anchor" else "right")
    for run in anchors:
        avg = run["average"]
        table.add_row(
            run["anchor"],
            str(run["qp"]),
            _pair(avg["psnr"], avg["ssim"]),
            *_chroma(avg, chroma),
            f"{avg['bpp']:.4f}",
            f"{avg['encode_fps']:.1f}",
            f"{avg['decode_fps']:.1f}",
        )
    console.print(table)


def render(report: dict[str, Any], console: Console) -> None:
    """The paper's Table 1 per run, with Table 4's non-keyframe row, the linear floor, rate and speed."""
    from rich.table import Table
    from rich.text import Text

    dev = report["device"]
    steps = report["protocol"]["quant_steps"]
    for run in report["runs"]:
        if run["quant_step"] != steps[0]:
            continue  # a rate sweep: the paper's tables at the first step, the others in the summaries below
        m, avg, paper = run["model"], run["average"], run["average"]["paper"]
        step = f" · step {run['quant_step']:g}" if len(steps) > 1 else ""
        table = Table(
            title=f"αn {run['ratio']:g} · {m['name']} ({m['arch']}, {m['parameters']:,} parameters) · "
            f"{report['protocol']['frames']} frames{step} · {dev['name']} · {report['precision']}",
            title_justify="left",
        )
        # The paper's columns only where it has figures for a sequence: beside the user's own clips they are blank.
        methods = PAPER_METHODS if any(s.get("paper") for s in run["sequences"]) else ()
        paper_columns = [c for method in methods for c in (method, "Δ")]
        chroma = _has_chroma(run["sequences"])
        chroma_column = ["PSNR U/V"] if chroma else []
        for col in ("sequence", "PSNR/SSIM", *chroma_column, *paper_columns, "bpp", "enc fps", "dec fps"):
            text = col == "sequence"  # a name: folded in a narrow terminal, never cut with "…"
            table.add_column(col, justify="left" if text else "right", overflow="fold" if text else "ellipsis")
        for s in run["sequences"]:
            refs = s.get("paper") or {}
            table.add_row(
                s["paper_name"] or s["name"],
                _pair(s["psnr"], s["ssim"]),
                *_chroma(s, chroma),
                *(
                    cell
                    for method in methods
                    for cell in (
                        _pair(refs[method]["psnr"], refs[method]["ssim"]) if method in refs else "",
                        _delta(s, refs.get(method)),
                    )
                ),
                f"{s['bpp']:.4f}",
                f"{s['encode_fps']:.1f}",
                f"{s['decode_fps']:.2f}",
            )
        t1 = paper["table1"]
        subset = "" if paper["complete"] else "*"
        # Beside a subset of the test set, Δ compares like with like: our mean over the paper's sequences present.
        in_paper = [s for s in run["sequences"] if s.get("paper")]
        ours = avg if paper["complete"] or not in_paper else _mean_over(in_paper)
        table.add_row(
            Text("average", style="bold"),
            Text(_pair(avg["psnr"], avg["ssim"]), style="bold"),
            *_chroma(avg, chroma),
            *(
                cell
                for method in methods
                for cell in (
                    _pair(t1[method]["psnr"], t1[method]["ssim"]) + subset if method in t1 else "",
                    _delta(ours, t1.get(method)),
                )
            ),
            f"{avg['bpp']:.4f}",
            f"{avg['encode_fps']:.1f}",
            f"{avg['decode_fps']:.2f}",
            end_section=True,
        )
        implied = paper["keyframes"]
        for label, kind, refs, mark in (
            ("non-key average", "nonkey", paper["table4"], ""),
            ("keyframe average", "key", implied, "†"),
        ):
            cells = _subset_cells(avg, kind, refs, mark, methods)
            table.add_row(label, cells[0], *([""] if chroma else []), *cells[1:], "", "", "")
        console.print(table)
        notes = []
        if implied:
            notes.append("† implied by the paper's Tables 1 and 4: (16·frames 1–16 − 14·non-key) / 2")
        if not paper["complete"] and t1:
            notes.append(
                "* the paper's mean over the sequences present (its averages cover all six); Δ against ours over "
                f"the same {len(in_paper)}"
            )
        for method, ref in paper["table5"].items():
            notes.append(f"Table 5 ({method}): {_pair(ref['psnr'], ref['ssim'])}, ours Δ {_delta(avg, ref)}")
        floor = run["floor"]
        if floor and avg["psnr"] is not None:
            nonkey = f", ours Δ {avg['psnr_nonkey'] - floor['psnr_nonkey']:+.2f}" if avg["psnr_nonkey"] else ""
            notes.append(
                f"linear floor (temporal residual, KLT): {floor['psnr']:.2f} dB frames 1–16, ours Δ "
                f"{avg['psnr'] - floor['psnr']:+.2f}; {floor['psnr_nonkey']:.2f} dB non-key{nonkey}"
            )
        if methods and report["protocol"]["frames"] != PAPER_FRAMES:
            notes.append("the paper's figures are for the first 17 frames; these scores are not")
        grey = [s for s in run["sequences"] if s.get("psnr_u") is None]
        if chroma and grey:
            in_colour = len(run["sequences"]) - len(grey)
            which = "the sequence" if in_colour == 1 else f"the {in_colour} sequences"
            notes.append(f"average PSNR U/V: over {which} in colour only (the rest were coded grey)")
        for note in notes:
            console.print(f"  {note}", highlight=False)
    if len(report["runs"]) > 1:
        summary = Table(title="all runs", title_justify="left")
        columns = ("αn", "model", "q step", "parameters", "PSNR/SSIM", "non-key PSNR", "key PSNR", "bpp", "enc fps")
        for col in (*columns, "dec fps"):
            text = col == "model"  # what --model takes: folded in a narrow terminal, never cut with "…"
            summary.add_column(col, justify="left" if text else "right", overflow="fold" if text else "ellipsis")
        for run in report["runs"]:
            avg = run["average"]
            summary.add_row(
                f"{run['ratio']:g}",
                run["model"]["name"],
                f"{run['quant_step']:g}",
                f"{run['model']['parameters']:,}",
                _pair(avg["psnr"], avg["ssim"]),
                _pair(avg["psnr_nonkey"], None),
                _pair(avg["psnr_key"], None),
                f"{avg['bpp']:.4f}",
                f"{avg['encode_fps']:.1f}",
                f"{avg['decode_fps']:.2f}",
            )
        console.print(summary)
    _render_rd(report, console)
    console.print(
        f"device {dev['name']} ({dev['type']}, {threads_phrase(dev['threads'])}, {dev['logical_cores']} logical cores, "
        f"torch {dev['torch']}), "
        f"precision {report['precision']}, chroma {report['protocol']['chroma']}; speeds exclude reading the "
        "source and loading the model",
        highlight=False,
    )
