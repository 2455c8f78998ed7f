"""The `vcs` command line. Every VcsError becomes one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import os

# Measuring is one small matrix product per frame plane: BLAS threads cost more than they give (7x slower
# encodes on a busy 2-core machine, scripts/bench_codec.py). Set before numpy loads; the user's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time
from contextlib import contextmanager, nullcontext
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .errors import CommandLineError, OptionConflict, OutputClosed, StartPastEnd, VcsError, check_whole, frames_phrase

try:  # Typer 0.22 and later carry their own copy of Click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # older Typer uses Click itself
    from click.exceptions import ClickException, UsageError
from .container import ChromaMode, check_vcs_name
from .hardware import DeviceName, Precision, import_torch, slow_bf16_warning, threads_phrase, use_threads
from .output import Stopped, clear_stop, handle_stop_signals, pending_stop, request_stop
from .quant import DEFAULT_QUANT_STEP, check_step
from .rd import DEFAULT_ANCHOR_QPS, check_qp
from .registry import DEFAULT_RATIO, check_ratio

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .quality import QualityReport


def _flags_show_no_type() -> None:
    """Typer's help prints `<bool>` beside every flag (--force, --quiet, --help), as if it took a value: a flag's
    row shows none, as Click's and ffmpeg's do. Only the help changes; with a Typer that moves the method, nothing."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:
        return

    def display_type_rich(self: TyperOption, *args: Any, **kwargs: Any) -> str | None:
        return None if self.is_flag else shown(self, *args, **kwargs)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="vcscodec: video compressive sensing with HIT-VCSNet.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# markup=False: what is printed holds users' strings (file names, a .vcs header's model name: `[/]` crashed `vcs
# info` in rich's markup parser, `[b]` vanished); the few bold cells are styled Text.
err = Console(stderr=True, markup=False)
# Piped into a file or another program, rich would assume 80 columns and fold tables (model names split over two
# lines defeat `vcs models | grep`, figures are cut to "…"): there, tables are printed whole, unless $COLUMNS says.
_whole_width = (sys.stdout and sys.stdout.isatty()) or "COLUMNS" in os.environ  # sys.stdout None: closed
out = Console(width=None if _whole_width else 200, markup=False)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__
        from .container import FORMAT_VERSION

        out.print(f"vcscodec {__version__} (reads .vcs format versions 1 to {FORMAT_VERSION})", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """vcscodec: encode videos into compressive measurements (.vcs) and rebuild them with HIT-VCSNet."""


_RATIO_HELP = f"Non-keyframe ratio αn of the default model: 0.1 or 0.01 \\[default: {DEFAULT_RATIO:g}]"
_MODEL_HELP = "Model name (or unique prefix) from `vcs models`"


def _parse_size(size: str | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise CommandLineError(f"--size {size!r} is not WxH (e.g. 352x288)") from None
    if w < 1 or h < 1:
        raise CommandLineError(f"--size {size!r} must be positive")
    return w, h


def _parse_fps(fps: str | None) -> Fraction | None:
    from .io import parse_fps

    if fps is None:
        return None
    try:
        return parse_fps(fps)
    except VcsError as e:
        raise CommandLineError(f"--fps: {e}") from None


def _checked(option: str, value: Any, check: Callable[[Any], object]) -> Any:
    """``value`` once the library's own check of it passes (`quant.check_step`, …); a value it refuses is a
    mistyped command line, exit 2, said before any input is read."""
    if value is not None:
        try:
            check(value)
        except VcsError as e:
            raise CommandLineError(f"{option}: {e}") from None
    return value


def _number_list(
    text: str, option: str, kind: type[float] | type[int], example: str, check: Callable[[Any], object]
) -> list[Any]:
    """A comma-separated option value ("0.01,0.1") as numbers of ``kind``, each passing ``check``; a one-line
    error otherwise."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        noun = "integers" if kind is int else "numbers"
        raise CommandLineError(f"{option} {text!r} is not a comma-separated list of {noun} (e.g. {example})") from None
    if not values:
        raise CommandLineError(f"{option} is empty")
    return [_checked(option, v, check) for v in values]


def _anchor_names(names: list[str]) -> list[str]:
    """--anchor's values, in any case; another name is a mistyped command line (Typer checks no list of names)."""
    from .rd import ANCHORS

    for name in names:
        if name.lower() not in ANCHORS:
            raise CommandLineError(f"unknown anchor {name!r}: choose from {', '.join(ANCHORS)}")
    return [name.lower() for name in names]


@contextmanager
def _progress(quiet: bool, label: str) -> Iterator[Progress]:
    """A progress bar on stderr, only when stderr is a terminal (a log or pipe gets the summary, not bar frames)."""
    columns = (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with shown_until_error(Progress(*columns, console=err, disable=quiet or not err.is_terminal)) as progress:
        yield progress


@contextmanager
def shown_until_error(progress: Progress) -> Iterator[Progress]:
    """Run a rich progress display that stays on screen when the work ends and is erased when it ends in a
    `VcsError`, so that the one-line error is all a failed command leaves."""
    with progress:
        try:
            yield progress
        except VcsError:
            progress.live.transient = True
            raise


_DEVICE_HELP = "auto: cuda when there is one"
_PRECISION_HELP = "bf16 is faster only on GPUs and CPUs with bf16 arithmetic"


def _warn(text: str | None) -> None:
    """A warning on one line of stderr (never folded); None says nothing."""
    if text:
        err.print(f"vcs: warning: {text}", highlight=False, markup=False, soft_wrap=True)


class _FrameRate:
    """Feeds a rich task with frames done and frames per second."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.task, self.start = (
            progress,
            progress.add_task(label, total=None, fps=""),
            time.perf_counter(),
        )
        self.done = 0

    def total(self, count: int) -> None:
        """A new pass over ``count`` frames (`--bpp` encodes several times): the bar and the rate start again."""
        self.progress.reset(self.task, total=count, fps="")
        self.done, self.start = 0, time.perf_counter()

    def __call__(self, frames: int) -> None:
        self.done += frames
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(self.task, advance=frames, fps=f"{rate:.1f} fps")


_THREADS_HELP = (
    "CPU threads for the network (0: one per core, or $OMP_NUM_THREADS when set). The decoded pixels depend on it: "
    "fix it to reproduce a decode to the bit elsewhere (docs/performance.md)"
)


def _cpu_threads(report: Any) -> str:
    """The thread count after a CPU decode's precision (", 2 threads"); nothing on a GPU."""
    return f", {threads_phrase(report.threads)}" if report.device == "cpu" else ""


@app.command()
def encode(
    input: Annotated[
        Path,
        typer.Argument(
            help="Video to encode: .y4m, .yuv (raw I420), .mp4, .mkv, …, numbered pictures (frames/f_%04d.png); "
            "- reads standard input"
        ),
    ],
    output: Annotated[
        Path,
        typer.Argument(help="The .vcs file to write; - writes it to standard output once it is complete"),
    ],
    ratio: Annotated[float | None, typer.Option("--ratio", "-r", help=_RATIO_HELP)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL_HELP)] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="WxH of a raw .yuv input (else taken from its name)")
    ] = None,
    fps: Annotated[
        str | None,
        typer.Option(
            "--fps",
            help="Frame rate, e.g. 30 or 30000/1001: needed for a raw .yuv input unless its name gives it; numbered "
            "pictures default to 25; for other inputs it replaces the file's own rate",
        ),
    ] = None,
    start: Annotated[int, typer.Option("--start", min=0, help="First frame of the input to encode (0-based)")] = 0,
    frames: Annotated[
        int | None, typer.Option("--frames", "-n", min=1, help="Encode only N frames (from --start; the first N)")
    ] = None,
    quant_step: Annotated[
        float | None,
        typer.Option(
            "--quant-step",
            help=f"Quantizer step in grey levels (see docs/format.md) \\[default: {DEFAULT_QUANT_STEP:g}]",
        ),
    ] = None,
    bpp: Annotated[
        float | None,
        typer.Option(
            "--bpp",
            help="Target rate in bits per luma pixel, whole file: the finest quantizer step that stays within it, "
            "from 0.25 grey levels up (the input is encoded several times to find it)",
        ),
    ] = None,
    chroma: Annotated[
        ChromaMode,
        typer.Option(
            "--chroma",
            case_sensitive=False,
            help="auto: gray when the frames have U=V=128 (it reads ahead through grey frames to the first in "
            "colour, 256 MB of them at most, so a fade-in from black stays in colour)",
        ),
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary")] = False,
) -> None:
    """Measure a video block by block (the light, sensor-side half) into a .vcs file.

    INPUT - reads the video from standard input, e.g. ffmpeg -i clip.mkv -f yuv4mpegpipe - | vcs encode - clip.vcs

    (Raw I420 from standard input needs --size and --fps.)

    OUTPUT - sends the .vcs file to standard output once it is whole: vcs encode c.y4m - | ssh gpu vcs decode - r.y4m

    Pictures are read as shown: turned or mirrored as a display matrix or EXIF asks, as ffmpeg does."""
    from .codec import check_target_bpp, encode_file
    from .io import STDIO, input_name, spooled_input, spooled_stdout

    to_stdout = str(output) == STDIO
    if not to_stdout:  # before a piped input is read through
        check_vcs_name(output)
    if bpp is not None and quant_step is not None:
        raise OptionConflict("give --quant-step or --bpp, not both (--bpp chooses the step)")
    _checked("--ratio", ratio, check_ratio)
    _checked("--quant-step", quant_step, check_step)
    _checked("--bpp", bpp, check_target_bpp)
    frame_size, frame_rate = _parse_size(size), _parse_fps(fps)  # before a pipe is read to its end
    # No bar on a pipe or in a log: it would only add a stale line before the summary or the error.
    with (
        spooled_stdout(".vcs") if to_stdout else nullcontext(output) as target,  # a terminal: refused before reading
        spooled_input(input, raw=size is not None) as source,
        _progress(quiet, "encode") as progress,
    ):
        rate = _FrameRate(progress, "encode")
        report = encode_file(
            source,
            target,
            ratio,
            model,
            frame_size,
            frame_rate,
            DEFAULT_QUANT_STEP if quant_step is None else quant_step,
            chroma,
            frames,
            force,
            rate,
            rate.total,
            bpp,
            start,
        )
    for w in report.warnings:  # the source as the user gave it, not its spooled copy
        _warn(w.replace(str(source), input_name(input)))
    if not quiet:
        (err if to_stdout else out).print(  # standard output carries the file
            f"{'standard output' if to_stdout else output}: {frames_phrase(report.frames)} "
            f"{report.width}×{report.height}, {report.bytes:,} bytes, "
            f"{report.bits_per_pixel:.4f} bpp, chroma {report.chroma}, model {report.model}, "
            + (
                f"quantizer step {report.quant_step:g} ({report.passes} pass{'es' * (report.passes > 1)}), "
                if bpp
                else ""
            )
            + f"{report.frames / report.seconds:.1f} fps",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def decode(
    input: Annotated[Path, typer.Argument(help="The .vcs file; - reads standard input")],
    output: Annotated[
        Path,
        typer.Argument(
            help="Video to write: .y4m, .yuv, .mp4, .mkv or .avi, numbered pictures (f_%04d.png) or one .png; "
            "- streams Y4M to standard output"
        ),
    ],
    device: Annotated[DeviceName, typer.Option("--device", case_sensitive=False, help=_DEVICE_HELP)] = "auto",
    precision: Annotated[Precision, typer.Option("--precision", case_sensitive=False, help=_PRECISION_HELP)] = "fp32",
    batch_gops: Annotated[
        int, typer.Option("--batch-gops", min=0, help="GOPs rebuilt together (memory vs speed); 0 = by frame size")
    ] = 0,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Decode with another model of the file's weights, e.g. the whole network hitvcsnet-mhc-…",
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="The original video: print the quality of what was written against it (as vcs compare); a file "
            "cut with encode --start is scored against the frames it was cut from; - reads it from standard input",
        ),
    ] = None,
    start: Annotated[int, typer.Option("--start", min=0, help="First frame to decode (0-based)")] = 0,
    frames: Annotated[
        int | None, typer.Option("--frames", "-n", min=1, help="Decode only N frames (only their GOPs are rebuilt)")
    ] = None,
    conceal: Annotated[
        bool,
        typer.Option(
            "--conceal",
            help="Decode a damaged or truncated file anyway: a GOP whose record is lost repeats the frame before "
            "it (with a warning for each) instead of stopping with an error",
        ),
    ] = False,
    threads: Annotated[int, typer.Option("--threads", min=0, help=_THREADS_HELP)] = 0,
) -> None:
    """Rebuild the video from its measurements with HIT-VCSNet (on the GPU when there is one).

    INPUT - reads the .vcs file from standard input; OUTPUT - streams Y4M to standard output (e.g. into a player:
    vcs decode clip.vcs - | ffplay -)."""
    from .codec import decode_file
    from .io import STDIO, input_name, spooled_input
    from .output import refuse_input_as_output

    use_threads(threads)
    _warn(slow_bf16_warning(device, precision))
    to_stdout = str(output) == STDIO
    if reference is not None and to_stdout:
        raise OptionConflict("--reference scores the file written: give an output file, not -")
    if reference is not None:
        refuse_input_as_output(output, reference, why="is the --reference: writing it would destroy the original")
    if reference is not None and str(reference) == STDIO == str(input):
        raise OptionConflict("INPUT and --reference cannot both be - (standard input is one stream)")
    # A piped reference is read twice too (checked before the decode, scored after it): spooled like the input.
    with (
        spooled_input(input, vcs=True) as source,
        spooled_input(reference) if reference is not None else nullcontext() as reference_source,
    ):
        if reference_source is not None:
            size, fps, reference_start = _check_reference(reference_source, source, start, frames)
        with _progress(quiet, "decode") as progress:
            rate = _FrameRate(progress, "decode")
            report = decode_file(
                source, output, device, batch_gops, precision, force, rate, rate.total, model, start, frames, conceal
            )
        name = input_name(input)
        for warning in report.warnings:
            _warn(warning)
        for lost in report.concealed:
            _warn(f"{name}: {lost.describe()}")
        if report.ignored:
            _warn(f"{name}: {report.ignored} (ignored)")
        if not quiet:
            (err if to_stdout else out).print(  # standard output carries the video
                f"{'standard output' if to_stdout else output}: {frames_phrase(report.frames)}, "
                f"{report.frames / report.seconds:.2f} fps on {report.device} "
                f"({report.precision}{_cpu_threads(report)}), video codec {report.codec}"
                + (f", lost GOPs concealed: {sum(c.gops for c in report.concealed)}" if report.concealed else ""),
                highlight=False,
                soft_wrap=True,
            )
        if reference_source is not None:
            from .quality import score_videos

            scores = score_videos(reference_source, output, size, fps, report.frames, reference_start=reference_start)
            scores = _as_given(scores, {reference_source: reference, output: output})
            for warning in scores.warnings:
                _warn(warning)
            out.print(_quality_line(scores), highlight=False, soft_wrap=True)
            for note in _identical_notes(scores):
                out.print(note, highlight=False)


def _as_given(scores: QualityReport, given: dict[Path, Path]) -> QualityReport:
    """``scores`` naming each video as the user gave it (``given``: read as → given), not a spooled copy of a pipe,
    in its warnings too."""
    from .io import input_name

    names = {str(read): input_name(as_given) for read, as_given in given.items()}

    def named(text: str) -> str:
        for read, name in names.items():
            text = text.replace(read, name)
        return text

    return dataclasses.replace(
        scores, reference=named(scores.reference), test=named(scores.test), warnings=[named(w) for w in scores.warnings]
    )


def _check_reference(
    reference: Path, vcs: Path, start: int, count: int | None
) -> tuple[tuple[int, int], Fraction, int]:
    """Open ``--reference`` before decoding, so that a wrong one fails at once: same size, enough frames.
    Returns the size and rate a raw .yuv reference is read with (the .vcs file's), and the reference frame the
    decode's first frame is scored against: a file cut with `vcs encode --start` says where it began."""
    from .codec import check_frame_range
    from .container import read_header
    from .io import open_video
    from .metrics import check_ssim_size
    from .numbered import is_pattern
    from .quality import refuse_rescaled

    header = read_header(vcs)
    end = check_frame_range(header, start, count)
    size, fps = (header.width, header.height), Fraction(header.fps_num, header.fps_den)
    first, last = header.source_start + start, header.source_start + end - 1
    where = f" (the file begins at its frame {header.source_start})" if header.source_start else ""

    def too_short(frame_count: int) -> VcsError:
        return VcsError(
            f"--reference {reference} has {frames_phrase(frame_count)}, too few: the decoded frames are scored against "
            f"its frames {first}–{last}{where}"
        )

    # Numbered pictures are opened at the first frame scored, so that they are sized by that picture, not by
    # picture 0 (which may not exist); a video at frame 0, since reaching a later frame means decoding up to it,
    # and scoring does that again.
    numbered = is_pattern(str(reference))
    opened_at = first if numbered else 0
    try:
        with open_video(reference, size, fps, start=opened_at) as reader:
            info = reader.info
            if numbered:
                # Each picture has a size of its own: read them now (milliseconds a picture, where the network
                # takes seconds a frame), so that one of another size fails before the decode, not after it.
                for _ in itertools.islice(reader, last - first + 1):
                    refuse_rescaled(reader)
    except StartPastEnd as e:
        raise too_short(e.frame_count) from None
    if (info.width, info.height) != size:
        raise VcsError(f"--reference {reference} is {info.width}x{info.height}, but {vcs} holds {size[0]}x{size[1]}")
    try:
        check_ssim_size(*size)
    except VcsError as e:
        raise VcsError(f"--reference cannot score {vcs}: {e}") from None
    if info.frame_count is not None and opened_at + info.frame_count <= last:  # info counts from ``opened_at``
        raise too_short(opened_at + info.frame_count)
    return size, fps, first


_JSON_STDOUT_HELP = "; - prints it on standard output, and the table on standard error"


def _quality_line(scores: QualityReport) -> str:
    mean = scores.means()  # an identical picture's PSNR, inf, prints as "inf"
    return (
        f"quality against {scores.reference} (mean of {frames_phrase(len(scores.frames))}): "
        f"PSNR Y {mean['psnr_y']:.2f} dB, U {mean['psnr_u']:.2f}, V {mean['psnr_v']:.2f}; SSIM Y {mean['ssim_y']:.4f}"
    )


def _identical_notes(scores: QualityReport) -> list[str]:
    """A line for each PSNR whose mean is inf because some frames, not all, are identical (a black frame can be
    rebuilt exactly): how many, and the mean over the others, which the mean of inf hides."""
    notes = []
    for field, plane in (("psnr_y", "Y"), ("psnr_u", "U"), ("psnr_v", "V")):
        same, others = scores.identical(field)
        if others is not None and same:
            notes.append(
                f"PSNR {plane}: {same} of {len(scores.frames)} frames identical (inf), so the mean is inf; "
                f"the other {len(scores.frames) - same}: {others:.2f} dB"
            )
    return notes


@app.command()
def compare(
    reference: Annotated[Path, typer.Argument(help="The original video; - reads standard input")],
    test: Annotated[
        Path,
        typer.Argument(
            help="The video to score against it, e.g. a decoded one; - reads standard input "
            "(vcs decode clip.vcs - | vcs compare clip.y4m -)"
        ),
    ],
    frames: Annotated[
        int | None, typer.Option("--frames", "-n", min=1, help="Score only the first N frames (else counts must match)")
    ] = None,
    size: Annotated[str | None, typer.Option("--size", help="WxH of raw .yuv inputs (else from their names)")] = None,
    fps: Annotated[
        str | None, typer.Option("--fps", help="Frame rate of raw .yuv inputs (optional: scores do not depend on it)")
    ] = None,
    start: Annotated[
        int | None,
        typer.Option(
            "--start",
            min=0,
            help="The test video is a part of the reference from this frame on (0-based), as a file cut with vcs "
            "encode --start or decoded with vcs decode --start is: all its frames are scored, and the reference "
            "may go on after them (--start 0 too); without it both must have as many frames",
        ),
    ] = None,
    per_frame: Annotated[bool, typer.Option("--per-frame", help="A row for every frame")] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Write every score to this JSON file" + _JSON_STDOUT_HELP)
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the --json file")] = False,
) -> None:
    """PSNR (Y, U, V) and SSIM (Y) of one video against another, by the paper's protocol.

    Each is the mean of per-frame scores of the 8-bit pictures, no border cropped."""
    from .bench import write_json
    from .io import STDIO, spooled_input
    from .output import check_output_path
    from .quality import FrameQuality, score_videos

    piped = [name for name, path in (("REFERENCE", reference), ("TEST", test)) if str(path) == STDIO]
    if len(piped) == 2:
        raise OptionConflict("REFERENCE and TEST cannot both be - (standard input is one video)")
    json_to_stdout = str(json_file) == STDIO
    if json_file is not None and not json_to_stdout:
        check_output_path(json_file, force, *(p for p in (reference, test) if str(p) != STDIO))
    frame_size, frame_rate = _parse_size(size), _parse_fps(fps)  # before a pipe is read to its end
    raw = size is not None
    with spooled_input(reference, raw) as reference_source, spooled_input(test, raw) as test_source:
        scores = score_videos(reference_source, test_source, frame_size, frame_rate, frames, start)
    scores = _as_given(scores, {reference_source: reference, test_source: test})
    for warning in scores.warnings:
        _warn(warning)
    if json_file is not None:
        write_json(scores.as_dict(), json_file)
    scored = frames_phrase(len(scores.frames))
    table = Table(title=f"{scores.test} against {scores.reference}: {scored} {scores.width}×{scores.height}")
    for col in ("frame", "PSNR Y", "PSNR U", "PSNR V", "SSIM Y"):
        table.add_column(col, justify="right")

    def row(label: str, q: FrameQuality) -> None:
        table.add_row(label, f"{q.psnr_y:.2f}", f"{q.psnr_u:.2f}", f"{q.psnr_v:.2f}", f"{q.ssim_y:.4f}")

    if per_frame:
        for i, q in enumerate(scores.frames, scores.reference_start):
            row(str(i), q)  # the reference's frame numbers
        table.add_section()
    row("mean", FrameQuality(**scores.means()))
    shown = err if json_to_stdout else out
    shown.print(table)
    for note in _identical_notes(scores):
        shown.print(note, highlight=False)
    if json_file is not None and not json_to_stdout:
        out.print(f"wrote {json_file}", highlight=False)


@app.command()
def info(
    file: Annotated[Path | None, typer.Argument(help="A .vcs file to describe (- reads standard input)")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Describe a model instead: parameters per part")
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print JSON: a file's header fields by their names in docs/format.md"),
    ] = False,
) -> None:
    """Describe a .vcs file (header, GOPs, bits per pixel) or a model (parameters per part).

    A damaged file is described all the same, with what is damaged; the exit code is then 1."""
    from .inspect import describe_file, describe_model, file_rows, model_rows
    from .io import input_name, spooled_input

    if (file is None) == (model is None):
        raise OptionConflict("give a .vcs file or --model NAME" + (", not both" if file is not None else ""))
    if file is None:
        import_torch()
        described, rows = describe_model(model), model_rows
    else:
        with spooled_input(file, vcs=True) as source:
            described, rows = describe_file(source), file_rows
            described["file"] = input_name(file)
    damaged = described.get("damaged")
    if json_out:
        out.print_json(json.dumps(described))
    else:
        table = Table(show_header=False, box=None)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")  # wrap long values (hashes, paths) rather than cut them with "…"
        for label, value in rows(described):
            table.add_row(Text(label, style="bold"), _format_value(value))
        out.print(table)
    if damaged:
        extra = len(damaged) - 1
        more = f"; {extra} more problem{'s' * (extra > 1)} listed" if extra else ""
        name = described["file"]
        raise VcsError(f"{name} is damaged: {damaged[0]}{more} (vcs decode --conceal decodes what is left)")


def _format_value(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_format_value(v) for v in value) if value else "none"
    if isinstance(value, bool):  # before int, which it is too: "hffm: yes", not "hffm: 1"
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@app.command()
def models(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print each model's manifest, with the weights file's absolute path")
    ] = False,
) -> None:
    """List the models in the weights folder ($VCS_WEIGHTS, else the shipped weights/)."""
    from .registry import installed_models, scan_models, weights_dir

    cards, skipped = scan_models()
    if not cards:
        installed_models()  # raises, saying why there are none
    for why in skipped.values():  # what is wrong with each; the folder's other models still work
        _warn(f"{why}: skipped")
    for card in cards:  # listed (its manifest is there), but no command could use it
        if not card.path.is_file():
            _warn(f"weights file {card.path} of model {card.name} is missing: it cannot encode or decode")
    if json_out:  # the path says which folder was read, as the table's title does
        out.print_json(json.dumps([{**c.manifest, "path": str(c.path.absolute())} for c in cards]))
        return
    caption = (
        "steps a+b: b of a keyframe branch grafted in; val PSNR: the trainer's validation of the weights, which every "
        "decoder derived from them shows too (docs/training.md scores each decoder)"
    )
    table = Table(title=f"models in {weights_dir()}", caption=caption)
    # Names are what users copy into --model: folded onto a second line in a narrow terminal, never cut short.
    table.add_column("name", overflow="fold")
    for col in ("αk", "αn", "default", "steps", "val PSNR"):
        table.add_column(col)
    for c in cards:
        t = c.manifest.get("training", {})
        val = t.get("val_psnr")
        table.add_row(
            c.name,
            f"{c.alpha_k:g}",
            f"{c.alpha_n:g}",
            "yes" if c.default else "",
            c.training_steps(short=True),
            f"{val:.2f}" if isinstance(val, float) else "",
        )
    out.print(table)


@app.command()
def demo(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder for the sample clip, .vcs files and decoded videos (the demo's own files there are replaced "
            "on each run)"
        ),
    ] = Path("demo-output"),
    frames: Annotated[int, typer.Option("--frames", "-n", min=1, help="Frames of the sample clip")] = 17,
    device: Annotated[DeviceName, typer.Option("--device", case_sensitive=False, help=_DEVICE_HELP)] = "auto",
    threads: Annotated[int, typer.Option("--threads", min=0, help=_THREADS_HELP)] = 0,
) -> None:
    """Encode and decode a sample clip (a camera pan over a scikit-image picture) at both ratios; print quality."""
    from .demo import run_demo

    check_whole(frames, "--frames", 1)
    use_threads(threads)
    import_torch()
    with err.status("encoding and decoding the sample clip at ratios 0.1 and 0.01 …"):
        results = run_demo(folder, frames=frames, device=device)
    source_kib = results[0].source_bytes / 1024
    table = Table(
        title=f"vcs demo: {frames_phrase(frames)} 352×288 (a camera pan over skimage's astronaut, colour), "
        f"source .y4m {source_kib:,.0f} KiB"
    )
    for col in ("αn", ".vcs KiB", "bpp", "PSNR Y", "SSIM Y", "PSNR UV", "enc fps", "dec fps"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r.ratio:g}",
            f"{r.vcs_bytes / 1024:,.1f}",
            f"{r.bits_per_pixel:.3f}",
            f"{r.psnr_y:.2f}",
            f"{r.ssim_y:.4f}",
            f"{r.psnr_uv:.2f}",
            f"{r.encode_fps:.1f}",
            f"{r.decode_fps:.2f}",
        )
    out.print(table)
    for r in results:
        out.print(f"αn {r.ratio:g}: model {r.model}", highlight=False)
    out.print(f"decoded videos: {', '.join(str(r.decoded) for r in results)}", highlight=False)


@app.command("export-sampler")
def export_sampler(
    output: Annotated[Path, typer.Argument(help="Folder to write phi_k/phi_n as .npy and .csv, with README")],
    ratio: Annotated[float | None, typer.Option("--ratio", "-r", help=_RATIO_HELP)] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=_MODEL_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite files in the folder")] = False,
) -> None:
    """Write Φk, Φn and how to apply them (README.txt), so hardware can measure as vcs encode does, to the integer."""
    from .codec import pick_model
    from .inspect import export_sampler as export

    for path in export(pick_model(_checked("--ratio", ratio, check_ratio), model), output, force):
        out.print(str(path), highlight=False)


@app.command()
def bench(
    sequences: Annotated[
        Path,
        typer.Option(
            "--sequences",
            "-s",
            help="Folder of test sequences: .y4m, .yuv (WxH in the name), .mp4, or folders of numbered PNG frames",
        ),
    ],
    ratios: Annotated[
        str | None,
        typer.Option("--ratios", "-r", help="Comma-separated ratios αn, the default model of each (default 0.01,0.1)"),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model name instead of --ratios (repeatable, to compare)")
    ] = None,
    frames: Annotated[
        str, typer.Option("--frames", "-n", help="Frames per sequence: 17 (the paper's two GOPs), N, or 'all'")
    ] = "17",
    device: Annotated[DeviceName, typer.Option("--device", case_sensitive=False, help=_DEVICE_HELP)] = "auto",
    precision: Annotated[Precision, typer.Option("--precision", case_sensitive=False, help=_PRECISION_HELP)] = "fp32",
    chroma: Annotated[
        ChromaMode,
        typer.Option(
            "--chroma",
            case_sensitive=False,
            help="gray: Y only, as the paper; colour adds bits, time and U/V PSNR",
        ),
    ] = "gray",
    quant_step: Annotated[
        str,
        typer.Option(
            "--quant-step",
            help="Quantizer step in grey levels (see docs/format.md); a comma-separated list sweeps the rate, "
            "e.g. 1.3,2.6,5.2,10.4",
        ),
    ] = f"{DEFAULT_QUANT_STEP:g}",
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            help="Also code the sequences with a conventional codec: x264 (with motion search) or x264-intra "
            "(repeatable); prints Bjøntegaard deltas against a --quant-step sweep",
        ),
    ] = None,
    anchor_qp: Annotated[str, typer.Option("--anchor-qp", help="Comma-separated QPs of the anchors")] = ",".join(
        str(q) for q in DEFAULT_ANCHOR_QPS
    ),
    batch_gops: Annotated[
        int, typer.Option("--batch-gops", min=0, help="GOPs rebuilt together (memory vs speed); 0 = by frame size")
    ] = 0,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Write every number (per frame too) to this JSON file" + _JSON_STDOUT_HELP),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Write PNGs here: PSNR per frame, and rd.png (PSNR against bpp) (needs matplotlib)"
        ),
    ] = None,
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Keep each .vcs file and decoded .y4m in this folder")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or tables (use with --json)")] = False,
    threads: Annotated[int, typer.Option("--threads", min=0, help=_THREADS_HELP)] = 0,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite the --json file and files already in --keep")
    ] = False,
) -> None:
    """Reproduce the paper's tables through the whole codec (encode → .vcs → decode): quality, rate and speed."""
    import shlex

    from .bench import BenchConfig, render, require_matplotlib, run_bench, write_json, write_plots
    from .output import check_output_path

    json_to_stdout = str(json_file) == "-"
    if json_file is not None and not json_to_stdout:  # before the run, which can take hours, not after it
        inputs = [p for p in sequences.rglob("*") if p.is_file()] if sequences.is_dir() else []
        check_output_path(json_file, force, *inputs)
    use_threads(threads)
    _warn(slow_bf16_warning(device, precision))
    if frames.strip().lower() == "all":
        count = None
    else:
        try:
            count = int(frames)
        except ValueError:
            raise CommandLineError(f"--frames {frames!r} is not a number or 'all'") from None
        if count < 1:
            raise CommandLineError(f"--frames must be at least 1 (or 'all'), not {count}")
    ratio_list = _number_list(ratios, "--ratios", float, "0.01,0.1", check_ratio) if ratios is not None else None
    if plot is not None:
        require_matplotlib()
        from .output import check_output_folder

        check_output_folder(plot.absolute().parent)  # before the run; the folder itself is made after it
    config = BenchConfig(
        sequences,
        ratio_list,
        model or None,
        count,
        device,
        precision,
        chroma,
        tuple(_number_list(quant_step, "--quant-step", float, "1.3,2.6", check_step)),
        batch_gops,
        keep,
        force,
        tuple(_anchor_names(anchor or [])),
        tuple(_number_list(anchor_qp, "--anchor-qp", int, "22,27,32,37", check_qp)),
    )
    command = shlex.join(["vcs", *sys.argv[1:]])
    import_torch()
    with _progress(quiet, "bench") as progress:
        task = progress.add_task("bench", total=None, fps="")
        report = run_bench(
            config,
            command,
            on_start=lambda n: progress.update(task, total=n),
            progress=lambda label: progress.update(task, advance=1, fps=label),
        )
    for w in report["warnings"]:
        _warn(w)
    if json_file is not None:
        write_json(report, json_file)
    plots = write_plots(report, plot) if plot is not None else []
    if not quiet:
        render(report, err if json_to_stdout else out)
        for path in [*([json_file] if json_file and not json_to_stdout else []), *plots]:
            out.print(f"wrote {path}", highlight=False)


@app.command()
def train(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML file (see configs/ and docs/training.md)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a setting: section.key=value (repeatable)")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in run.dir from its checkpoint")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
    pack: Annotated[
        Path | None,
        typer.Option("--pack", help="Write the config's data as one .npz luma pack (for a remote GPU) and exit"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="With --pack: overwrite an existing pack")] = False,
) -> None:
    """Train HIT-VCSNet on folders of videos and photos (never on the test set). See docs/training.md."""
    from .train.cli import train_command

    train_command(config, set_ or [], resume, quiet, pack, force)


def _command_path(args: list[str]) -> str:
    """`vcs decode` for an error Click raised without a context (an option missing its value): the first
    argument that names a command."""
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    return next((f"vcs {a}" for a in args if a in commands), "vcs")


def _usage_phrase(text: str) -> str:
    """A usage error's message as ours read: Click's start with a capital, ours (after "vcs: error:") do not, and
    Typer passes on its validator's "Value error, " before a wrong choice."""
    text = text.rstrip(".").replace(": Value error, ", ": ")
    return text[:1].lower() + text[1:]


def _refuse_empty_arguments(args: list[str]) -> None:
    """An empty argument is a script's unset variable (`vcs export-sampler "$DIR"`, `--keep=$DIR`), never a choice:
    as a path it would be the current folder, which export-sampler and --keep would fill."""
    command = typer.main.get_command(app).commands.get(args[0]) if args else None  # type: ignore[attr-defined]
    options = [p for p in command.params if p.param_type_name == "option"] if command else []
    taking_values = {name for p in options if not p.is_flag for name in p.opts}
    for i, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if equals and not value and name in taking_values:
            raise CommandLineError(f"{name}'s value is empty (an unset shell variable?)")
        if arg == "":
            before = args[i - 1] if i else None
            what = (
                f"{before}'s value"
                if before in taking_values
                else f"the argument after {before!r}"
                if before is not None
                else "the command"
            )
            raise CommandLineError(f"{what} is empty (an unset shell variable?)")


def _quiet_about_stops() -> None:
    """A stop raised inside a C library's callback (PyAV's write to a pipe) is swallowed there and printed as
    "Exception ignored …" with a traceback; it is kept all the same (`output.request_stop`) and acted on at the next
    frame, so nothing is printed for it."""
    unraisable = sys.unraisablehook

    def hook(info: Any) -> None:
        if not isinstance(info.exc_value, Stopped):
            unraisable(info)

    sys.unraisablehook = hook


def main() -> None:
    # `vcs train` installs its own handlers for its run (a clean stop with a checkpoint) and restores these.
    clear_stop()
    handle_stop_signals(request_stop)
    _quiet_about_stops()
    try:
        _refuse_empty_arguments(sys.argv[1:])
        # Not standalone: Typer would print a usage error as a boxed panel of five lines; here it is ours to report.
        code = app(prog_name="vcs", standalone_mode=False)
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a full disk is one line, not at exit, where it is Python's traceback
    except UsageError as e:  # an unknown option, a missing argument, a value of the wrong type
        if type(e).__name__ == "NoArgsIsHelpError":  # plain `vcs`: Typer has printed the help already
            sys.exit(e.exit_code)
        command = e.ctx.command_path if e.ctx is not None else _command_path(sys.argv[1:])
        err.print(
            f"vcs: error: {_usage_phrase(e.format_message())} (see {command} --help)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        sys.exit(e.exit_code)
    except ClickException as e:
        err.print(f"vcs: error: {e.format_message()}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Abort:  # end of input at a prompt
        err.print("vcs: aborted", highlight=False)
        sys.exit(1)
    except OutputClosed as e:
        # The reader of a decode's video went away: say where it stopped. (Typer itself ends a text command whose
        # reader went away with exit 1 and no message.) Standard output goes to /dev/null so that Python's flush
        # at exit cannot complain about the closed pipe.
        err.print(f"vcs: {e}", highlight=False, markup=False, soft_wrap=True)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except CommandLineError as e:  # a mistyped command line, as Click's own usage errors above
        where = _command_path(sys.argv[1:])
        err.print(f"vcs: error: {e} (see {where} --help)", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except VcsError as e:
        err.print(f"vcs: error: {e}", highlight=False, markup=False, soft_wrap=True)  # one line, never folded
        sys.exit(1)
    except Stopped as e:
        for sig in Stopped.EXIT:  # leaving: a second signal must not kill the interpreter's teardown by the signal
            signal.signal(sig, signal.SIG_IGN)
        err.print(f"vcs: {e.why}", highlight=False)
        sys.exit(e.code)
    except OSError as e:
        # The system refused a read or a write that no check could foresee (a full disk, an I/O error): one line.
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"vcs: error: {where}{e.strerror or e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except Exception as e:
        # Out of memory (a huge frame, a large --batch-gops; torch's own OutOfMemoryError on a GPU): one line, and
        # every writer has already dropped its temporary file on the way out. Anything else is a bug: a traceback.
        if not isinstance(e, MemoryError) and type(e).__name__ != "OutOfMemoryError":
            raise
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        err.print(f"vcs: error: out of memory ({why})", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    stop = pending_stop()
    if stop is not None:  # its exception was lost on the way (Python ignored it): no writer kept its output
        err.print(f"vcs: {stop.why}", highlight=False)
        sys.exit(stop.code)
    # The work is done and its output in place: a Ctrl-C from here on (torch's and PyAV's teardown) must not turn a
    # finished run into an "interrupted" exit code with no message.
    for sig in Stopped.EXIT:
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code if isinstance(code, int) else 0)  # an Exit's code (--help: 0); a command returns None


if __name__ == "__main__":
    main()
