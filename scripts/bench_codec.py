"""Does decoding stream, and how fast is the encoder? Two numbers for the codec as a whole.

    .venv/bin/python scripts/bench_codec.py                    # ≈ 1-3 minutes on a shared 2-core CPU

1. Decode memory: a short and a 10× longer clip (default 60 and 600 frames of 64×64, a camera pan, colour) are
   encoded, then each is decoded by `vcs decode` logic (`codec.decode_file`, output .y4m) in a fresh Python
   process, which reports its peak resident memory (`ru_maxrss`, the kernel's high-water mark, which covers torch's
   allocations too), its resident memory just before decoding (imports and model loaded) and the peak of Python's
   own allocations during the decode (tracemalloc). Streaming means the long clip peaks within 10 % of the short.
2. Encode speed at CIF (352×288) on the CPU: `codec.encode_file` from a .y4m file (read, measure with Φk/Φn in
   numpy, quantize, xz, write), in colour (Y, U, V coded) and grey (Y only), in a fresh process each with numpy's
   BLAS on its default threads and on one thread (on a busy machine OpenBLAS's spinning threads can be far slower
   than one; it reads its thread count only at start-up, hence the processes).

The model is the shipped default for ``--ratio`` in the weights folder ($VCS_WEIGHTS or weights/) when there is
one, else a tiny model built here (an orthonormal DCT Φ, 8 channels, 1 level, as the tests use): memory and
encode speed do not depend on what the weights learned. The hardware and the 1-minute load average are printed:
on a shared machine other processes slow the figures down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path


def tiny_weights(folder: Path, ratio: float) -> None:
    """A default model for ``ratio`` with an orthonormal 2-D DCT Φ (lowest frequencies first)."""

    from vcscodec.models import HITVCSNet, architecture
    from vcscodec.models.init import dct_basis, init_linear
    from vcscodec.registry import save_model

    phi = dct_basis()
    model = HITVCSNet(architecture("hitvcsnet-tr", alpha_n=ratio, channels=8, levels=1))
    init_linear(model, phi, phi)
    save_model(model, folder, {"training": {"steps": 0, "hardware": "bench_codec.py"}}, default=True)


def write_clip(path: Path, frames: int, width: int, height: int, distinct: int) -> None:
    """A camera pan of ``distinct`` frames, repeated up to ``frames`` (the pan is the slow part to make)."""
    from vcscodec.io import open_writer
    from vcscodec.samples import camera_pan

    pan = camera_pan(min(frames, distinct), width, height)
    with open_writer(path, width, height, Fraction(25)) as writer:
        for i in range(frames):
            writer.write(pan[i % len(pan)])


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_decode(vcs: str, out: str, threads: int | None) -> None:
    """Runs in a fresh process: decode ``vcs`` to ``out`` and print the memory figures as JSON."""
    import resource
    import tracemalloc

    import torch

    from vcscodec import codec
    from vcscodec.container import read_header

    if threads:
        torch.set_num_threads(threads)
    card = codec.model_for(read_header(vcs))
    card.load("cpu")  # the same work decode_file does first, so `before` includes torch and the model
    before = rss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    report = codec.decode_file(Path(vcs), Path(out), device="cpu", force=True)
    seconds = time.perf_counter() - started
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {
        "frames": report.frames,
        "seconds": seconds,
        "rss_before_kib": before,
        "peak_rss_kib": peak,
        "python_peak_kib": py_peak // 1024,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


def child_encode(src: str, folder: str) -> None:
    """Runs in a fresh process: time ``encode_file`` on ``src`` in colour and grey; print JSON."""
    from vcscodec.codec import encode_file

    encode_file(Path(src), Path(folder) / "warm.vcs", max_frames=2, force=True)  # first-call costs once
    result = {}
    for chroma in ("yuv420", "gray"):
        started = time.perf_counter()
        report = encode_file(Path(src), Path(folder) / f"{chroma}.vcs", chroma=chroma, force=True)
        result[chroma] = {
            "frames": report.frames,
            "seconds": time.perf_counter() - started,
            "bpp": report.bits_per_pixel,
        }
    print(json.dumps(result))


def run_child(*args: str, env: dict[str, str] | None = None) -> dict | None:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env or os.environ.copy()
    )
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=60, help="frames of the short clip")
    parser.add_argument("--long", type=int, default=600, help="frames of the long clip")
    parser.add_argument("--size", default="64x64", help="WxH of the memory clips")
    parser.add_argument("--cif-frames", type=int, default=32, help="frames of the CIF clip timed for encoding")
    parser.add_argument("--ratio", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for decoding (default: torch's)")
    parser.add_argument("--child-decode", nargs=2, metavar=("VCS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--child-encode", nargs=2, metavar=("Y4M", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_decode:
        child_decode(*args.child_decode, args.threads)
        return 0
    if args.child_encode:
        child_encode(*args.child_encode)
        return 0

    from vcscodec.codec import encode_file
    from vcscodec.errors import VcsError
    from vcscodec.registry import WEIGHTS_ENV, default_model, weights_dir

    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_codec_") as tmp:
        tmp = Path(tmp)
        try:
            card = default_model(args.ratio)
            model_note = f"{card.name} from {weights_dir()}"
        except VcsError:
            os.environ[WEIGHTS_ENV] = str(tmp / "weights")
            tiny_weights(tmp / "weights", args.ratio)
            card = default_model(args.ratio)
            model_note = f"{card.name} (no shipped model: tiny DCT model built here)"

        import numpy
        import torch

        from vcscodec.hardware import cpu_name

        print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; load average {os.getloadavg()[0]:.2f}")
        print(f"Python {platform.python_version()}, numpy {numpy.__version__}, torch {torch.__version__}")
        print(f"model: {model_note}")
        print()

        print(f"Decode memory ({width}×{height}, colour, batch of 4 GOPs, output .y4m, fresh process each):")
        results = {}
        for frames in (args.short, args.long):
            src, vcs = tmp / f"clip{frames}.y4m", tmp / f"clip{frames}.vcs"
            write_clip(src, frames, width, height, distinct=args.short)
            encode_file(src, vcs)
            threads = ["--threads", str(args.threads)] if args.threads else []
            r = run_child("--child-decode", str(vcs), str(tmp / f"out{frames}.y4m"), *threads)
            if r is None:
                return 1
            results[frames] = r
            print(
                f"  {frames:4d} frames: peak RSS {r['peak_rss_kib'] / 1024:7.1f} MiB "
                f"(before decoding {r['rss_before_kib'] / 1024:6.1f} MiB, "
                f"+{(r['peak_rss_kib'] - r['rss_before_kib']) / 1024:5.1f} MiB while decoding); "
                f"Python allocations peak {r['python_peak_kib'] / 1024:5.2f} MiB; "
                f"{r['frames'] / r['seconds']:6.1f} fps with {r['threads']} torch thread(s)"
            )
        short, long = results[args.short]["peak_rss_kib"], results[args.long]["peak_rss_kib"]
        ratio = long / short
        verdict = "within 10 %: decoding streams" if ratio <= 1.10 else "MORE than 10 %: memory grows with length"
        print(f"  peak RSS {args.long} / {args.short} frames = {ratio:.3f} ({verdict})")
        print()

        print(f"Encode speed at CIF 352×288 ({args.cif_frames} frames from .y4m, numpy only, fresh process each):")
        src = tmp / "cif.y4m"
        write_clip(src, args.cif_frames, 352, 288, distinct=8)
        for label, extra in (("BLAS default threads", {}), ("BLAS 1 thread", {"OPENBLAS_NUM_THREADS": "1"})):
            r = run_child("--child-encode", str(src), str(tmp), env={**os.environ, **extra})
            if r is None:
                return 1
            for chroma, e in r.items():
                print(
                    f"  {label:20s} {chroma:6s}: {e['frames'] / e['seconds']:6.1f} frames/s "
                    f"({1000 * e['seconds'] / e['frames']:5.1f} ms per frame), {e['bpp']:.3f} bpp"
                )
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
        return 0 if ratio <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
