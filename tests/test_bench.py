"""vcs bench: the JSON must agree with the frames the codec really decoded, and follow the paper's protocol."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from skimage.metrics import structural_similarity
from typer.testing import CliRunner, Result

from vcscodec.bench import implied_keyframe_psnr, paper_results, paper_sequence, scored_frames
from vcscodec.cli import app
from vcscodec.errors import CommandLineError, VcsError
from vcscodec.samples import camera_pan, gray_clip, write_clip

W, H, N = 96, 64, 17
runner = CliRunner()


def _y_planes(path: Path) -> list[np.ndarray]:
    """Luma of every frame, read with PyAV directly (not through vcscodec.io)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p")[:H].copy() for f in c.decode(video=0)]


def _write_pngs(folder: Path, planes: list[np.ndarray]) -> None:
    """Grey PNGs named frame_1.png … frame_17.png (FFmpeg reads grey PNGs as luma, unchanged)."""
    folder.mkdir()
    for i, y in enumerate(planes, 1):
        frame = av.VideoFrame.from_ndarray(y, format="gray")
        with av.open(str(folder / f"frame_{i}.png"), "w", format="image2") as out:
            stream = out.add_stream("png")
            stream.width, stream.height, stream.pix_fmt = W, H, "gray"
            for packet in [*stream.encode(frame), *stream.encode()]:
                out.mux(packet)


def _psnr(ref: np.ndarray, test: np.ndarray) -> float:
    mse = np.mean((ref.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _invoke(*args: str) -> Result:
    result = runner.invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture
def sequences(tmp_path: Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """A colour Y4M named like a paper sequence and a folder of grey PNGs, with their reference luma."""
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "foreman_cif.y4m", camera_pan(N + 3, W, H, seed=0))  # 20 frames: only 17 are used
    pngs = [f.y for f in camera_pan(N, W, H, image="coffee", seed=3)]
    _write_pngs(folder / "pan_png", pngs)
    (folder / "notes.txt").write_text("not a sequence")
    refs = {"foreman_cif": _y_planes(folder / "foreman_cif.y4m")[:N], "pan_png": pngs}
    return folder, refs


def test_bench_json_matches_decoded_frames(
    use_tiny_weights: Path, sequences, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vcscodec.codec import decode_file

    folder, refs = sequences
    keep, report_path = tmp_path / "keep", tmp_path / "bench.json"
    args = ["--sequences", str(folder), "--json", str(report_path), "--keep", str(keep), "--quiet"]
    monkeypatch.setattr(sys, "argv", ["vcs", "bench", *args])  # what the report records as its command line
    _invoke(*args)
    report = json.loads(report_path.read_text())

    assert [r["ratio"] for r in report["runs"]] == [0.01, 0.1]
    assert report["protocol"]["frames"] == 17 and report["device"]["type"] == "cpu"
    assert report["vcscodec_version"] and report["date"]
    assert report["command"] == shlex.join(["vcs", "bench", *args])
    nonkey_frames = [*range(1, 8), *range(9, 16)]  # paper frames 2–8 and 10–16
    for run in report["runs"]:
        assert run["model"]["parameters"] > 0 and run["model"]["name"].startswith("hitvcsnet-mh-k0.5-n")
        seqs = {s["name"]: s for s in run["sequences"]}
        assert sorted(seqs) == ["foreman_cif", "pan_png"]
        assert seqs["foreman_cif"]["paper_name"] == "Foreman" and seqs["pan_png"]["paper_name"] is None
        for name, s in seqs.items():
            decoded = _y_planes(Path(s["decoded"]))
            assert len(decoded) == len(s["per_frame"]) == N
            assert s["key_frames"] == [0, 8, 16] and s["scored_frames"] == list(range(16))
            for f, ref, dec in zip(s["per_frame"], refs[name], decoded, strict=True):
                assert f["key"] == (f["index"] in (0, 8, 16)) and f["scored"] == (f["index"] < 16)
                assert f["psnr"] == _psnr(ref, dec)
                assert f["ssim"] == structural_similarity(
                    ref.astype(np.float64),
                    dec.astype(np.float64),
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=255,
                )
            psnrs = [_psnr(r, d) for r, d in zip(refs[name], decoded, strict=True)]
            assert s["psnr"] == np.mean(psnrs[:16])
            assert s["psnr_nonkey"] == np.mean([psnrs[i] for i in nonkey_frames])
            assert s["ssim_nonkey"] == np.mean([s["per_frame"][i]["ssim"] for i in nonkey_frames])
            assert s["psnr_key"] == np.mean([psnrs[0], psnrs[8]])  # keyframes 1 and 9; 17 is not scored
            assert s["ssim_key"] == np.mean([s["per_frame"][i]["ssim"] for i in (0, 8)])
            assert s["bytes"] == Path(s["vcs"]).stat().st_size
            assert s["bpp"] == s["bytes"] * 8 / (W * H * N)
            assert s["encode_fps"] > 0 and s["decode_fps"] > 0
        for key in ("psnr", "ssim", "psnr_nonkey", "ssim_nonkey", "psnr_key", "ssim_key"):
            assert run["average"][key] == np.mean([s[key] for s in run["sequences"]])
        # Only Foreman maps to the paper: its average is the paper's Foreman row, and Table 4 needs all six.
        paper = run["average"]["paper"]
        assert not paper["complete"] and paper["table4"] == {} and paper["keyframes"] == {}
        assert paper["table1"]["HIT-VCSNet"]["over"] == ["Foreman"]
        assert run["floor"] is None  # the linear floor is an average over the whole test set

    # The table sets the paper's figures beside ours: Foreman's row holds its HIT-VCSNet and VCSNet2 pairs.
    from io import StringIO

    from rich.console import Console

    from vcscodec.bench import render

    wide = Console(file=StringIO(), width=200, force_terminal=True, color_system=None)
    render(report, wide)
    header = next(line for line in wide.file.getvalue().splitlines() if "sequence" in line)
    assert "HIT-VCSNet" in header and "VCSNet2" in header
    foreman = next(line for line in wide.file.getvalue().splitlines() if "Foreman" in line)
    assert "33.39/0.8949" in foreman  # the paper's Table 1, αn 0.01

    # The kept .vcs decodes again, through the plain decoder, to the very frames that were scored.
    s = report["runs"][1]["sequences"][0]
    again = tmp_path / "again.y4m"
    decode_file(Path(s["vcs"]), again)
    assert all(np.array_equal(a, b) for a, b in zip(_y_planes(again), _y_planes(Path(s["decoded"])), strict=True))


def _planes(path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Y, U and V of every frame, read with PyAV directly (not through vcscodec.io)."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
    # yuv420p as one array: H rows of Y, then U and V, each H/2 rows of W/2 packed two to a row of W.
    return [(a[:H], a[H : H + H // 4].reshape(H // 2, W // 2), a[H + H // 4 :].reshape(H // 2, W // 2)) for a in frames]


def test_bench_scores_chroma_of_colour_files(use_tiny_weights: Path, sequences, tmp_path: Path) -> None:
    """--chroma auto codes the colour clip in colour and the grey PNGs grey: the colour clip's U and V are scored
    (per frame, against the frames really decoded), the grey one's are not, and only colour gets the column."""
    folder, _ = sequences
    keep, report_path = tmp_path / "keep", tmp_path / "bench.json"
    _invoke("-s", str(folder), "-r", "0.1", "--chroma", "auto", "--json", str(report_path), "--keep", str(keep), "-q")
    report = json.loads(report_path.read_text())
    (run,) = report["runs"]
    seqs = {s["name"]: s for s in run["sequences"]}
    colour, grey = seqs["foreman_cif"], seqs["pan_png"]
    refs = _planes(folder / "foreman_cif.y4m")[:N]
    decoded = _planes(Path(colour["decoded"]))
    for f, ref, dec in zip(colour["per_frame"], refs, decoded, strict=True):
        assert f["psnr"] == _psnr(ref[0], dec[0])
        assert (f["psnr_u"], f["psnr_v"]) == (_psnr(ref[1], dec[1]), _psnr(ref[2], dec[2]))
    assert f["psnr_u"] != f["psnr_v"]  # each plane against its own
    scored = colour["per_frame"][:16]
    assert colour["psnr_u"] == np.mean([f["psnr_u"] for f in scored])
    assert colour["psnr_v"] == np.mean([f["psnr_v"] for f in scored])
    assert grey["psnr_u"] is None and grey["psnr_v"] is None
    assert all("psnr_u" not in f for f in grey["per_frame"])
    # The average is over the sequences coded in colour alone.
    assert (run["average"]["psnr_u"], run["average"]["psnr_v"]) == (colour["psnr_u"], colour["psnr_v"])

    from io import StringIO

    from rich.console import Console

    from vcscodec.bench import render

    wide = Console(file=StringIO(), width=200, force_terminal=True, color_system=None)
    render(report, wide)
    lines = wide.file.getvalue().splitlines()
    assert "PSNR U/V" in next(line for line in lines if "sequence" in line)
    assert f"{colour['psnr_u']:.2f}/{colour['psnr_v']:.2f}" in next(line for line in lines if "Foreman" in line)
    assert "│           – │" in next(line for line in lines if "pan_png" in line)
    assert "average PSNR U/V: over the sequence in colour only (the rest were coded grey)" in "\n".join(lines)
    # Foreman beside a clip of one's own: the average's Δ is ours over Foreman alone against the paper's Foreman,
    # not the mean of both clips against it
    paper_foreman = colour["paper"]["HIT-VCSNet"]["psnr"]
    average = next(line for line in lines if "average" in line and "non-key" not in line and "keyframe" not in line)
    assert f"{colour['psnr'] - paper_foreman:+.2f}/" in average
    assert f"{run['average']['psnr'] - paper_foreman:+.2f}/" not in average
    assert "Δ against ours over the same 1" in "\n".join(lines)

    # Coded grey (the paper's protocol, the default): no chroma scores and no column.
    gray_path = tmp_path / "gray.json"
    _invoke("-s", str(folder), "-r", "0.1", "--json", str(gray_path), "-q")
    gray = json.loads(gray_path.read_text())
    assert all(s["psnr_u"] is None and "psnr_u" not in s["per_frame"][0] for s in gray["runs"][0]["sequences"])
    assert gray["runs"][0]["average"]["psnr_u"] is None
    wide = Console(file=StringIO(), width=200, force_terminal=True, color_system=None)
    render(gray, wide)
    assert "U/V" not in wide.file.getvalue()


def test_bench_models_and_all_frames(use_tiny_weights: Path, tmp_path: Path) -> None:
    """--model picks models by name (ratio from the model); --frames all scores whole sequences; --threads is
    used and recorded."""
    import torch

    from vcscodec.registry import list_models

    folder = tmp_path / "seq"
    folder.mkdir()
    # 9 = 8·1 + 1 frames: the last is not scored. The name gives no rate: the bench needs none (its scores do not
    # depend on it).
    write_clip(folder / "akiyo_96x64.yuv", camera_pan(9, W, H))
    name = next(c.name for c in list_models() if c.alpha_n == 0.1)
    prefix = name[: name.rindex("-")]  # a unique prefix is enough
    threads = torch.get_num_threads()
    wanted = 1 if threads > 1 else 2
    try:  # --json -: the report on standard output, alone; the tables go to standard error
        args = ["-s", str(folder), "--model", prefix, "--frames", "all", "--json", "-"]
        result = _invoke(*args, "--threads", str(wanted))
    finally:
        torch.set_num_threads(threads)  # in-process: the rest of the suite keeps its own
    assert "Akiyo" in result.stderr and "the paper's figures are for the first 17 frames" in result.stderr
    report = json.loads(result.stdout)
    assert f"{wanted} thread" in result.stderr and report["device"]["threads"] == wanted
    assert not (Path.cwd() / "-").exists()
    (run,) = report["runs"]
    (s,) = run["sequences"]
    assert run["ratio"] == 0.1 and run["model"]["name"] == name
    assert s["frames"] == 9 and s["key_frames"] == [0, 8] and s["scored_frames"] == list(range(8))
    assert s["psnr_nonkey"] == np.mean([f["psnr"] for f in s["per_frame"][1:8]])


def test_scored_frames() -> None:
    assert scored_frames(17, 8) == list(range(16))  # the paper: frames 1–16
    assert scored_frames(25, 8) == list(range(24))
    assert scored_frames(20, 8) == list(range(20))
    assert scored_frames(1, 8) == [0]


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("foreman_cif.y4m", "Foreman"),
        ("mother_daughter_cif.y4m", "Mother daughter"),
        ("mother-and-daughter_352x288_30fps.yuv", "Mother daughter"),
        ("Akiyo_CIF", "Akiyo"),
        ("coastguard_cif_8bit.mp4", "Coastguard"),
        ("paris", "Paris"),
        ("silent_cif.y4m", "Silent"),
        ("camera_pan.y4m", None),
    ],
)
def test_paper_sequence_names(name: str, row: str | None) -> None:
    assert paper_sequence(name) == row


def test_paper_results_are_consistent() -> None:
    """The transcribed rows average to the paper's average rows (catches a mistyped figure)."""
    paper = paper_results()
    assert "Hierarchical Interactive" in paper["source"]["title"] and len(paper["sequences"]) == 6
    for method, by_ratio in paper["table1"]["methods"].items():
        assert sorted(by_ratio) == ["0.01", "0.1"]
        for ratio, rows in by_ratio.items():
            mean_psnr = np.mean([rows[s]["psnr"] for s in paper["sequences"]])
            mean_ssim = np.mean([rows[s]["ssim"] for s in paper["sequences"]])
            assert abs(mean_psnr - rows["Average"]["psnr"]) < 0.006, (method, ratio)
            # The paper's own HIT-VCSNet SSIM average at 0.01 (0.9245) is not the mean of its rows (0.9228).
            if (method, ratio) != ("HIT-VCSNet", "0.01"):
                assert abs(mean_ssim - rows["Average"]["ssim"]) < 0.0001, (method, ratio)
    assert paper["table4"]["methods"]["HIT-VCSNet"] == {"0.01": {"psnr": 33.95}, "0.1": {"psnr": 36.56}}
    assert paper["table5"]["methods"]["w/o HFIM"]["0.01"] == {"psnr": 33.96, "ssim": 0.8917}


def test_implied_keyframe_psnr_inverts_the_frame_average() -> None:
    key, non = 45.0, 36.0
    assert implied_keyframe_psnr((2 * key + 14 * non) / 16, non) == pytest.approx(key)


def test_bench_errors(use_tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def error(*args: str) -> str:
        result = runner.invoke(app, ["bench", *args])
        assert isinstance(result.exception, VcsError), result.output
        message = str(result.exception)
        assert "\n" not in message
        return message

    assert "does not exist" in error("-s", str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no readable sequences" in error("-s", str(empty))
    (empty / "broken.y4m").write_bytes(b"YUV4MPEG2 nonsense")
    (empty / "nosize.yuv").write_bytes(bytes(100))
    assert "no readable sequences" in error("-s", str(empty))
    short = tmp_path / "short"
    short.mkdir()
    write_clip(short / "a.y4m", camera_pan(5, W, H))
    assert "try --frames all" in error("-s", str(short))
    assert "not both" in error("-s", str(short), "-r", "0.1", "-m", "hitvcsnet")
    assert "--frames" in error("-s", str(short), "--frames", "some")
    assert "--ratios" in error("-s", str(short), "--ratios", "0.1,x")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    assert "pip install" in error("-s", str(short), "--frames", "all", "--plot", str(tmp_path / "plots"))


def test_bench_outputs_never_destroy_inputs_or_earlier_files(use_tiny_weights: Path, tmp_path: Path) -> None:
    """--json onto a sequence is refused even with --force; --keep refuses a file, a folder inside the sequences
    and files already there unless --force; every refusal is one line, before any coding."""
    folder, keep = tmp_path / "seq", tmp_path / "keep"
    folder.mkdir()
    clip = folder / "a.y4m"
    write_clip(clip, camera_pan(3, W, H))
    original = clip.read_bytes()

    def error(*args: str) -> str:
        result = runner.invoke(app, ["bench", "-s", str(folder), "-r", "0.1", "-n", "all", "-q", *args])
        assert isinstance(result.exception, VcsError), result.output
        assert "\n" not in str(result.exception)
        return str(result.exception)

    assert "is also an input" in error("--json", str(clip), "--force")
    assert clip.read_bytes() == original
    assert "inside the sequence folder" in error("--keep", str(folder / "kept"))
    assert not (folder / "kept").exists()
    (tmp_path / "notes.txt").write_text("a file")
    assert "is a file" in error("--keep", str(tmp_path / "notes.txt"))
    _invoke("-s", str(folder), "-r", "0.1", "-n", "all", "-q", "--keep", str(keep))
    kept = sorted(p.name for p in keep.iterdir())
    assert [Path(k).suffix for k in kept] == [".vcs", ".y4m"]
    (keep / kept[1]).write_bytes(b"earlier work")
    assert "already exists (use --force" in error("--keep", str(keep))
    assert (keep / kept[1]).read_bytes() == b"earlier work"
    _invoke("-s", str(folder), "-r", "0.1", "-n", "all", "-q", "--keep", str(keep), "--force")
    assert (keep / kept[1]).read_bytes().startswith(b"YUV4MPEG2")


def test_a_bench_stopped_midway_keeps_whole_pairs_only(use_tiny_weights: Path, tmp_path: Path, monkeypatch) -> None:
    """Stopped while decoding its second sequence (Ctrl-C): with --force over an earlier --keep, every coding's
    .vcs and .y4m are both this run's or both the last's (a new .vcs beside an old video before); a --keep folder
    the bench made and kept nothing in is removed."""
    import vcscodec.bench.run as bench_run

    folder, keep = tmp_path / "seq", tmp_path / "keep"
    folder.mkdir()
    for name in ("a", "b"):
        write_clip(folder / f"{name}.y4m", camera_pan(5, W, H, seed=ord(name)))
    _invoke("-s", str(folder), "-r", "0.1", "-n", "5", "-q", "--keep", str(keep))
    earlier = {p.name: p.read_bytes() for p in keep.iterdir()}
    decode, calls = bench_run.decode_records, []

    def stopped_in_the_second(*args, **kwargs):
        calls.append(args)
        for i, frame in enumerate(decode(*args, **kwargs)):
            if len(calls) == 3 and i == 2:  # the warm-up's, a's, then b's third frame
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(bench_run, "decode_records", stopped_in_the_second)
    result = runner.invoke(app, ["bench", "-s", str(folder), "-r", "0.1", "-n", "4", "-q", "--keep", str(keep), "-f"])
    assert result.exit_code != 0 and len(calls) == 3
    now = {p.name: p.read_bytes() for p in keep.iterdir()}
    assert now.keys() == earlier.keys()
    changed = sorted(name for name in now if now[name] != earlier[name])
    assert [Path(n).suffix for n in changed] == [".vcs", ".y4m"] and all(n.startswith("a") for n in changed)
    calls.clear()
    fresh = tmp_path / "fresh"
    result = runner.invoke(app, ["bench", "-s", str(folder), "-r", "0.1", "-n", "4", "-q", "--keep", str(fresh)])
    assert result.exit_code != 0 and sorted(p.name[0] for p in fresh.iterdir()) == ["a", "a"]
    calls[:] = [None]  # the warm-up done: stopped in a's decode
    result = runner.invoke(
        app, ["bench", "-s", str(folder), "-r", "0.1", "-n", "4", "-q", "--keep", str(tmp_path / "x")]
    )
    assert result.exit_code != 0 and not (tmp_path / "x").exists()


def test_bench_plot(use_tiny_weights: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "a.y4m", camera_pan(9, W, H))
    _invoke("-s", str(folder), "-r", "0.1", "--frames", "all", "--plot", str(tmp_path / "plots"), "-q")
    assert len(list((tmp_path / "plots").glob("psnr-n0.1-*.png"))) == 1


def test_paper_figures_for_a_full_test_set() -> None:
    """With all six sequences the average row is Table 1's, with Table 4's non-key and, for an ablation, Table 5."""
    from types import SimpleNamespace

    from vcscodec.bench.paper import linear_floor, paper_figures

    paper = paper_results()
    seqs = [{"paper_name": name} for name in reversed(paper["sequences"])]
    card = SimpleNamespace(alpha_n=0.01, arch="hitvcsnet-nohfim")
    average = paper_figures(card, seqs, paper)  # type: ignore[arg-type]
    assert average["complete"]
    assert average["table1"]["HIT-VCSNet"] == {"psnr": 35.21, "ssim": 0.9245}
    assert average["table1"]["VCSNet2"] == {"psnr": 33.00, "ssim": 0.8749}
    assert average["table4"] == {"HIT-VCSNet": {"psnr": 33.95}, "VCSNet2": {"psnr": 31.95}}
    assert average["table5"] == {"w/o HFIM": {"psnr": 33.96, "ssim": 0.8917}}
    # 16 scored frames = 2 keyframes + 14 non-keyframes: (16·35.21 − 14·33.95) / 2 = 44.03 dB.
    assert average["keyframes"]["HIT-VCSNet"]["psnr"] == pytest.approx(44.03)
    assert average["keyframes"]["VCSNet2"]["psnr"] == pytest.approx((16 * 33.00 - 14 * 31.95) / 2)
    assert seqs[-1]["paper"]["HIT-VCSNet"] == {"psnr": 41.59, "ssim": 0.9842}  # Akiyo
    assert linear_floor(0.01, average)["psnr"] == 34.04
    assert linear_floor(0.1, average)["psnr_nonkey"] == 34.86
    assert linear_floor(0.05, average) is None  # no floor was measured at that ratio
    seqs.append({"paper_name": None})  # an extra sequence: the averages are no longer the paper's
    partial = paper_figures(card, seqs, paper)
    assert not partial["complete"] and linear_floor(0.01, partial) is None


def test_bench_rate_sweep_with_anchors(use_tiny_weights: Path, tmp_path: Path) -> None:
    """--quant-step with several steps and --anchor: a run per step, an anchor run per QP, Bjøntegaard deltas."""
    try:
        import matplotlib  # noqa: F401

        plots = ["--plot", str(tmp_path / "plots")]
    except ImportError:
        plots = []  # the rest is checked all the same
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "a.y4m", camera_pan(N, W, H, seed=5))
    write_clip(folder / "b.y4m", camera_pan(N, W, H, image="coffee", seed=6))
    report_path = tmp_path / "rd.json"
    result = _invoke(
        "-s", str(folder), "-r", "0.1", "--quant-step", "1.3,4,12", "--anchor", "x264-intra",
        "--anchor-qp", "10,30,50", "--json", str(report_path), *plots,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    assert report["protocol"]["quant_steps"] == [1.3, 4.0, 12.0]
    runs = report["runs"]
    assert [r["quant_step"] for r in runs] == [1.3, 4.0, 12.0]
    assert len({r["model"]["name"] for r in runs}) == 1
    # In a narrow terminal the summary folds the model's name (what --model takes) onto more lines; it never cuts
    # it short with "…" (figures' headers may be).
    from io import StringIO

    from rich.console import Console

    from vcscodec.bench import render

    narrow = Console(file=StringIO(), width=60, force_terminal=True, color_system=None)
    render(report, narrow)
    text = narrow.file.getvalue()
    summary_rows = [line for line in text.splitlines() if line.count("│") == 11]  # its ten columns
    first_cells = "".join(line.split("│")[2].strip() for line in summary_rows)
    assert runs[0]["model"]["name"] in first_cells
    # Clips that are not the paper's get no empty paper columns (the Foreman test above gets them).
    assert "HIT-VCSNet" not in text and "VCSNet2" not in text and "first 17 frames" not in text
    bpp = [r["average"]["bpp"] for r in runs]
    assert bpp[0] > bpp[1] > bpp[2]  # coarser steps, fewer bits
    anchors = report["anchors"]
    assert [(a["anchor"], a["qp"]) for a in anchors] == [("x264-intra", 10), ("x264-intra", 30), ("x264-intra", 50)]
    assert anchors[0]["average"]["bpp"] > anchors[2]["average"]["bpp"]
    assert anchors[0]["average"]["psnr"] > anchors[2]["average"]["psnr"]
    # Anchors are scored on the same frames as our runs: frames 1–16 of 17.
    assert all(s["scored_frames"] == list(range(16)) for s in anchors[0]["sequences"])
    (rd,) = report["rd"]
    assert (rd["model"], rd["reference"]) == (runs[0]["model"]["name"], "x264-intra")
    assert set(rd["per_sequence"]) == {"a", "b"}
    # The average is the mean of the sequences' deltas that exist, recomputed here from the report's own points.
    from vcscodec.rd import bd_rate

    for name, deltas in rd["per_sequence"].items():
        ours = [next(s for s in r["sequences"] if s["name"] == name) for r in runs]
        theirs = [next(s for s in a["sequences"] if s["name"] == name) for a in anchors]
        expected = bd_rate([s["bpp"] for s in theirs], [s["psnr"] for s in theirs],
                           [s["bpp"] for s in ours], [s["psnr"] for s in ours])  # fmt: skip
        assert deltas["bd_rate"] == (pytest.approx(expected) if expected is not None else None)
    defined = [d["bd_rate"] for d in rd["per_sequence"].values() if d["bd_rate"] is not None]
    assert rd["bd_rate"]["sequences"] == len(defined)
    assert defined  # the anchor's QPs 10–50 span the tiny models' PSNRs
    assert rd["bd_rate"]["mean"] == pytest.approx(np.mean(defined))
    assert "BD-rate" in result.output
    assert "x264-intra" in result.output and "anchors" in result.output
    if plots:
        assert (tmp_path / "plots" / "rd.png").is_file()
        assert len(list((tmp_path / "plots").glob("psnr-n0.1-*-q*.png"))) == 3


def test_bench_rate_sweep_errors(use_tiny_weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "a.y4m", camera_pan(N, W, H))

    def error(*args: str) -> str:
        result = runner.invoke(app, ["bench", "-s", str(folder), *args])
        assert isinstance(result.exception, VcsError), result.output
        assert "\n" not in str(result.exception)
        return str(result.exception)

    assert "--quant-step" in error("--quant-step", "1.3,big")
    assert "out of range" in error("--quant-step", "1.3,0")
    assert "--quant-step lists 2 twice" in error("--quant-step", "2,2")
    assert "--anchor-qp lists 30 twice" in error("--anchor", "x264", "--anchor-qp", "30,30")
    assert "--ratios lists 0.1 twice" in error("-r", "0.1,0.1")
    assert "unknown anchor 'x265'" in error("--anchor", "x265")
    for args in (["--anchor", "x265"], ["--quant-step", "1.3,0"], ["--anchor", "x264", "--anchor-qp", "30,60"]):
        mistyped = runner.invoke(app, ["bench", "-s", str(folder), *args]).exception
        assert isinstance(mistyped, CommandLineError), args  # a usage error: exit 2, as a mistyped --device is
    assert "outside 0–51" in error("--anchor", "x264", "--anchor-qp", "30,60")
    assert "--anchor-qp" in error("--anchor", "x264", "--anchor-qp", "30.5")
    assert "--anchor-qp is empty" in error("--anchor", "x264", "--anchor-qp", ",")


def test_bench_rate_sweeps_of_two_models_are_compared(use_tiny_weights: Path, tmp_path: Path) -> None:
    """Both ratios swept: the second model's curve gets Bjøntegaard deltas against the first's; one step gets none."""
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "a.y4m", camera_pan(N, W, H, seed=7))
    report_path = tmp_path / "rd.json"
    _invoke("-s", str(folder), "--quant-step", "1,4,16", "--json", str(report_path), "-q")
    report = json.loads(report_path.read_text())
    first, second = dict.fromkeys(r["model"]["name"] for r in report["runs"])
    (rd,) = report["rd"]
    assert (rd["model"], rd["reference"]) == (second, first)
    curves = {
        name: ([r["average"]["bpp"] for r in report["runs"] if r["model"]["name"] == name],
               [r["average"]["psnr"] for r in report["runs"] if r["model"]["name"] == name])
        for name in (first, second)
    }  # fmt: skip
    from vcscodec.rd import bd_psnr

    expected = bd_psnr(*curves[first], *curves[second])  # one sequence: its delta is the average's
    assert rd["bd_psnr"]["mean"] == (pytest.approx(expected) if expected is not None else None)
    assert expected is not None  # the tiny models' curves overlap in rate
    one_step = tmp_path / "one.json"
    _invoke("-s", str(folder), "--json", str(one_step), "-q")
    assert json.loads(one_step.read_text())["rd"] == []


def test_a_sequence_that_cannot_be_scored_is_skipped_and_named(tmp_path: Path) -> None:
    """One clip under SSIM's 11×11 window, a link to a file that is gone, a Y4M cut inside its only frame: each is
    skipped with a line that names it and why, and the others are benched."""
    from vcscodec.bench.sequences import find_sequences

    write_clip(tmp_path / "good_64x64.y4m", gray_clip(17, 64, 64, seed=1))
    write_clip(tmp_path / "tiny_cif.y4m", gray_clip(17, 8, 8, seed=2))
    (tmp_path / "gone_cif.y4m").symlink_to(tmp_path / "nowhere.y4m")
    whole = (tmp_path / "good_64x64.y4m").read_bytes()
    header = whole.split(b"\n", 1)[0]
    (tmp_path / "cut_cif.y4m").write_bytes(header + b"\nFRAME\n" + bytes(100))
    sequences, warnings = find_sequences(tmp_path)
    assert [s.path.name for s in sequences] == ["good_64x64.y4m"]
    assert sorted(warnings) == [
        "skipped cut_cif.y4m: " + f"{tmp_path / 'cut_cif.y4m'} has no frames but a partial one (106 bytes; truncated?)",
        "skipped gone_cif.y4m: a link to a missing file",
        "skipped tiny_cif.y4m: SSIM needs a plane of at least 11x11, got 8x8",
    ]


def test_a_clip_damaged_midway_is_skipped_not_fatal(use_tiny_weights: Path, tmp_path: Path) -> None:
    """A clip whose frames stop decoding midway is skipped with a warning before any coding, as an unreadable one
    is; the others are benched (it failed the whole bench after coding them)."""
    folder = tmp_path / "seq"
    folder.mkdir()
    write_clip(folder / "a.y4m", camera_pan(N, W, H, seed=5))
    write_clip(folder / "z_bad.y4m", camera_pan(N, W, H, seed=6))
    data = (folder / "z_bad.y4m").read_bytes()
    third = data.index(b"FRAME\n", data.index(b"FRAME\n", data.index(b"FRAME\n") + 1) + 1)
    (folder / "z_bad.y4m").write_bytes(data[:third] + b"FRAMX\n" + data[third + 6 :])
    # numbered pictures with one of another size: skipped too
    from PIL import Image

    _write_pngs(folder / "z_pngs", [f.y for f in camera_pan(N, W, H, seed=7)])
    Image.new("L", (W // 2, H), 128).save(folder / "z_pngs" / "frame_6.png")
    # and what reading says of a clip that is benched, as vcs encode says it: here a partial last frame
    (folder / "a.y4m").write_bytes((folder / "a.y4m").read_bytes() + b"FRAME\n" + bytes(100))
    report_path = tmp_path / "bench.json"
    _invoke("-s", str(folder), "-r", "0.1", "--json", str(report_path), "-q")
    report = json.loads(report_path.read_text())
    assert [s["name"] for s in report["runs"][0]["sequences"]] == ["a"]
    assert f"skipped z_pngs: frame 5 is {W // 2}x{H}, not {W}x{H}" in report["warnings"], report["warnings"]
    assert any(w.startswith("skipped z_bad.y4m:") and "damaged" in w for w in report["warnings"]), report["warnings"]
    assert any("a.y4m ends in a partial frame (106 bytes" in w for w in report["warnings"]), report["warnings"]
