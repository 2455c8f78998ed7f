"""The writers' contract (`vcscodec.output`): stop signals, held signals, outputs that are not files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vcscodec.errors import VcsError
from vcscodec.output import handle_stop_signals, make_output_folder, refuse_special_file


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("threads", [0, 1])
def test_a_held_signal_stops_after_the_block_not_inside_it(threads: int) -> None:
    """Also with another thread running (torch's, x264's): a signal mask would hold the signal back from the main
    thread only, and the kernel hands it to the other one, whose handler runs in the main thread all the same."""
    done = _run(
        "import os, signal, threading, time\n"
        "from vcscodec import output\n"
        f"for _ in range({threads}):\n"
        "    threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "output.handle_stop_signals(output.request_stop)\n"
        "try:\n"
        "    with output.held_signals():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(0.5)\n"
        "        print('inside, not stopped')\n"
        "except output.Stopped as e:\n"
        "    print('after the block:', e.why)\n"
    )
    assert done.stdout.splitlines() == ["inside, not stopped", "after the block: terminated"], done.stderr


def test_the_second_signal_is_ignored_and_the_third_ends_at_once() -> None:
    """The second Ctrl-C would break the clean-up of the first; a third is for a clean-up that is stuck."""
    done = _run(
        "import os, signal\n"
        "from vcscodec import output\n"
        "output.handle_stop_signals(output.request_stop)\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "except output.Stopped:\n"
        "    print('stopping', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "print('second ignored', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "print('not reached')\n"
    )
    assert done.stdout.splitlines() == ["stopping", "second ignored"] and done.returncode == -signal.SIGINT


def test_a_signal_the_program_was_started_to_ignore_stays_ignored() -> None:
    """`nohup vcs …` ignores SIGHUP, a script's background job SIGINT: the handler does not take them back."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGHUP)}

    def handler(signum: int, frame: object) -> None:  # pragma: no cover - never called
        pass

    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        handle_stop_signals(handler)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and signal.getsignal(signal.SIGINT) is handler
    finally:
        for sig, was in before.items():
            signal.signal(sig, was)


def test_a_named_pipe_is_no_output(tmp_path: Path) -> None:
    pipe = tmp_path / "p.png"
    os.mkfifo(pipe)
    with pytest.raises(VcsError, match="p.png is a named pipe: write to - and redirect it"):
        refuse_special_file(pipe)
    refuse_special_file(tmp_path / "new.png")  # nothing there, or a file: fine
    refuse_special_file(tmp_path)  # a folder has its own message, elsewhere


def test_an_existing_output_folder_needs_no_writable_parent(tmp_path: Path, monkeypatch) -> None:
    """`vcs demo .` in a writable folder whose parent is not (a home folder under /home): only the folder itself
    is written into."""
    folder = tmp_path / "here"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real(p, mode))
    make_output_folder(folder, "the demo")
    with pytest.raises(VcsError, match="is not writable"):
        make_output_folder(tmp_path / "new", "the demo")  # to be made: its parent is written


def test_a_signal_during_torchs_import_stops_after_it() -> None:
    """Torch's import runs Python inside C++: a stop raised there aborted the process (SIGABRT). `import_torch`
    holds it until the import is done (here an import that takes a signal half way, in place of torch's)."""
    done = _run(
        "import importlib, os, signal, sys\n"
        "from vcscodec import hardware, output\n"
        "def slow_import(name):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    print('import finished', flush=True)\n"
        "    return sys\n"
        "importlib.import_module = slow_import\n"
        "output.handle_stop_signals(output.request_stop)\n"
        "try:\n"
        "    hardware.import_torch()\n"
        "except output.Stopped as e:\n"
        "    print('after the import:', e.why)\n"
    )
    assert done.stdout.splitlines() == ["import finished", "after the import: interrupted"], done.stderr
