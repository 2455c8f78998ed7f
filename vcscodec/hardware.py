"""Which device runs the network, and how to name it in reports (bench, training manifests, demos)."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal, get_args

from .errors import VcsError
from .output import held_signals

if TYPE_CHECKING:
    import torch

DeviceName = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16"]
DEVICES: tuple[str, ...] = get_args(DeviceName)
PRECISIONS: tuple[str, ...] = get_args(Precision)


def import_torch() -> ModuleType:
    """``import torch``, with a stop signal held until it is done. Torch's import runs Python inside C++ (pybind11):
    a Ctrl-C there raised `output.Stopped` into C++, which cannot pass it on, and the process aborted (SIGABRT and a
    C++ stack of 90 lines). Commands call this before their first use of torch; later imports are no-ops."""
    with held_signals():
        return importlib.import_module("torch")


def pick_device(name: str, local_rank: int = 0, option: str = "--device") -> torch.device:
    """``auto`` (CUDA when there is one), ``cpu`` or ``cuda``; ``local_rank`` picks the GPU of a torchrun rank.
    ``option`` is what the user set (``--device``, ``run.device``), for the error messages."""
    if name not in DEVICES:
        raise VcsError(f"{option} must be auto, cpu or cuda, not {name!r}")
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise VcsError(f"{option} cuda: no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def check_precision(precision: str) -> None:
    """Refuse a ``--precision`` other than fp32 or bf16 (from Python; the command line refuses it as a usage
    error first)."""
    if precision not in PRECISIONS:
        raise VcsError(f"--precision must be fp32 or bf16, not {precision!r}")


def use_threads(count: int, option: str = "--threads") -> None:
    """Run torch's CPU work on ``count`` threads; 0 leaves torch's default (one per core, or $OMP_NUM_THREADS when
    set). The decoded pixels depend on the thread count (docs/performance.md), so fixing it is part of reproducing a
    decode elsewhere. More than 8 a core (64 at least) is refused: thousands failed inside OpenMP with a traceback."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise VcsError(f"{option} must be 0 (one per core) or a positive number of threads, not {count!r}")
    most = max(64, 8 * (os.cpu_count() or 1))
    if count > most:
        raise VcsError(f"{option} {count} is more threads than this machine can use: at most {most} here")
    if count:
        import torch

        torch.set_num_threads(count)


def threads_phrase(count: int) -> str:
    """A thread count in words, as every report prints it: '1 thread', '2 threads'."""
    return f"{count} thread{'s' * (count != 1)}"


def cpu_has_bf16() -> bool | None:
    """Whether this CPU has bf16 arithmetic, as oneDNN itself decides (AVX-512 BF16, AMX); None when this torch
    does not say."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def slow_bf16_warning(device: str, precision: str) -> str | None:
    """A warning when ``--precision bf16`` would run on a CPU without bf16 arithmetic, else None. There oneDNN
    emulates it: a CIF decode ran 6× slower than in fp32 on an AVX2-only AMD EPYC (docs/performance.md)."""
    if precision != "bf16":
        return None
    if pick_device(device).type != "cpu" or cpu_has_bf16() is not False:
        return None  # None: this torch does not say, so no warning rather than a wrong one
    return "--precision bf16: this CPU has no bf16 arithmetic, so the decode runs several times slower than fp32"


def cpu_name() -> str:
    """The CPU's model name (e.g. 'AMD EPYC 9B14'), as /proc/cpuinfo gives it where it exists."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3', or 'CPU <model>, N cores, T threads'."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_name()}, {os.cpu_count()} cores, {threads_phrase(torch.get_num_threads())}"
