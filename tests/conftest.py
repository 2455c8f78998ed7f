"""Small synthetic clips for the tests: random planes (exactness) and a smooth pan (codecs, metrics)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vcscodec.io import Frame


def _noise_clip(frames: int, width: int, height: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    ch, cw = (height + 1) // 2, (width + 1) // 2
    return [
        Frame(
            rng.integers(0, 256, (height, width), dtype=np.uint8),
            rng.integers(0, 256, (ch, cw), dtype=np.uint8),
            rng.integers(0, 256, (ch, cw), dtype=np.uint8),
        )
        for _ in range(frames)
    ]


@pytest.fixture
def noise_clip() -> Callable[..., list[Frame]]:
    """noise_clip(frames, width, height, seed=0): uniformly random YUV 4:2:0 frames."""
    return _noise_clip


@pytest.fixture
def pan_clip() -> Callable[..., list[Frame]]:
    """pan_clip(frames, width, height, seed=0): the samples module's camera move (compresses well)."""
    from vcscodec.samples import camera_pan

    def make(frames: int, width: int, height: int, seed: int = 0) -> list[Frame]:
        return camera_pan(frames, width, height, seed=seed)

    return make


def _write_with_pyav(
    path: Path,
    planes: Sequence[Sequence[np.ndarray]],
    pix_fmt: str,
    fps: Fraction = Fraction(25),
    codec: str = "rawvideo",
    container_options: dict[str, str] | None = None,
) -> None:
    """Write frames of any planar pixel format straight through PyAV (independent of vcscodec.io)."""
    import av

    height, width = planes[0][0].shape
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i, frame_planes in enumerate(planes):
            frame = av.VideoFrame(width, height, pix_fmt)
            for plane, data in zip(frame.planes, frame_planes, strict=True):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : data.nbytes // plane.height] = data.view(np.uint8).reshape(plane.height, -1)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def write_with_pyav() -> Callable[..., None]:
    """write_with_pyav(path, [[plane, ...], ...], pix_fmt, fps=25, codec=..., container_options=...)."""
    return _write_with_pyav


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with tiny default models for αn 0.1 and 0.01 (an orthonormal 2-D DCT basis, lowest
    frequencies first, as Φ; 8 channels, 1 level): fast on a CPU, and their reconstructions resemble the input."""
    from vcscodec.models import HITVCSNet, architecture
    from vcscodec.models.init import dct_basis, init_linear
    from vcscodec.registry import save_model

    folder = tmp_path_factory.mktemp("weights")
    phi = dct_basis()
    for alpha_n in (0.1, 0.01):
        model = HITVCSNet(architecture("hitvcsnet-mh", alpha_n=alpha_n, channels=8, levels=1))
        init_linear(model, phi, phi)
        save_model(model, folder, {"training": {"steps": 0, "hardware": "test fixture"}}, default=True)
    return folder


@pytest.fixture
def alternating_weights(tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of the tiny models plus an -alt model of the αn 0.1 one (alternating keyframe grids), $VCS_WEIGHTS
    pointed at it; returns the -alt model's name."""
    import shutil

    from vcscodec.registry import default_model, derive_model

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    monkeypatch.setenv("VCS_WEIGHTS", str(folder))
    return derive_model(default_model(0.1), "hitvcsnet-mhc2s-obmc-lin-alt", "test").name


@pytest.fixture
def use_tiny_weights(tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the registry ($VCS_WEIGHTS) at the tiny models for one test."""
    monkeypatch.setenv("VCS_WEIGHTS", str(tiny_weights))
    return tiny_weights
