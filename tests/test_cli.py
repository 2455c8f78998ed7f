"""`vcs encode / decode / info / models / export-sampler` as a user runs them: in a subprocess, checking exit codes,
one-line errors without tracebacks, and that a failed command leaves no output (nor temporary) file behind."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vcscodec.cli import app
from vcscodec.container import FORMAT_VERSION, ContainerReader, read_header
from vcscodec.errors import frames_phrase
from vcscodec.io import open_video
from vcscodec.metrics import psnr
from vcscodec.quality import score_videos
from vcscodec.samples import camera_pan, gray_clip, write_clip

PARTS = ("sampling", "initial reconstruction", "MSEM (FEM + RBs)", "HFFM", "HFIM", "MSFM")


def run_vcs(*args: object, weights: Path, threads: int | None = 1, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m vcscodec.cli ARGS` with $VCS_WEIGHTS; one torch thread (the CPUs are shared) unless None."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | {"VCS_WEIGHTS": str(weights)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, "-m", "vcscodec.cli", *map(str, args)], capture_output=True, text=True, env=env,
        timeout=timeout,
    )  # fmt: skip


def assert_ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def assert_error(done: subprocess.CompletedProcess, *fragments: str, code: int = 1) -> str:
    """Exit code 1 (2: options that do not go together), exactly one line on stderr, "vcs: error: …" naming the
    problem, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    stdout = done.stdout if isinstance(done.stdout, str) else (done.stdout or b"").decode(errors="replace")  # pipes
    assert "Traceback" not in done.stderr + stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vcs: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every record, GOP records then the end record (docs/format.md §2)."""
    (length,) = struct.unpack_from("<I", data, 10)
    pos, spans = 14 + length + 4, []
    while pos < len(data):
        (payload,) = struct.unpack_from("<I", data, pos + 5)
        spans.append((pos, pos + 13 + payload + 4))
        pos = spans[-1][1]
    return spans


@pytest.fixture(scope="module")
def clip(tmp_path_factory, tiny_weights) -> dict:
    """A 9-frame 100×60 colour clip (records: frames 0-7, frame 8, end) and its .vcs, made once."""
    folder = tmp_path_factory.mktemp("clip")
    frames = camera_pan(9, 100, 60, seed=1)
    src, vcs = folder / "clip.y4m", folder / "clip.vcs"
    write_clip(src, frames, fps=25)
    done = run_vcs("encode", src, vcs, weights=tiny_weights)
    assert_ok(done)
    return {"frames": frames, "y4m": src, "vcs": vcs, "bytes": vcs.read_bytes(), "weights": tiny_weights}


# ------------------------------------------------------------------------------------------ working runs


def test_encode_never_imports_torch(tmp_path, clip):
    """The encoder is the light, sensor-side half: the whole `vcs encode` command runs without torch."""
    out = tmp_path / "a.vcs"
    probe = (
        "import sys\n"
        "from vcscodec.cli import main\n"
        f"sys.argv = ['vcs', 'encode', {str(clip['y4m'])!r}, {str(out)!r}, '--quiet']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('torch' in sys.modules, any(m.startswith('torch') for m in sys.modules))\n"
    )
    env = {**os.environ, "VCS_WEIGHTS": str(clip["weights"])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    assert out.read_bytes() == clip["bytes"]


def _records(data: bytes) -> bytes:
    """A .vcs file's bytes after its header: its records (docs/format.md §2.1: 14 bytes, the body, its CRC)."""
    return data[14 + struct.unpack_from("<I", data, 10)[0] + 4 :]


def test_raw_yuv_in_mp4_out(tmp_path, clip):
    frames = clip["frames"]
    named = tmp_path / "clip_100x60_25.yuv"
    write_clip(named, frames, fps=25)
    plain = tmp_path / "plain.yuv"
    shutil.copy(named, plain)
    a, b = tmp_path / "a.vcs", tmp_path / "b.vcs"
    done = run_vcs("encode", named, a, weights=clip["weights"])
    assert_ok(done)
    assert "9 frames 100×60" in done.stdout and "bpp" in done.stdout and "\n" not in done.stdout.strip()
    assert_ok(run_vcs("encode", plain, b, "--size", "100x60", "--fps", "25", "-q", weights=clip["weights"]))
    # every input path measures the same pixels; the Y4M's header also says where its chroma sits (format version 4)
    assert a.read_bytes() == b.read_bytes() and read_header(a).version == 1
    assert _records(a.read_bytes()) == _records(clip["bytes"]) and read_header(clip["vcs"]).chroma_siting == "center"
    out = tmp_path / "out.mp4"
    done = run_vcs("decode", a, out, "--device", "cpu", weights=clip["weights"])
    assert_ok(done)
    assert "9 frames" in done.stdout and done.stderr == ""
    with open_video(out) as reader:
        info, back = reader.info, list(reader)
    assert (info.width, info.height, info.fps, len(back)) == (100, 60, 25, 9)
    assert np.mean([psnr(x.y, y.y) for x, y in zip(frames, back, strict=True)]) > 19
    assert files_in(tmp_path) == ["a.vcs", "b.vcs", "clip_100x60_25.yuv", "out.mp4", "plain.yuv"]


def test_two_cpu_decodes_give_identical_bytes(tmp_path, clip):
    """Same machine, same settings (torch's own thread count): the same bytes. A different number of threads can
    change a few pixels by ±1 (float32 sums split differently), so this is no promise across machines."""
    one, two = tmp_path / "one.y4m", tmp_path / "two.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], one, "--device", "cpu", "-q", weights=clip["weights"], threads=None))
    assert_ok(run_vcs("decode", clip["vcs"], two, "--device", "cpu", "-q", weights=clip["weights"], threads=None))
    assert one.read_bytes() == two.read_bytes()
    assert len(one.read_bytes()) > 9 * 100 * 60 * 3 // 2


def test_threads_option_sets_the_decoders_threads(tmp_path, clip):
    # --threads wins over the environment's thread count, is reported, and gives what a decode on that many
    # threads gives; a negative count is refused before anything is written.
    env_one, option_one = tmp_path / "env.y4m", tmp_path / "option.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], env_one, "--device", "cpu", "-q", weights=clip["weights"], threads=1))
    done = run_vcs(
        "decode", clip["vcs"], option_one, "--device", "cpu", "--threads", "1", weights=clip["weights"], threads=2
    )
    assert_ok(done)
    assert "on cpu (fp32, 1 thread)" in done.stdout
    assert option_one.read_bytes() == env_one.read_bytes()
    done = run_vcs(
        "decode", clip["vcs"], option_one, "--device", "cpu", "--threads", "2", "-f", weights=clip["weights"], threads=1
    )
    assert_ok(done)
    assert "on cpu (fp32, 2 threads)" in done.stdout
    bad = tmp_path / "bad.y4m"
    done = run_vcs("decode", clip["vcs"], bad, "--threads", "-1", weights=clip["weights"])
    assert_error(done, "'--threads'", "greater than or equal to 0", code=2)  # a mistyped command line
    most = max(64, 8 * (os.cpu_count() or 1))  # thousands failed inside OpenMP with a traceback and a temporary file
    done = run_vcs("decode", clip["vcs"], bad, "--threads", 99999, weights=clip["weights"])
    assert_error(done, f"--threads 99999 is more threads than this machine can use: at most {most} here")
    assert not bad.exists() and not list(tmp_path.glob("bad.y4m.tmp-*"))


def test_info_shows_bits_per_pixel(clip):
    done = run_vcs("info", clip["vcs"], weights=clip["weights"])
    assert_ok(done)
    assert "bits per pixel" in done.stdout and "…" not in done.stdout  # long values fold, never cut
    done = run_vcs("info", clip["vcs"], "--json", weights=clip["weights"])
    assert_ok(done)
    info = json.loads(done.stdout)
    assert info["bits_per_pixel"] == pytest.approx(len(clip["bytes"]) * 8 / (100 * 60 * 9))
    assert info["compression_vs_8bit_420"] == pytest.approx((100 * 60 + 2 * 50 * 30) * 9 / len(clip["bytes"]))
    assert f"{info['bits_per_pixel']:.4g}" in run_vcs("info", clip["vcs"], weights=clip["weights"]).stdout
    # the header's fields under their names in docs/format.md, with their values, as numbers
    header = dataclasses.asdict(read_header(clip["vcs"]))
    assert {k: info[k] for k in header} == header
    # the clip is a Y4M file whose C420jpeg tag puts chroma at the centre: carried in a version-4 header
    assert (info["format_version"], info["width"], info["fps_num"], info["records"]) == (4, 100, 25, 2)
    assert info["chroma_siting"] == "center"
    assert (info["decodable"], info["decode_error"], info["damaged"]) == (True, None, [])
    assert info["bytes"] == len(clip["bytes"])
    spec = (Path(__file__).parents[1] / "docs" / "format.md").read_text()
    assert all(f"| {name} |" in spec for name in [*header, "format_version"])


def test_info_model_counts_parameters_per_part(clip):
    name = read_header(clip["vcs"]).model_name
    done = run_vcs("info", "--model", name[:-3], weights=clip["weights"])  # a unique prefix is enough
    assert_ok(done)
    text = " ".join(done.stdout.split())
    assert name in text
    counts = {}
    for part in (*PARTS, "total"):
        match = re.search(re.escape(part) + r": ([\d,]+)", text)
        assert match, (part, text)
        counts[part] = int(match.group(1).replace(",", ""))
    assert all(counts[p] > 0 for p in PARTS)
    assert sum(counts[p] for p in PARTS) == counts["total"]
    assert counts["sampling"] == (512 + 102) * 32 * 32  # Φk and Φn, no bias
    done = run_vcs("info", clip["vcs"], "--model", name, weights=clip["weights"])
    assert_error(done, "--model NAME, not both (see vcs info --help)", code=2)
    # --json: the manifest's names, the counts as numbers
    described = json.loads(run_vcs("info", "--model", name, "--json", weights=clip["weights"]).stdout)
    manifest = json.loads((clip["weights"] / f"{name}.json").read_text())
    assert {k: described[k] for k in ("name", "arch", "alpha_k", "alpha_n", "sha256")} == {
        k: manifest[k] for k in ("name", "arch", "alpha_k", "alpha_n", "sha256")
    }
    assert described["file"].endswith(manifest["file"])
    # the parts by keys, not the table's phrases; the same counts
    keys = ("sampling", "initial_reconstruction", "msem", "hffm", "hfim", "msfm", "total", "run_in_decoding")
    assert tuple(described["parameters"]) == keys
    assert [described["parameters"][k] for k in keys[:7]] == [counts[p] for p in (*PARTS, "total")]
    assert described["training_steps"] == manifest["training"]["steps"] and described["keyframe_branch_steps"] is None


def test_models_lists_the_weights_folder(tmp_path, clip):
    done = run_vcs("models", "--json", weights=clip["weights"])
    assert_ok(done)
    models = json.loads(done.stdout)
    assert sorted(m["alpha_n"] for m in models) == [0.01, 0.1] and all(m["default"] for m in models)
    # which folder was read, as the table's title says it: each weights file's absolute path
    assert all(Path(m["path"]) == Path(clip["weights"]).absolute() / m["file"] for m in models)
    # The table in a narrow terminal folds a long name onto more lines, but never cuts it short.
    env = {"COLUMNS": "50"}
    table = subprocess.run([sys.executable, "-m", "vcscodec.cli", "models"], capture_output=True, text=True,
                           env=os.environ | env | {"VCS_WEIGHTS": str(clip["weights"])}, check=True).stdout  # fmt: skip
    first_cells = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
    assert "…" not in table and all(m["name"] in first_cells for m in models)
    # Piped without $COLUMNS, tables are not folded at rich's 80 columns (`vcs models | grep NAME` finds whole
    # names); with $COLUMNS, that width.
    width = "import vcscodec.cli as cli; print(cli.out.width)"
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for columns, expected in ((None, "200"), ("50", "50")):
        env = environ | ({"COLUMNS": columns} if columns else {})
        done = subprocess.run([sys.executable, "-c", width], capture_output=True, text=True, env=env, check=True)
        assert done.stdout.strip() == expected
    # No models is an error (a broken install or a mistyped $VCS_WEIGHTS), not an empty table.
    assert_error(run_vcs("models", weights=tmp_path / "gone"), "no models in", "no such folder", "$VCS_WEIGHTS")
    assert_error(run_vcs("models", "--json", weights=tmp_path), "no models in", "no .json manifests")
    (tmp_path / "file").write_text("not a folder")
    assert_error(run_vcs("models", weights=tmp_path / "file"), "no models in", "not a folder")
    # a manifest whose weights file is gone is listed, with a warning that it cannot be used
    partial = tmp_path / "partial"
    shutil.copytree(clip["weights"], partial)
    gone = next(partial.glob("*.npz"))
    gone.unlink()
    listed = run_vcs("models", weights=partial)
    assert_ok(listed)
    assert listed.stderr.startswith(f"vcs: warning: weights file {gone} of model ") and "is missing" in listed.stderr
    # Encoding or decoding with no weights says the same (`pip install .` copies none), not "no model for ratio".
    assert_error(run_vcs("encode", clip["y4m"], tmp_path / "a.vcs", weights=tmp_path / "gone"), "no models in")
    assert_error(run_vcs("decode", clip["vcs"], tmp_path / "a.y4m", weights=tmp_path / "gone"), "no models in")
    # A stray .json in the weights folder is named, with what is wrong with it, and skipped: the others still work.
    stray = tmp_path / "stray"
    shutil.copytree(clip["weights"], stray)
    (stray / "bench.json").write_text('{"runs": []}')
    listed = run_vcs("models", "--json", weights=stray)
    assert_ok(listed)
    assert "bench.json is not a model manifest: it has no field 'name': skipped" in listed.stderr
    assert len(json.loads(listed.stdout)) == len(list(clip["weights"].glob("*.json")))
    assert_ok(run_vcs("encode", clip["y4m"], tmp_path / "s.vcs", "-n", "1", weights=stray))
    # A damaged manifest may be the very model a file needs: the error that it is missing says one was skipped.
    needed = json.loads(run_vcs("info", clip["vcs"], "--json", weights=stray).stdout)["model_name"]
    (stray / f"{needed}.json").write_text("{")
    assert_error(
        run_vcs("decode", clip["vcs"], tmp_path / "s.y4m", weights=stray),
        f"needs model {needed}",
        "manifests there were skipped",
    )
    # Only unreadable manifests: "no models", and why.
    only = tmp_path / "only"
    only.mkdir()
    (only / "bench.json").write_text("[]")
    assert_error(run_vcs("models", weights=only), "no models in", "bench.json", "is unreadable")


def test_export_sampler_refuses_to_overwrite(tmp_path, clip):
    folder = tmp_path / "phi"
    assert_ok(run_vcs("export-sampler", folder, weights=clip["weights"]))
    before = (folder / "phi_n.npy").read_bytes()
    assert_error(run_vcs("export-sampler", folder, weights=clip["weights"]), "already exists", "--force")
    assert_ok(run_vcs("export-sampler", folder, "--force", weights=clip["weights"]))
    assert (folder / "phi_n.npy").read_bytes() == before
    assert files_in(folder) == ["README.txt", "phi_k.csv", "phi_k.npy", "phi_n.csv", "phi_n.npy"]


# ------------------------------------------------------------------------------------------ damaged files


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x20]) + data[offset + 1 :]


def damaged_files(data: bytes) -> list[tuple[str, bytes, str]]:
    (gop0, gop1, end) = record_spans(data)
    header_end = gop0[0]
    return [
        ("header byte", _flip(data, 14 + 1), "header is damaged (CRC mismatch)"),
        ("GOP 0 length", _flip(data, gop0[0] + 6), "GOP 0 is damaged (CRC mismatch)"),
        ("GOP 1 payload", _flip(data, gop1[0] + 13 + 40), "GOP 1 is damaged (CRC mismatch)"),
        ("end record", _flip(data, end[0] + 1), "end record is damaged (CRC mismatch)"),
        ("cut after header", data[:header_end], "file is truncated after the header"),
        ("cut after GOP 0", data[: gop0[1]], "file is truncated after GOP 0"),
        ("cut after GOP 1", data[: gop1[1]], "file is truncated after GOP 1"),
        ("cut in header", data[: header_end - 2], "file is truncated in the header"),
        ("cut in GOP 1", data[: gop1[1] - 5], "file is truncated in GOP 1"),
        ("cut in end record", data[: end[1] - 1], "file is truncated in the end record"),
        ("data after end", data + b"\0", "1 byte of unexpected data after the end record"),
    ]


def test_damaged_files_fail_info_with_one_line(tmp_path, clip):
    data = clip["bytes"]
    assert [e - s for s, e in record_spans(data)][-1] == 17  # the end record: prefix and empty payload
    for what, damaged, message in damaged_files(data):
        path = tmp_path / "bad.vcs"
        path.write_bytes(damaged)
        assert_error(run_vcs("info", path, weights=clip["weights"]), message), what
    done = run_vcs("info", path, weights=clip["weights"])  # the last case: its rate is of what is left
    assert "count the bytes present: the file is damaged" in " ".join(done.stdout.split())
    assert json.loads(run_vcs("info", path, "--json", weights=clip["weights"]).stdout)["damaged"]


# Decoding stops at the damage after it has loaded torch and the model (seconds each on a shared CPU), so it runs
# the header, a GOP payload and every record boundary; `vcs info` above runs every case.
@pytest.mark.parametrize(
    "what", ["header byte", "GOP 1 payload", "cut after header", "cut after GOP 0", "cut after GOP 1"]
)
def test_damaged_files_fail_decode_and_leave_nothing(tmp_path, clip, what):
    [(_, damaged, message)] = [case for case in damaged_files(clip["bytes"]) if case[0] == what]
    path = tmp_path / "bad.vcs"
    path.write_bytes(damaged)
    out = tmp_path / "out" / "video.y4m"
    out.parent.mkdir()
    assert_error(run_vcs("decode", path, out, "--device", "cpu", weights=clip["weights"]), message)
    assert files_in(out.parent) == [], what


def test_compare_and_decode_reference_report_the_same_quality(tmp_path, clip):
    """`vcs compare` prints the means that `score_videos` computes and writes them all as JSON; `vcs decode
    --reference` prints the same means for the file it wrote."""
    rebuilt, report = tmp_path / "rebuilt.y4m", tmp_path / "q.json"
    w = clip["weights"]
    done = run_vcs("decode", clip["vcs"], rebuilt, "--device", "cpu", "--reference", clip["y4m"], weights=w)
    assert_ok(done)
    scores = score_videos(clip["y4m"], rebuilt)
    mean = scores.means()
    assert 15 < mean["psnr_y"] < 60 and 0 < mean["ssim_y"] < 1
    line = done.stdout.splitlines()[-1]
    assert line.startswith(f"quality against {clip['y4m']} (mean of 9 frames): PSNR Y {mean['psnr_y']:.2f} dB, ")
    assert f"U {mean['psnr_u']:.2f}, V {mean['psnr_v']:.2f}; SSIM Y {mean['ssim_y']:.4f}" in line
    done = run_vcs("compare", clip["y4m"], rebuilt, "--per-frame", "--json", report, weights=w)
    assert_ok(done)
    rows = [r for r in done.stdout.splitlines() if re.match(r"^│\s+(\d+|mean) │", r)]
    assert len(rows) == 10  # nine frames and the mean
    assert rows[-1].split("│")[2].strip() == f"{mean['psnr_y']:.2f}"
    written = json.loads(report.read_text())
    assert written["frame_count"] == 9 and len(written["frames"]) == 9
    assert written["mean"]["psnr_y"] == pytest.approx(mean["psnr_y"])
    assert [f["psnr_y"] for f in written["frames"]] == pytest.approx([f.psnr_y for f in scores.frames])


def test_a_part_encoded_with_start_is_scored_against_its_own_source_frames(tmp_path, clip):
    """`vcs encode --start 4` writes where the stream began (format version 3; 4 here, the clip says its chroma
    siting), so `vcs decode --reference` scores frame i against the source's frame 4 + i without being told, for a
    decoded range too."""
    w, part_vcs = clip["weights"], tmp_path / "part.vcs"
    assert_ok(run_vcs("encode", clip["y4m"], part_vcs, "--start", 4, "-n", 5, weights=w))
    header = read_header(part_vcs)
    assert (header.version, header.source_start, header.frame_count) == (4, 4, 5)
    info = json.loads(run_vcs("info", part_vcs, "--json", weights=w).stdout)
    assert (info["format_version"], info["source_start"]) == (4, 4)
    with open_video(clip["y4m"]) as reader:
        original = list(reader)
    for args, first in (((), 4), (("--start", 2, "-n", 2), 6)):
        out = tmp_path / f"part{first}.y4m"
        done = run_vcs("decode", part_vcs, out, *args, "--reference", clip["y4m"], weights=w)
        assert_ok(done)
        with open_video(out) as reader:
            back = list(reader)
        expected = np.mean([psnr(a.y, b.y) for a, b in zip(original[first:], back, strict=False)])
        assert f"(mean of {frames_phrase(len(back))}): PSNR Y {expected:.2f} dB" in done.stdout
    short = tmp_path / "short.y4m"  # the first 8 frames: the part needs the source's frame 8
    data = clip["y4m"].read_bytes()
    short.write_bytes(data[: data.index(b"FRAME") + 8 * (6 + 100 * 60 * 3 // 2)])
    done = run_vcs("decode", part_vcs, tmp_path / "x.y4m", "--reference", short, weights=w)
    assert_error(done, "has 8 frames, too few: the decoded frames are scored against its frames 4–8 (the file begins")


def test_a_numbered_reference_is_sized_and_counted_from_its_first_scored_picture(tmp_path, clip):
    """`decode --reference p_%03d.png` for a part coded from frame 4 opens the pictures at p_004.png: pictures
    before it may be any size (they are not scored), and a reference that ends before the part begins says how
    many frames it has, as a short one does."""
    from PIL import Image

    w, part_vcs = clip["weights"], tmp_path / "part.vcs"
    assert_ok(run_vcs("encode", clip["y4m"], part_vcs, "--start", 4, "-n", 5, weights=w))
    pictures = tmp_path / "p_%03d.png"
    assert_ok(run_vcs("decode", clip["vcs"], pictures, weights=w))
    for number in range(4):  # not scored: a thumbnail's size
        Image.new("L", (50, 40), 128).save(tmp_path / f"p_{number:03d}.png")
    done = run_vcs("decode", part_vcs, tmp_path / "part.y4m", "--reference", pictures, weights=w)
    assert_ok(done)
    compared = run_vcs("compare", pictures, tmp_path / "part.y4m", "--start", 4, "--json", "-", weights=w)
    assert_ok(compared)
    mean = json.loads(compared.stdout)["mean"]["psnr_y"]
    assert f"(mean of {frames_phrase(5)}): PSNR Y {mean:.2f} dB" in done.stdout
    few = tmp_path / "few.y4m"  # three frames: the part begins at the source's frame 4
    write_clip(few, clip["frames"][:3], fps=25)
    done = run_vcs("decode", part_vcs, tmp_path / "x.y4m", "--reference", few, weights=w)
    assert_error(done, "--reference", "has 3 frames, too few: the decoded frames are scored against its frames 4–8")
    assert not (tmp_path / "x.y4m").exists()
    # a scored picture of another size fails before the decode, with no output, not after it
    Image.new("L", (50, 40), 128).save(tmp_path / "p_006.png")
    done = run_vcs("decode", part_vcs, tmp_path / "x.y4m", "--reference", pictures, weights=w)
    assert_error(done, "p_%03d.png: frame 6 is 50x40, not 100x", "frames that change size cannot be scored")
    assert "x.y4m" not in done.stdout and not (tmp_path / "x.y4m").exists()


def test_decode_a_range_with_its_reference(tmp_path, clip):
    """`--start 4 --frames 3` writes frames 4-6, and `--reference` scores them against the reference's 4-6."""
    w, part = clip["weights"], tmp_path / "part.y4m"
    done = run_vcs("decode", clip["vcs"], part, "--start", 4, "-n", 3, "--reference", clip["y4m"], weights=w)
    assert_ok(done)
    with open_video(part) as reader:
        back = list(reader)
    with open_video(clip["y4m"]) as reader:
        original = list(reader)[4:7]
    assert len(back) == 3
    expected = np.mean([psnr(a.y, b.y) for a, b in zip(original, back, strict=True)])
    assert f"(mean of 3 frames): PSNR Y {expected:.2f} dB" in done.stdout
    assert_error(run_vcs("decode", clip["vcs"], tmp_path / "x.y4m", "--start", 9, weights=w), "--start 9 is outside")
    assert not (tmp_path / "x.y4m").exists()
    # -n is a bound: past the end, what there is, said
    done = run_vcs("decode", clip["vcs"], tmp_path / "x.y4m", "--start", 7, "-n", 3, weights=w)
    assert_ok(done)
    assert "--frames 3: the file has 2 frames from frame 7; all decoded" in done.stderr
    with open_video(tmp_path / "x.y4m") as reader:
        assert len(list(reader)) == 2


def test_decode_one_frame_to_one_picture(tmp_path, clip):
    """`decode x.vcs still.png --start 5 -n 1` writes frame 5 as one PNG (colour: RGB, so within conversion error
    of a .y4m decode's frame 5, and farther from frame 4); a single .png for several frames is refused before
    anything is decoded, and nothing is written."""
    w, still, part = clip["weights"], tmp_path / "still.png", tmp_path / "part.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], still, "--start", 5, "-n", 1, weights=w))
    assert_ok(run_vcs("decode", clip["vcs"], part, "--start", 4, "-n", 2, weights=w))
    with open_video(still) as a, open_video(part) as b:
        (picture,), (frame4, frame5) = list(a), list(b)
    assert psnr(picture.y, frame5.y) > 40 and psnr(picture.y, frame5.y) > psnr(picture.y, frame4.y) + 5
    all_frames = run_vcs("decode", clip["vcs"], tmp_path / "all.png", weights=w)
    assert_error(all_frames, "all.png holds one picture, not 9 frames", "--frames 1")
    assert files_in(tmp_path) == ["part.y4m", "still.png"]


def test_numbered_pictures_over_a_longer_run_say_what_is_left(tmp_path, clip):
    """--force over numbered pictures of an earlier, longer decode replaces those it writes and deletes nothing (they
    may be anyone's), but says that the pattern now reads on into the earlier run's pictures."""
    w, pattern = clip["weights"], tmp_path / "f_%02d.png"
    assert_ok(run_vcs("decode", clip["vcs"], pattern, "-q", weights=w))
    done = run_vcs("decode", clip["vcs"], pattern, "-n", 5, "-f", weights=w)
    assert_ok(done)
    warning = f"vcs: warning: {tmp_path / 'f_05.png'} and any pictures after it are an earlier run's, left as they were"
    assert done.stderr.splitlines() == [warning] and len(files_in(tmp_path)) == 9
    assert run_vcs("decode", clip["vcs"], pattern, "-f", "-q", weights=w).stderr == ""  # the whole run: none left


def test_encode_a_range_and_compare_it_from_its_start(tmp_path, clip):
    """`encode --start 2 -n 5` codes frames 2-6 of the input; `compare --start 2` scores a decode of it against
    those frames of the original, numbering the rows as the original's frames."""
    w, vcs, back = clip["weights"], tmp_path / "part.vcs", tmp_path / "part.y4m"
    assert_ok(run_vcs("encode", clip["y4m"], vcs, "--start", 2, "-n", 5, weights=w))
    assert read_header(vcs).frame_count == 5
    assert_ok(run_vcs("decode", vcs, back, weights=w))
    with open_video(back) as reader:
        decoded = list(reader)
    expected = np.mean([psnr(a.y, b.y) for a, b in zip(clip["frames"][2:7], decoded, strict=True)])
    done = run_vcs("compare", clip["y4m"], back, "--start", 2, "--frames", 5, "--json", tmp_path / "q.json", weights=w)
    assert_ok(done)
    scores = json.loads((tmp_path / "q.json").read_text())
    assert scores["frame_count"] == 5 and scores["mean"]["psnr_y"] == pytest.approx(expected)
    assert scores["reference_start"] == 2 and [f["reference_frame"] for f in scores["frames"]] == [2, 3, 4, 5, 6]
    # without --frames every frame of the part is scored, though the original goes on after it
    rows = run_vcs("compare", clip["y4m"], back, "--start", 2, "--per-frame", weights=w).stdout
    assert "│     2 │" in rows and "│     6 │" in rows and "│     0 │" not in rows and "│     7 │" not in rows
    assert f"{expected:.2f}" in rows.splitlines()[-2]
    # --frames is a bound, as ffmpeg's; asking for more than the source holds codes what there is, and says so
    done = run_vcs("encode", clip["y4m"], tmp_path / "tail.vcs", "--start", 8, "-n", 10, weights=w)
    assert_ok(done)
    assert read_header(tmp_path / "tail.vcs").frame_count == 1
    assert "warning: --frames 10:" in done.stderr and "has 1 frame from frame 8" in done.stderr
    assert "1 frame 100×60" in done.stdout
    (tmp_path / "tail.vcs").unlink()
    # and so in a decode: what the file holds from --start, said, and scored against the same frames
    done = run_vcs("decode", vcs, tmp_path / "tail.y4m", "--start", 3, "-n", 10, "--reference", clip["y4m"], weights=w)
    assert_ok(done)
    assert done.stderr == "vcs: warning: --frames 10: the file has 2 frames from frame 3; all decoded\n"
    assert "tail.y4m: 2 frames" in done.stdout and "(mean of 2 frames)" in done.stdout
    (tmp_path / "tail.y4m").unlink()
    assert_error(run_vcs("encode", clip["y4m"], tmp_path / "x.vcs", "--start", 9, weights=w), "--start 9", "9 frames")
    assert_error(run_vcs("encode", clip["y4m"], tmp_path / "x.vcs", "--start", -1, weights=w), "'--start'", code=2)
    for command in (("encode", clip["y4m"], tmp_path / "x.vcs"), ("decode", clip["vcs"], tmp_path / "x.y4m")):
        done = run_vcs(*command, "-n", 0, weights=w)
        assert_error(done, "'--frames' / '-n'", "greater than or equal to 1", f"(see vcs {command[0]} --help)", code=2)
    assert_error(run_vcs("compare", clip["y4m"], back, "--start", 9, weights=w), "--start 9 is outside", "9 frames")
    assert files_in(tmp_path) == ["part.vcs", "part.y4m", "q.json"]


def test_compare_and_reference_errors(tmp_path, clip):
    w = clip["weights"]
    short = tmp_path / "short.y4m"
    write_clip(short, clip["frames"][:4], fps=25)
    assert_error(run_vcs("compare", clip["y4m"], short, weights=w), "ends after 4 frames", "--frames 4")
    assert_ok(run_vcs("compare", clip["y4m"], short, "--frames", "4", weights=w))
    small = tmp_path / "small.y4m"
    write_clip(small, camera_pan(9, 64, 60), fps=25)
    assert_error(run_vcs("compare", clip["y4m"], small, weights=w), "64x60", "100x60")
    assert_error(run_vcs("compare", clip["y4m"], tmp_path / "gone.y4m", weights=w), "gone.y4m", "no such file")
    # a reference that cannot serve is refused before decoding: nothing is written
    out = tmp_path / "out"
    out.mkdir()
    for reference, fragment in (
        (short, "has 4 frames, too few: the decoded frames are scored against its frames 0–8"),
        (small, "is 64x60"),
    ):
        done = run_vcs("decode", clip["vcs"], out / "a.y4m", "--reference", reference, weights=w)
        assert_error(done, "--reference", fragment)
    assert files_in(out) == []


def test_outputs_that_would_destroy_an_input_are_refused(tmp_path, clip):
    """--reference as decode's output, an input as --json: refused, even with --force, and the file is untouched."""
    w = clip["weights"]
    reference = tmp_path / "ref.y4m"
    shutil.copy(clip["y4m"], reference)
    before = reference.read_bytes()
    done = run_vcs("decode", clip["vcs"], reference, "--reference", reference, "--force", weights=w)
    assert_error(done, "ref.y4m", "--reference")
    done = run_vcs("compare", reference, clip["y4m"], "--json", reference, "--force", weights=w)
    assert_error(done, "ref.y4m", "input")
    # the .vcs file itself, under any name (a link, an extension that lies)
    kept = tmp_path / "kept.y4m"
    shutil.copy(clip["vcs"], kept)
    (tmp_path / "link.y4m").symlink_to(kept)
    for output in (kept, tmp_path / "link.y4m"):
        assert_error(run_vcs("decode", kept, output, "--force", weights=w), "is also an input of this command")
    assert kept.read_bytes() == clip["bytes"]
    assert reference.read_bytes() == before
    # numbered pictures: the output pattern, or one picture, names files the --reference pattern reads
    pictures = tmp_path / "p_%03d.png"
    assert_ok(run_vcs("decode", clip["vcs"], pictures, weights=w))
    written = {p: p.read_bytes() for p in tmp_path.glob("p_*.png")}
    assert len(written) == 9
    done = run_vcs("decode", clip["vcs"], pictures, "--reference", pictures, "--force", weights=w)
    assert_error(done, "p_%03d.png", "--reference")
    done = run_vcs("compare", clip["y4m"], pictures, "--json", tmp_path / "p_004.png", "--force", weights=w)
    assert_error(done, "p_004.png", "input")
    assert {p: p.read_bytes() for p in tmp_path.glob("p_*.png")} == written


def test_json_reports_keep_the_force_rule(tmp_path, clip):
    """compare and bench --json: an existing file is kept unless --force; a missing folder fails before the work."""
    w = clip["weights"]
    report = tmp_path / "scores.json"
    report.write_text("mine\n")
    assert_error(run_vcs("compare", clip["y4m"], clip["y4m"], "--json", report, weights=w), "already exists", "--force")
    assert report.read_text() == "mine\n"
    assert_ok(run_vcs("compare", clip["y4m"], clip["y4m"], "--json", report, "--force", weights=w))
    assert json.loads(report.read_text())["frames"]
    # the bench checks its --json target first: here the sequence folder does not exist either, and is not named
    done = run_vcs("bench", "-s", tmp_path / "none", "--json", tmp_path / "gone" / "b.json", weights=w)
    assert_error(done, "output folder", "gone")
    report.write_text("mine\n")
    assert_error(run_vcs("bench", "-s", tmp_path / "none", "--json", report, weights=w), "already exists")


def test_demo_and_export_sampler_refuse_a_file_as_their_folder(tmp_path, clip):
    w = clip["weights"]
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    assert_error(run_vcs("export-sampler", a_file, weights=w), "a_file is a file")
    assert_error(run_vcs("demo", a_file, "-n", "1", weights=w), "a_file is a file")
    assert a_file.read_text() == "mine\n"
    assert_error(run_vcs("export-sampler", tmp_path / "gone" / "phi", weights=w), "output folder", "gone")
    assert_error(run_vcs("demo", tmp_path / "demo", "-n", "0", weights=w), "'--frames' / '-n'", code=2)
    assert_error(run_vcs("demo", tmp_path / "gone" / "demo", "-n", "1", weights=w), "output folder", "gone")
    assert files_in(tmp_path) == ["a_file"]


def run_vcs_piped(*args: object, weights: Path, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """`run_vcs` with bytes on standard input and standard output kept as bytes (stderr decoded)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env |= {"VCS_WEIGHTS": str(weights), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "vcscodec.cli", *map(str, args)], input=stdin, capture_output=True, env=env, timeout=180
    )
    done.stderr = done.stderr.decode()
    return done


def test_pipes_carry_the_same_bytes_as_files(tmp_path, clip):
    """`-` is standard input for `vcs encode` and `vcs decode`, and standard output (Y4M) for `vcs decode`: the
    same bytes as through files, and a decode's summary goes to stderr, leaving stdout to the video."""
    w = clip["weights"]
    done = run_vcs_piped("encode", "-", tmp_path / "a.vcs", weights=w, stdin=clip["y4m"].read_bytes())
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.vcs").read_bytes() == clip["bytes"]
    raw = tmp_path / "clip.yuv"
    write_clip(raw, clip["frames"], fps=25)
    args = ("encode", "-", tmp_path / "b.vcs", "--size", "100x60", "--fps", "25")
    done = run_vcs_piped(*args, weights=w, stdin=raw.read_bytes())
    assert done.returncode == 0, done.stderr
    # raw video says nothing of its chroma siting, which the Y4M's header carries: the same records
    assert _records((tmp_path / "b.vcs").read_bytes()) == _records(clip["bytes"])
    file_out = tmp_path / "file.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], file_out, "--device", "cpu", "-q", weights=w))
    done = run_vcs_piped("decode", clip["vcs"], "-", "--device", "cpu", weights=w)
    assert done.returncode == 0, done.stderr
    assert done.stdout == file_out.read_bytes()
    assert done.stderr.startswith("standard output: 9 frames,") and "Traceback" not in done.stderr  # as encode says
    done = run_vcs_piped("decode", "-", "-", "--device", "cpu", "-q", weights=w, stdin=clip["bytes"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == file_out.read_bytes() and done.stderr == ""
    # encode's - output: the whole file once it is complete, its summary on stderr; from standard input too
    done = run_vcs_piped("encode", clip["y4m"], "-", weights=w)
    assert done.returncode == 0, done.stderr
    assert done.stdout == clip["bytes"] and done.stderr.startswith("standard output: 9 frames")
    done = run_vcs_piped("encode", "-", "-", "--bpp", "1", "-q", weights=w, stdin=clip["y4m"].read_bytes())
    assert done.returncode == 0, done.stderr
    (tmp_path / "c.vcs").write_bytes(done.stdout)
    assert read_header(tmp_path / "c.vcs").quant_step > 1.3 and len(done.stdout) * 8 <= 100 * 60 * 9
    assert not done.stderr
    failed = run_vcs_piped("encode", "-", "-", weights=w, stdin=b"not a video at all" * 100)
    assert_error(failed, "standard input: not a video FFmpeg can decode")
    assert failed.stdout == b""  # nothing half-written reaches the pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vcs", "b.vcs", "c.vcs", "clip.yuv", "file.y4m"]


def test_reader_closing_standard_output_stops_the_encode_quietly(clip):
    """`vcs encode in.y4m - | …` whose reader is gone before the file is sent: one line, SIGPIPE's exit code 141."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env |= {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    encode = subprocess.Popen(
        [sys.executable, "-m", "vcscodec.cli", "encode", clip["y4m"], "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    encode.stdout.close()  # before the interpreter has even started: the first write finds no reader
    stderr = encode.stderr.read().decode()
    assert encode.wait(timeout=180) == 141, stderr
    size = len(clip["bytes"])
    assert stderr.strip() == f"vcs: standard output closed by its reader after 0 of the file's {size:,} bytes"
    # with standard input spooled too (`vcs encode - -`, `vcs decode - -`): the same stop, not an error
    for args, data, said in (
        (("encode", "-", "-"), clip["y4m"].read_bytes(), f"after 0 of the file's {size:,} bytes"),
        (("decode", "-", "-", "--device", "cpu"), clip["bytes"], "after 0 frames"),
    ):
        piped = subprocess.Popen(
            [sys.executable, "-m", "vcscodec.cli", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        piped.stdout.close()
        _, stderr = piped.communicate(data, timeout=180)
        assert piped.returncode == 141, stderr
        assert stderr.decode().strip() == f"vcs: standard output closed by its reader {said}"


def test_an_encode_to_standard_output_that_cannot_be_written_is_one_line(tmp_path, clip):
    """The reader leaving mid-file (past a pipe's 64 KiB buffer: a short write, no exception from a buffered
    writer) is exit 141, never a summary and exit 0; a full disk and a closed standard output are one line."""
    big = tmp_path / "big.y4m"
    write_clip(big, camera_pan(9, 320, 240, seed=3), fps=25)
    script = f"{sys.executable} -m vcscodec.cli encode {big} - --quant-step 0.05 | head -c 70000 | wc -c"
    env = os.environ | {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "-c", script + "; echo ${PIPESTATUS[0]}"], capture_output=True, text=True, env=env, timeout=180
    )
    received, code = done.stdout.split()
    assert (received, code) == ("70000", "141"), done.stderr
    assert re.fullmatch(
        r"vcs: standard output closed by its reader after [\d,]+ of the file's [\d,]+ bytes\n", done.stderr
    )
    cmd = [sys.executable, "-m", "vcscodec.cli", "encode", clip["y4m"], "-"]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert_error(done, "standard output: writing the file failed after 0 bytes (No space left on device)")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, preexec_fn=lambda: os.close(1))
    assert_error(done, "standard output is closed")
    with open("/dev/full", "wb") as full:
        info = [sys.executable, "-m", "vcscodec.cli", "info", clip["vcs"], "--json"]
        done = subprocess.run(info, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert_error(done, "No space left on device")


def test_compare_reads_either_video_from_standard_input(tmp_path, clip):
    """`vcs decode clip.vcs - | vcs compare clip.y4m -`: the same scores as through a file, and messages and the
    JSON report name standard input, never the temporary copy."""
    w, decoded = clip["weights"], tmp_path / "decoded.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], decoded, "-q", weights=w))
    report, piped_report = tmp_path / "file.json", tmp_path / "piped.json"
    assert_ok(run_vcs("compare", clip["y4m"], decoded, "--json", report, weights=w))
    done = run_vcs_piped("compare", clip["y4m"], "-", "--json", piped_report, weights=w, stdin=decoded.read_bytes())
    assert done.returncode == 0, done.stderr
    by_file, piped = json.loads(report.read_text()), json.loads(piped_report.read_text())
    assert piped["test"] == "standard input" and piped["reference"] == by_file["reference"] == str(clip["y4m"])
    assert piped["frames"] == by_file["frames"] and "standard input against" in done.stdout.decode()
    done = run_vcs("compare", clip["y4m"], decoded, "--json", "-", weights=w)  # the report on stdout, alone
    assert_ok(done)
    assert json.loads(done.stdout)["frames"] == by_file["frames"] and "mean" in done.stderr
    assert not (Path.cwd() / "-").exists()
    done = run_vcs_piped("compare", "-", "-", weights=w, stdin=decoded.read_bytes())
    assert_error(done, "REFERENCE and TEST cannot both be -", "(see vcs compare --help)", code=2)
    done = run_vcs_piped("compare", clip["y4m"], "-", weights=w, stdin=b"junk" * 100)
    line = assert_error(done, "standard input: not a video FFmpeg can decode")
    assert "/tmp" not in line


def test_reader_closing_standard_output_stops_the_decode_quietly(clip):
    """`vcs decode in.vcs - | head -c N`: the reader going away is not an error of the input. One line says where
    the decode stopped, the exit code is SIGPIPE's 141 (as `yes | head`), and Python prints no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env |= {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    decode = subprocess.Popen(
        [sys.executable, "-m", "vcscodec.cli", "decode", clip["vcs"], "-", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    assert decode.stdout.read(64).startswith(b"YUV4MPEG2 ")  # the header, then the reader is gone
    decode.stdout.close()
    stderr = decode.stderr.read().decode()
    assert decode.wait(timeout=180) == 141, stderr
    assert stderr.splitlines() == [stderr.strip()] and "Traceback" not in stderr and "error" not in stderr
    assert re.fullmatch(r"vcs: standard output closed by its reader after \d frames?", stderr.strip()), stderr


def test_warnings_name_standard_input(tmp_path, clip):
    # a warning about a piped source names it as the user gave it, not the temporary copy it was read from
    data = Path(clip["y4m"]).read_bytes()
    header, rest = data.split(b"\n", 1)
    interlaced = b" ".join([f for f in header.split(b" ") if not f.startswith(b"I")] + [b"It"]) + b"\n" + rest
    done = run_vcs_piped("encode", "-", tmp_path / "a.vcs", "-q", weights=clip["weights"], stdin=interlaced)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("vcs: warning: standard input is interlaced (9 frames)"), done.stderr
    assert "vcs-spool" not in done.stderr


def test_named_pipes_are_read_once(tmp_path, clip):
    """A named pipe (mkfifo, bash's <(…)) can be read once: it is copied aside first, as standard input is, where
    opening it a second time hung forever. Its name still gives what a name gives."""
    import threading

    w = clip["weights"]

    def through_pipe(data: bytes, name: str) -> Path:
        fifo = tmp_path / name
        os.mkfifo(fifo)
        threading.Thread(target=fifo.write_bytes, args=(data,), daemon=True).start()
        return fifo

    source = through_pipe(Path(clip["y4m"]).read_bytes(), "in.y4m")
    done = run_vcs("encode", source, tmp_path / "a.vcs", weights=w, timeout=120)
    assert_ok(done)
    assert (tmp_path / "a.vcs").read_bytes() == clip["bytes"]
    coded = through_pipe(clip["bytes"], "in.vcs")
    assert_ok(run_vcs("decode", coded, tmp_path / "a.y4m", weights=w, timeout=120))
    planes = b"".join(f.y.tobytes() + f.u.tobytes() + f.v.tobytes() for f in clip["frames"])
    raw = through_pipe(planes, "r_100x60_25.yuv")
    assert_ok(run_vcs("encode", raw, tmp_path / "r.vcs", weights=w, timeout=120))  # size and rate from its name
    assert read_header(tmp_path / "r.vcs").frame_count == 9
    unnamed = through_pipe(planes, "63")  # bash's <(…): /dev/fd/63, raw I420 by --size
    done = run_vcs("encode", unnamed, tmp_path / "u.vcs", "--size", "100x60", "--fps", "25", weights=w, timeout=120)
    assert_ok(done)
    assert read_header(tmp_path / "u.vcs").frame_count == 9
    empty = through_pipe(b"", "empty.y4m")
    assert_error(run_vcs("encode", empty, tmp_path / "e.vcs", weights=w, timeout=120), "empty.y4m is empty")
    # a piped --reference is checked before the decode and scored after it: read once, kept aside
    reference = through_pipe(Path(clip["y4m"]).read_bytes(), "ref.y4m")
    done = run_vcs("decode", clip["vcs"], tmp_path / "b.y4m", "--reference", reference, weights=w, timeout=120)
    assert_ok(done)
    assert f"quality against {reference} (mean of 9 frames)" in done.stdout


def test_pipe_errors_name_standard_input(tmp_path, clip):
    w = clip["weights"]
    out = tmp_path / "out"
    out.mkdir()
    assert_error(run_vcs_piped("encode", "-", out / "a.vcs", weights=w), "standard input is empty")
    done = run_vcs_piped("encode", "-", out / "a.vcs", weights=w, stdin=b"not a video at all" * 100)
    line = assert_error(done, "standard input: not a video FFmpeg can decode")
    assert "/tmp" not in line and "stdin" not in line  # the temporary copy is not what the user gave
    done = run_vcs_piped("decode", "-", out / "a.y4m", weights=w, stdin=b"junk")
    assert_error(done, "not a .vcs file")
    # vcs info reads - too, as every command does
    done = run_vcs_piped("info", "-", "--json", weights=w, stdin=clip["bytes"])
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["file"] == "standard input" and described["frame_count"] == 9
    done = run_vcs_piped("info", "-", weights=w, stdin=clip["bytes"][:-40])  # cut: described, and exit 1
    assert_error(done, "standard input is damaged")
    assert b"standard input" in done.stdout
    done = run_vcs_piped("decode", clip["vcs"], "-", "--reference", clip["y4m"], weights=w)
    assert_error(done, "--reference", "not -", code=2)
    assert done.stdout == b""
    # a video is never written onto a terminal
    import pty

    controller, terminal = pty.openpty()
    env = os.environ | {"VCS_WEIGHTS": str(w)}
    with os.fdopen(controller, "rb"), os.fdopen(terminal, "wb") as tty:
        cmd = [sys.executable, "-m", "vcscodec.cli", "decode", clip["vcs"], "-"]
        done = subprocess.run(cmd, stdout=tty, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert_error(done, "standard output is a terminal")
    controller, terminal = pty.openpty()  # nor a .vcs file
    with os.fdopen(controller, "rb"), os.fdopen(terminal, "wb") as tty:
        cmd = [sys.executable, "-m", "vcscodec.cli", "encode", clip["y4m"], "-"]
        done = subprocess.run(cmd, stdout=tty, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert_error(done, "standard output is a terminal", "- > clip.vcs")
    # nor read from one; and a closed standard input (`<&-`) is named as such
    controller, terminal = pty.openpty()
    with os.fdopen(controller, "rb"), os.fdopen(terminal, "rb") as tty:
        cmd = [sys.executable, "-m", "vcscodec.cli", "encode", "-", out / "a.vcs"]
        done = subprocess.run(cmd, stdin=tty, capture_output=True, text=True, env=env, timeout=120)
    assert_error(done, "standard input is a terminal", "pipe a video")
    controller, terminal = pty.openpty()  # where a .vcs file is expected, the hint says so
    with os.fdopen(controller, "rb"), os.fdopen(terminal, "rb") as tty:
        cmd = [sys.executable, "-m", "vcscodec.cli", "info", "-"]
        done = subprocess.run(cmd, stdin=tty, capture_output=True, text=True, env=env, timeout=120)
    assert_error(done, "standard input is a terminal", "pipe a .vcs file")
    cmd = [sys.executable, "-m", "vcscodec.cli", "encode", "-", out / "a.vcs"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, preexec_fn=lambda: os.close(0))
    assert_error(done, "standard input is closed")
    assert files_in(out) == []


# --------------------------------------------------------------------------------------------- bad input


def test_missing_and_unreadable_inputs(tmp_path, clip):
    w = clip["weights"]
    out = tmp_path / "out"
    out.mkdir()
    assert_error(run_vcs("encode", tmp_path / "gone.y4m", out / "a.vcs", weights=w), "gone.y4m", "no such file")
    assert_error(run_vcs("decode", tmp_path / "gone.vcs", out / "a.y4m", weights=w), "gone.vcs", "no such file")
    assert_error(run_vcs("info", tmp_path / "gone.vcs", weights=w), "gone.vcs", "no such file")
    assert_error(run_vcs("encode", tmp_path, out / "a.vcs", weights=w), "is a folder")
    assert_error(run_vcs("decode", tmp_path, out / "a.y4m", weights=w), "is a folder, not a .vcs file")
    # a .vcs file given where a video belongs: named for what it is
    assert_error(run_vcs("encode", clip["vcs"], out / "a.vcs", weights=w), "clip.vcs: a .vcs file", "vcs decode")
    assert_error(run_vcs("compare", clip["y4m"], clip["vcs"], weights=w), "a .vcs file, not a video")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(3000))
    assert_error(run_vcs("encode", junk, out / "a.vcs", weights=w), "junk.mp4", "not a video FFmpeg can decode")
    not_vcs = tmp_path / "clip.vcs"
    shutil.copy(clip["y4m"], not_vcs)
    assert_error(run_vcs("decode", not_vcs, out / "a.y4m", weights=w), "not a .vcs file but a Y4M video (vcs encode")
    empty = tmp_path / "empty.vcs"
    empty.write_bytes(b"")
    assert_error(run_vcs("decode", empty, out / "a.y4m", weights=w), "not a .vcs file (empty file)")
    # an input the user may not read (root reads everything, so this part needs an ordinary user)
    if os.geteuid() != 0:
        locked = tmp_path / "locked.y4m"
        shutil.copy(clip["y4m"], locked)
        locked.chmod(0)
        assert_error(run_vcs("encode", locked, out / "a.vcs", weights=w), "locked.y4m", "cannot read")
    assert files_in(out) == []


def test_raw_yuv_needs_its_size(tmp_path, clip):
    raw = tmp_path / "clip.yuv"
    write_clip(raw, clip["frames"][:2], fps=25)
    out = tmp_path / "out"
    out.mkdir()
    assert_error(run_vcs("encode", raw, out / "a.vcs", weights=clip["weights"]), "--size WxH and --fps")
    assert_error(run_vcs("encode", raw, out / "a.vcs", "--size", "100x60", weights=clip["weights"]), "--fps")
    assert_error(
        run_vcs("encode", raw, out / "a.vcs", "--size", "64x48", "--fps", "25", weights=clip["weights"]),
        "not a multiple",
    )
    # a value that does not parse is a mistyped command line (exit 2), as a count out of range is
    done = run_vcs("encode", raw, out / "a.vcs", "--size", "100", weights=clip["weights"])
    assert_error(done, "--size '100' is not WxH", "(see vcs encode --help)", code=2)
    done = run_vcs("encode", raw, out / "a.vcs", "--size", "100x60", "--fps", "abc", weights=clip["weights"])
    assert_error(done, "--fps: bad frame rate 'abc'", code=2)
    # raw I420 under another name: FFmpeg cannot tell what it is, and the error says why --size did not apply
    other = raw.rename(tmp_path / "clip.raw")
    done = run_vcs("encode", other, out / "a.vcs", "--size", "100x60", "--fps", "25", weights=clip["weights"])
    assert_error(done, "clip.raw: not a video FFmpeg can decode", "raw I420 is read from a file named .yuv only")
    other.rename(raw)
    # --size sets the size of raw input only: given for a file with its own, other size, it is refused, not ignored
    w, h = read_header(clip["vcs"]).width, read_header(clip["vcs"]).height
    assert_error(
        run_vcs("encode", clip["y4m"], out / "a.vcs", "--size", "64x64", weights=clip["weights"]),
        "--size 64x64 is for raw .yuv input",
        f"is {w}x{h}",
    )
    assert files_in(out) == []


def test_unknown_output_extension(tmp_path, clip):
    out = tmp_path / "out"
    out.mkdir()
    assert_error(
        run_vcs("decode", clip["vcs"], out / "video.xyz", weights=clip["weights"]), "cannot write .xyz", ".y4m"
    )
    assert_error(run_vcs("decode", clip["vcs"], out / "video", weights=clip["weights"]), "without an extension")
    # the encoder writes .vcs files only (a swapped `vcs encode in.y4m out.y4m` would make a misnamed file)
    assert_error(run_vcs("encode", clip["y4m"], out / "a.y4m", weights=clip["weights"]), "a.y4m", ".vcs")
    assert files_in(out) == []


def test_decode_with_a_model_of_other_weights_is_refused(tmp_path, clip):
    other = next(p.stem for p in clip["weights"].glob("*-n0.01-*.json"))
    out = tmp_path / "out"
    out.mkdir()
    done = run_vcs("decode", clip["vcs"], out / "a.y4m", "--model", other, weights=clip["weights"])
    assert_error(done, other, "other weights", read_header(clip["vcs"]).model_name)
    assert files_in(out) == []


def test_file_made_with_other_weights_names_its_model(tmp_path, clip):
    model_name = read_header(clip["vcs"]).model_name
    other = tmp_path / "other_weights"  # a weights folder with only the other (αn = 0.01) model
    other.mkdir()
    for path in clip["weights"].iterdir():
        if "-n0.01-" in path.name:
            shutil.copy(path, other)
    assert len(files_in(other)) == 2
    out = tmp_path / "out"
    out.mkdir()
    line = assert_error(run_vcs("decode", clip["vcs"], out / "a.y4m", weights=other), model_name)
    assert "needs model" in line and "not in the weights folder" in line
    # vcs info says so before anyone tries, in the same words
    info = json.loads(run_vcs("info", clip["vcs"], "--json", weights=other).stdout)
    assert (info["decodable"], info["decode_error"]) == (False, line.removeprefix("vcs: error: "))
    # same name, other weights: a manifest that claims the name with another hash is refused by hash
    forged = tmp_path / "forged_weights"
    shutil.copytree(clip["weights"], forged)
    manifest = forged / f"{model_name}.json"
    info = json.loads(manifest.read_text())
    info["sha256"] = "0" * 64
    manifest.write_text(json.dumps(info))
    line = assert_error(run_vcs("decode", clip["vcs"], out / "a.y4m", weights=forged), model_name)
    assert "made with model" in line and "sha256 0000000000000000" in line
    # a hash that differs late is shown far enough to tell the two apart
    real = read_header(clip["vcs"]).weights_sha256
    info["sha256"] = real[:40] + ("0" if real[40] != "0" else "1") + real[41:]
    manifest.write_text(json.dumps(info))
    line = assert_error(run_vcs("decode", clip["vcs"], out / "a.y4m", weights=forged), model_name)
    assert f"(sha256 {real[:48]}…)" in line and f"(sha256 {info['sha256'][:48]}…)" in line
    assert files_in(out) == []


def test_newer_format_version_is_refused_by_name(tmp_path, clip):
    data = bytearray(clip["bytes"])
    (length,) = struct.unpack_from("<I", data, 10)
    struct.pack_into("<H", data, 8, FORMAT_VERSION + 1)
    struct.pack_into("<I", data, 14 + length, zlib.crc32(bytes(data[8 : 14 + length])))  # fix the header CRC
    newer = tmp_path / "newer.vcs"
    newer.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    ours = FORMAT_VERSION
    message = f"file format version {ours + 1} is newer than this vcscodec reads ({ours}): upgrade vcscodec"
    assert_error(run_vcs("decode", newer, out / "a.y4m", weights=clip["weights"]), message)
    assert_error(run_vcs("info", newer, weights=clip["weights"]), message)
    # without the CRC fix the same change reads as damage
    struct.pack_into("<I", data, 14 + length, zlib.crc32(bytes(clip["bytes"][8 : 14 + length])))
    newer.write_bytes(bytes(data))
    assert_error(run_vcs("info", newer, weights=clip["weights"]), "header is damaged (CRC mismatch)")
    assert files_in(out) == []


# A decode stopped by a signal after its first frame: the signal arrives while the output is half written.
_SIGNAL_MIDWAY = """
import os, signal, sys
import vcscodec.codec as codec
from vcscodec.cli import main

records, stop = codec.decode_records, getattr(signal, sys.argv[1])

def first_frame_then_signal(*args, **kwargs):
    for frame in records(*args, **kwargs):
        yield frame
        os.kill(os.getpid(), stop)

codec.decode_records = first_frame_then_signal
sys.argv = ["vcs", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [("SIGTERM", 143, "vcs: terminated"), ("SIGINT", 130, "vcs: interrupted"), ("SIGHUP", 129, "vcs: hung up")],
)
def test_a_signal_midway_leaves_nothing(tmp_path, clip, sig, code, said):
    """Ctrl-C, SIGTERM (a scheduler's kill, `timeout`) or SIGHUP (a closed terminal) during a decode: exit 130 /
    143 / 129, one line, no traceback, and neither the output nor its temporary file is left behind."""
    env = os.environ | {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", _SIGNAL_MIDWAY, sig, "decode", str(clip["vcs"]), str(tmp_path / "out.y4m"), "-q"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
    assert (done.returncode, done.stderr.strip()) == (code, said)
    assert files_in(tmp_path) == []


def test_a_stop_whose_exception_is_lost_still_keeps_nothing(tmp_path, clip):
    """A signal's exception raised where Python only prints "Exception ignored" (a weakref or atexit callback) let
    the decode run to its end, keep its output and exit 0. The stop is remembered: the writer refuses to keep its
    output, and the command ends as stopped. A second signal meanwhile is ignored (it broke the clean-up)."""
    script = _SIGNAL_MIDWAY.replace(
        "os.kill(os.getpid(), stop)",
        "from vcscodec import output\n"
        "        try:\n"
        "            output.request_stop(stop)\n"
        "        except output.Stopped:\n"
        "            pass  # as Python does in a callback\n"
        "        os.kill(os.getpid(), signal.SIGTERM)",
    )
    env = os.environ | {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", script, "SIGINT", "decode", str(clip["vcs"]), str(tmp_path / "out.y4m"), "-q"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
    assert (done.returncode, done.stderr.strip()) == (130, "vcs: interrupted")
    assert files_in(tmp_path) == []


def test_a_signal_while_the_program_starts_is_one_line():
    """`vcs` (`launch.main`) answers a signal before the command line has loaded: one line and the signal's exit
    status, not Python's traceback from inside an import."""
    script = (
        "import os, signal, sys, time, types\n"
        "fake = types.ModuleType('vcscodec.cli')\n"
        "def main():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "fake.main = main\n"
        "sys.modules['vcscodec.cli'] = fake  # stands for the command line, still loading\n"
        "from vcscodec.launch import main as vcs\n"
        "vcs()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (143, "vcs: terminated\n")


def test_out_of_memory_midway_is_one_line_and_leaves_nothing(tmp_path, clip):
    """A decode that runs out of memory after its first frame (a crafted 65535×65535 header concealed to grey, a
    large --batch-gops): exit 1, one line that says so, and no output or temporary file left behind."""
    script = _SIGNAL_MIDWAY.replace("os.kill(os.getpid(), stop)", "raise MemoryError('Unable to allocate 16.0 GiB')")
    env = os.environ | {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", script, "SIGTERM", "decode", str(clip["vcs"]), str(tmp_path / "out.y4m"), "-q"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)
    assert (done.returncode, done.stderr.strip()) == (1, "vcs: error: out of memory (Unable to allocate 16.0 GiB)")
    assert files_in(tmp_path) == []


def test_a_clip_too_small_to_score_is_refused_before_decoding(tmp_path, clip):
    """Any size codes, but SSIM's 11×11 window needs frames that large: `decode --reference` says so before it
    decodes anything (it used to write the video, then fail), and `compare` before reading the videos through."""
    small, vcs, out = tmp_path / "small.y4m", tmp_path / "small.vcs", tmp_path / "out.y4m"
    write_clip(small, gray_clip(3, 16, 8, seed=2))
    assert_ok(run_vcs("encode", small, vcs, "-q", weights=clip["weights"]))
    said = "SSIM needs a plane of at least 11x11, got 16x8"
    assert_error(run_vcs("decode", vcs, out, "--reference", small, weights=clip["weights"]), "--reference", said)
    assert not out.exists()
    assert_ok(run_vcs("decode", vcs, out, "-q", weights=clip["weights"]))
    assert_error(run_vcs("compare", small, out, weights=clip["weights"]), "small.y4m and", "cannot be scored", said)


def test_existing_output_is_refused_unless_forced(tmp_path, clip):
    w = clip["weights"]
    vcs, video = tmp_path / "a.vcs", tmp_path / "a.y4m"
    vcs.write_bytes(b"precious")
    video.write_bytes(b"precious")
    assert_error(run_vcs("encode", clip["y4m"], vcs, weights=w), "already exists", "--force")
    assert_error(run_vcs("encode", clip["y4m"], vcs, "--bpp", "2", weights=w), "already exists", "--force")
    assert_error(run_vcs("decode", clip["vcs"], video, weights=w), "already exists", "--force")
    assert vcs.read_bytes() == video.read_bytes() == b"precious"
    assert files_in(tmp_path) == ["a.vcs", "a.y4m"]
    assert_ok(run_vcs("encode", clip["y4m"], vcs, "--force", "-q", weights=w))
    assert vcs.read_bytes() == clip["bytes"]
    assert files_in(tmp_path) == ["a.vcs", "a.y4m"]  # decode --force: test_codec.py


def test_output_folder_missing_or_not_writable(tmp_path, clip):
    w = clip["weights"]
    gone = tmp_path / "gone"
    assert_error(run_vcs("encode", clip["y4m"], gone / "a.vcs", weights=w), "does not exist", str(gone))
    assert_error(run_vcs("decode", clip["vcs"], gone / "a.y4m", weights=w), "does not exist", str(gone))
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits; an immutable folder refuses even root
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(locked)]).returncode:
            pytest.skip("running as root and cannot make a folder immutable")
    else:
        locked.chmod(0o500)
    try:
        assert_error(run_vcs("encode", clip["y4m"], locked / "a.vcs", weights=w), "not writable", str(locked))
        assert_error(run_vcs("decode", clip["vcs"], locked / "a.y4m", weights=w), "not writable", str(locked))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        locked.chmod(0o700)
    assert files_in(locked) == [] and files_in(tmp_path) == ["locked"]


def test_cuda_without_cuda(tmp_path, clip):
    out = tmp_path / "a.y4m"
    done = run_vcs("decode", clip["vcs"], out, "--device", "tpu", weights=clip["weights"])
    assert_error(done, "'--device'", "'tpu' is not one of 'auto', 'cpu', 'cuda'", "(see vcs decode --help)", code=2)
    assert files_in(tmp_path) == []
    done = run_vcs("decode", clip["vcs"], out, "--device", "cuda", "-q", weights=clip["weights"])
    if done.returncode == 0:
        pytest.skip("this machine has CUDA")
    assert_error(done, "--device cuda: no CUDA device is available")
    assert files_in(tmp_path) == []


def test_named_values_in_any_case(tmp_path, clip):
    # `--device CPU` is what a user means; a value that names nothing is a mistyped command line (exit 2) that
    # lists the names, for every option of named values, before any work.
    w = clip["weights"]
    lower, upper = tmp_path / "l.y4m", tmp_path / "u.y4m"
    assert_ok(run_vcs("decode", clip["vcs"], lower, "--device", "cpu", "--precision", "fp32", "-q", weights=w))
    assert_ok(run_vcs("decode", clip["vcs"], upper, "--device", "CPU", "--precision", "FP32", "-q", weights=w))
    assert lower.read_bytes() == upper.read_bytes()
    coded = tmp_path / "c.vcs"
    assert_ok(run_vcs("encode", clip["y4m"], coded, "--chroma", "YUV420", "-q", weights=w))
    with ContainerReader(coded) as reader:
        assert reader.header.num_planes == 3
    for command, option, value, names in [
        (("decode", clip["vcs"], tmp_path / "a.y4m"), "--precision", "fp64", "'fp32', 'bf16'"),
        (("encode", clip["y4m"], tmp_path / "a.vcs"), "--chroma", "rgb", "'auto', 'gray', 'yuv420'"),
        (("bench", "-s", tmp_path), "--chroma", "colour", "'auto', 'gray', 'yuv420'"),
        (("bench", "-s", tmp_path), "--device", "gpu", "'auto', 'cpu', 'cuda'"),
        (("demo", tmp_path / "demo"), "--device", "gpu", "'auto', 'cpu', 'cuda'"),
    ]:
        done = run_vcs(*command, option, value, weights=w)
        assert_error(done, f"'{option}'", f"'{value}' is not one of {names}", f"(see vcs {command[0]} --help)", code=2)
    assert sorted(files_in(tmp_path)) == ["c.vcs", "l.y4m", "u.y4m"]


def test_grey_input_is_coded_grey(tmp_path, clip):
    src, vcs = tmp_path / "g.y4m", tmp_path / "g.vcs"
    write_clip(src, gray_clip(2, 100, 60), fps=25)
    done = run_vcs("encode", src, vcs, weights=clip["weights"])
    assert_ok(done)
    assert "chroma gray" in done.stdout and done.stderr == ""
    with ContainerReader(vcs) as reader:
        assert reader.header.num_planes == 1
    # colour forced into grey: a one-line warning, and still exit 0
    done = run_vcs("encode", clip["y4m"], tmp_path / "c.vcs", "--chroma", "gray", weights=clip["weights"])
    assert_ok(done)
    assert done.stderr.startswith("vcs: warning: ") and len(done.stderr.splitlines()) == 1


def test_deeper_or_finer_sources_are_coded_with_a_warning(tmp_path, clip, write_with_pyav):
    # A .vcs file holds 8-bit 4:2:0 only: a 10-bit 4:2:2 source is rounded on the way in, and the user is told
    # what was lost in one line, as FFmpeg does; the encode still succeeds.
    rng = np.random.default_rng(3)
    planes = [[rng.integers(64, 940, (64, w), dtype=np.uint16) for w in (96, 48, 48)] for _ in range(2)]
    src = tmp_path / "ten.mkv"
    write_with_pyav(src, planes, "yuv422p10le", codec="ffv1")
    done = run_vcs("encode", src, tmp_path / "ten.vcs", weights=clip["weights"])
    assert_ok(done)
    said = f"{src}: the source is yuv422p10le: 10-bit samples rounded to 8 bits and chroma subsampled to 4:2:0"
    assert done.stderr.splitlines() == [f"vcs: warning: {said}"]
    # compare (and decode --reference) read the same way, and say so too, for the video it concerns
    back = tmp_path / "back.y4m"
    assert_ok(run_vcs("decode", tmp_path / "ten.vcs", back, "-q", weights=clip["weights"]))
    compared = run_vcs("compare", src, back, weights=clip["weights"])
    assert_ok(compared)
    assert compared.stderr.splitlines() == [f"vcs: warning: {said}"]
    cut = tmp_path / "cut.y4m"
    cut.write_bytes(back.read_bytes()[:-100])
    compared = run_vcs("compare", src, cut, "-n", 1, weights=clip["weights"])
    assert f"vcs: warning: {cut} ends in a partial frame" in compared.stderr


def test_truncated_y4m_is_coded_to_its_last_whole_frame_with_a_warning(tmp_path, clip):
    src, vcs = tmp_path / "cut.y4m", tmp_path / "cut.vcs"
    src.write_bytes(clip["y4m"].read_bytes()[:-100])  # a copy that stopped 100 bytes short
    done = run_vcs("encode", src, vcs, weights=clip["weights"])
    assert_ok(done)
    assert done.stderr.splitlines() == [
        f"vcs: warning: {src} ends in a partial frame (8906 bytes; truncated?): it is left out"
    ]
    assert "8 frames" in done.stdout and read_header(vcs).frame_count == 8
    header, frame = clip["y4m"].read_bytes().split(b"\n", 1)[0], 100 * 60 * 3 // 2
    src.write_bytes(header + b"\nFRAME\n" + bytes(frame - 10))  # its only frame cut short
    done = run_vcs("encode", src, tmp_path / "none.vcs", weights=clip["weights"])
    assert_error(done, "cut.y4m has no frames but a partial one (8996 bytes; truncated?)")  # with its FRAME line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode"], "vcs: error: missing argument 'input' (see vcs encode --help)"),
        (["encode", "a.y4m", "b.vcs", "--bogus"], "vcs: error: no such option: --bogus (see vcs encode --help)"),
        (["frobnicate"], "vcs: error: no such command 'frobnicate' (see vcs --help)"),
        (["decode", "a.vcs", "b.y4m", "--frames", "abc"], "vcs: error: invalid value for '--frames' / '-n': "),
        (
            ["decode", "a.vcs", "b.y4m", "--device"],
            "vcs: error: option '--device' requires an argument (see vcs decode",
        ),
        # options that do not go together are usage errors too, caught before any file is read
        (["info", "--json"], "vcs: error: give a .vcs file or --model NAME (see vcs info --help)"),
        (
            ["encode", "gone.y4m", "b.vcs", "--bpp", "1", "--quant-step", "2"],
            "vcs: error: give --quant-step or --bpp, not both (--bpp chooses the step) (see vcs encode --help)",
        ),
        (["train", "--force", "--set", "run.dir=x"], "vcs: error: --force goes with --pack"),
        # a value the library refuses (quant.check_step, …) is refused as mistyped, before the input is opened
        (["encode", "gone.y4m", "b.vcs", "--quant-step", "0"], "vcs: error: --quant-step: quantizer step 0.0 is out"),
        (["encode", "gone.y4m", "b.vcs", "-r", "2"], "vcs: error: --ratio: ratio 2 is outside (0, 1]"),
        (["encode", "gone.y4m", "b.vcs", "--bpp", "nan"], "vcs: error: --bpp: target rate nan bits per pixel"),
        (["export-sampler", "gone", "-r", "0"], "vcs: error: --ratio: ratio 0 is outside (0, 1]"),
        (["bench", "-s", "gone", "-r", "0.1,2"], "vcs: error: --ratios: ratio 2 is outside (0, 1]"),
        (["bench", "-s", "gone", "--quant-step", "2,-1"], "vcs: error: --quant-step: quantizer step -1.0 is out"),
        (["bench", "-s", "gone", "--anchor-qp", "22,60"], "vcs: error: --anchor-qp: anchor QP 60 is outside 0–51"),
        # an unset shell variable: as a path, "" would be the current folder, which export-sampler would fill
        (["export-sampler", ""], "vcs: error: the argument after 'export-sampler' is empty (an unset shell"),
        (["encode", "a.y4m", "b.vcs", "-m", ""], "vcs: error: -m's value is empty (an unset shell variable?)"),
        (["bench", "-s", "gone", "--keep="], "vcs: error: --keep's value is empty (an unset shell variable?)"),
        (["encode", "-f", "", "b.vcs"], "vcs: error: the argument after '-f' is empty"),  # a flag takes no value
    ],
)
def test_usage_errors_are_one_line(args, message) -> None:
    """A mistyped command line is bad input too: one line on stderr and exit 2 (Click's code for usage errors),
    not Typer's five-line panel."""
    done = subprocess.run([sys.executable, "-m", "vcscodec.cli", *args], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(message), done.stderr


def test_version_names_the_format_version() -> None:
    done = subprocess.run([sys.executable, "-m", "vcscodec.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == "vcscodec 0.2.0 (reads .vcs format versions 1 to 4)"


@pytest.mark.parametrize("fails", [False, True])
def test_a_failed_command_erases_its_progress_bar(monkeypatch, fails):
    # On a terminal the bar stays when the work ends, and is erased when it ends in an error, so that the
    # one-line error is all a failed command leaves (no "0/?" bar above it).
    import io

    from rich.console import Console

    import vcscodec.cli as cli
    from vcscodec.errors import VcsError

    screen = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=screen, force_terminal=True, width=80))
    with pytest.raises(VcsError) if fails else nullcontext():
        with cli._progress(False, "bench") as progress:
            progress.update(progress.add_task("bench", total=3, fps=""), advance=1)
            if fails:
                raise VcsError("no readable sequences")
    last_line = screen.getvalue().rsplit("\x1b[2K", 1)[-1]  # what is left after the last erase of a line
    assert ("1/3" in last_line) is not fails


def test_every_command_summary_is_one_line():
    # `vcs --help` lists each command with the first paragraph of its docstring; a paragraph that runs over two
    # source lines is printed broken in the middle of a sentence.
    from vcscodec.cli import app

    for command in app.registered_commands:
        summary = (command.callback.__doc__ or "").strip().split("\n\n")[0]
        assert summary and "\n" not in summary, command.callback.__name__


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_it_is_warned(monkeypatch, native):
    # oneDNN emulates bf16 where the CPU has none: 6× slower than fp32 here, so the user is told before waiting.
    import torch

    from vcscodec.hardware import slow_bf16_warning

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    warning = slow_bf16_warning("cpu", "bf16")
    assert (warning is None) is native
    if warning:
        assert warning.startswith("--precision bf16: this CPU has no bf16 arithmetic")
    assert slow_bf16_warning("cpu", "fp32") is None


def test_bf16_is_not_warned_where_torch_does_not_say(monkeypatch):
    import torch

    from vcscodec.hardware import cpu_has_bf16, slow_bf16_warning

    def unknown() -> bool:
        raise RuntimeError("no oneDNN in this build")

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", unknown)
    assert cpu_has_bf16() is None and slow_bf16_warning("cpu", "bf16") is None


def test_a_signal_after_the_work_is_done_changes_nothing(monkeypatch, clip):
    """Once a command has finished (its output in place), Ctrl-C and SIGTERM are ignored on the way out: a late
    one used to end a finished decode with exit 130 and no message."""
    import signal

    from vcscodec import cli

    monkeypatch.setenv("VCS_WEIGHTS", str(clip["weights"]))
    monkeypatch.setattr(sys, "argv", ["vcs", "info", str(clip["vcs"]), "--json"])
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(SystemExit) as done:
            cli.main()
        assert done.value.code == 0
        assert all(signal.getsignal(sig) == signal.SIG_IGN for sig in before)
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_help_shows_every_default_and_takes_h(clip):
    # -h as --help, for the program and each command; a default that the help text writes itself survives rich's
    # markup (an unescaped "[default: 1.3]" was read as a style tag and vanished).
    for args in (["-h"], ["encode", "-h"], ["decode", "-h"]):
        done = run_vcs(*args, weights=clip["weights"])
        assert_ok(done)
        assert done.stdout.lstrip().startswith("Usage: vcs") and done.stderr == ""
    text = " ".join(run_vcs("encode", "--help", weights=clip["weights"]).stdout.replace("│", " ").split())
    assert "0.1 or 0.01 [default: 0.1]" in text and "(see docs/format.md) [default: 1.3]" in text


@pytest.mark.parametrize("command", ["encode", "decode", "compare", "info", "models", "bench", "train"])
def test_help_shows_flags_without_a_value(command):
    # A flag takes no value: its row names no type (Typer printed `<bool>`, as if `--force true` were needed),
    # while an option that takes a value still shows its type.
    done = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "150"})
    assert done.exit_code == 0, done.output
    cells = [line.strip("│ ").removeprefix("* ").split() for line in done.output.splitlines()]
    rows = {c[0]: c[1:] for c in cells if c and c[0].startswith("--")}  # "--force": ["-f", "Overwrite", …]
    assert "<bool>" not in done.output and rows["--help"][:2] == ["-h", "Show"], rows["--help"]
    flag = {"info": "--json", "models": "--json", "compare": "--per-frame", "train": "--resume"}.get(command, "--quiet")
    after_names = rows[flag][1:] if rows[flag][0].startswith("-") else rows[flag]  # "-q" or none
    assert not after_names[0].startswith("<"), rows[flag]
    if command in ("decode", "bench"):
        assert rows["--threads"][:2] == ["<int", "range>"]


def test_info_shows_the_quantizer_step_whole_and_flags_in_words(tmp_path, clip):
    # The step as --quant-step takes it to write the same header again (it was rounded to 4 digits: 1235), and a
    # model's switches as yes/no (they read "hffm: 1").
    w, vcs = clip["weights"], tmp_path / "q.vcs"
    assert_ok(run_vcs("encode", clip["y4m"], vcs, "--quant-step", "1234.5678", "-q", weights=w))
    lines = [line.split() for line in run_vcs("info", vcs, weights=w).stdout.splitlines()]
    rows = {" ".join(cells[:2]): cells[2:] for cells in lines if len(cells) > 2}
    assert rows["quantizer step"] == ["1234.5678"] and rows["model available"] == ["yes"]
    described = run_vcs("info", "--model", read_header(vcs).model_name, weights=w).stdout
    unfolded = "".join(described.split())  # a narrow terminal folds the config row, anywhere
    assert "hffm:yes," in unfolded and "hffm:1," not in unfolded


def test_names_are_printed_as_they_are_not_as_markup(tmp_path, clip):
    """A .vcs header's model name and a file's name are users' strings: `[/]` crashed `vcs info` in rich's markup
    parser (a traceback), and `[b]…[/b]` was printed as bold without its brackets."""
    from vcscodec.container import _pack_header

    name = "[/]hitvcsnet[b]-x[/b]"
    header = dataclasses.replace(read_header(clip["vcs"]), model_name=name)
    crafted = tmp_path / "clip[b].vcs"
    crafted.write_bytes(_pack_header(header) + _records(clip["bytes"]))
    done = run_vcs("info", crafted, weights=clip["weights"])
    assert_ok(done)
    assert name in done.stdout and "clip[b].vcs" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["info", "decode"])
def test_a_stream_that_is_no_vcs_file_is_refused_before_it_ends(tmp_path, clip, command):
    """`vcs info -` and `vcs decode -` kept the whole stream on disk before looking at it: a gigabyte of zeros, or a
    stream that never ends, filled $TMPDIR first. Its opening is checked as it arrives; the writer never closes."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env |= {"VCS_WEIGHTS": str(clip["weights"]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "vcscodec.cli", command, "-", *([str(tmp_path / "o.y4m")] * (command == "decode"))]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as process:
        process.stdin.write(b"YUV4MPEG2 W352 H288 F25:1\n" + bytes(1 << 12))
        process.stdin.flush()
        try:
            code = process.wait(timeout=60)  # standard input is still open: the old spooling waited for its end
        finally:
            process.kill()
        said = process.stderr.read().decode()
    assert code == 1 and said.startswith("vcs: error: standard input: not a .vcs file but a Y4M video"), said
    assert not (tmp_path / "o.y4m").exists()


def test_info_and_decode_agree_on_a_rate_ffmpeg_cannot_carry(tmp_path, clip):
    """A header may hold any u32 rate; FFmpeg's videos carry terms up to 2³¹−1. `vcs info` said such a file was
    decodable, and `vcs decode` refused it."""
    from vcscodec.container import _pack_header

    header = dataclasses.replace(read_header(clip["vcs"]), fps_num=2**32 - 1)
    crafted = tmp_path / "rate.vcs"
    crafted.write_bytes(_pack_header(header) + _records(clip["bytes"]))
    info = json.loads(run_vcs("info", crafted, "--json", weights=clip["weights"]).stdout)
    assert not info["decodable"] and "beyond what FFmpeg carries" in info["decode_error"]
    assert_error(run_vcs("decode", crafted, tmp_path / "o.y4m", weights=clip["weights"]), "beyond what FFmpeg carries")
