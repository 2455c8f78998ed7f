"""The numpy encoder (vcscodec.sampling) against the network's own sampling convolution, and `vcs export-sampler`
against the integers in a .vcs file, re-implemented from its README alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from vcscodec.codec import encode_file
from vcscodec.container import ContainerReader
from vcscodec.quant import DEFAULT_QUANT_STEP, quantize
from vcscodec.registry import ModelCard, default_model
from vcscodec.samples import write_clip
from vcscodec.sampling import blocks_of, crop_plane, measure_plane, pad_plane


def test_pad_replicates_the_last_row_and_column():
    plane = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = pad_plane(plane, 4)
    assert padded.shape == (4, 4)
    np.testing.assert_array_equal(padded[3], plane[2])
    padded = pad_plane(plane, 3)
    assert padded.shape == (3, 6)
    np.testing.assert_array_equal(padded[:, 4], plane[:, 3])
    np.testing.assert_array_equal(padded[:, 5], plane[:, 3])
    np.testing.assert_array_equal(crop_plane(padded, 3, 4), plane)
    assert pad_plane(np.zeros((64, 32)), 32).shape == (64, 32)  # multiples stay as they are


def test_block_scan_is_row_major_in_both_levels():
    plane = np.arange(4 * 6).reshape(4, 6)
    blocks = blocks_of(plane, 2)  # 2 × 3 blocks
    assert blocks.shape == (6, 4)
    np.testing.assert_array_equal(blocks[0], [0, 1, 6, 7])  # block (0, 0): rows 0-1, cols 0-1
    np.testing.assert_array_equal(blocks[1], [2, 3, 8, 9])  # block (0, 1) comes next: row-major over blocks
    np.testing.assert_array_equal(blocks[3], [12, 13, 18, 19])  # block (1, 0)


def test_measure_plane_is_phi_times_each_block():
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((5, 16))
    plane = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    y = measure_plane(plane, phi)
    assert y.shape == (5, 2, 3) and y.dtype == np.float64
    padded = np.pad(plane, ((0, 1), (0, 3)), mode="edge") / 255.0
    for r in range(2):
        for c in range(3):
            np.testing.assert_allclose(y[:, r, c], phi @ padded[4 * r : 4 * r + 4, 4 * c : 4 * c + 4].ravel())


@pytest.fixture(scope="module")
def random_phi_card(tmp_path_factory) -> ModelCard:
    """A freshly initialised (untrained, random Φ) tiny model saved in the registry format."""
    import torch

    from vcscodec.models import HITVCSNet, architecture
    from vcscodec.registry import save_model

    torch.manual_seed(0)
    model = HITVCSNet(architecture("hitvcsnet-tr", alpha_n=0.1, channels=8, levels=1))
    return save_model(model, tmp_path_factory.mktemp("random_weights"))


def _torch_measure(model, plane: np.ndarray, key: bool) -> np.ndarray:
    """The network's sampling convolution on the plane padded the same way, in torch."""
    import torch
    import torch.nn.functional as F

    b = model.config.block
    h, w = plane.shape
    x = torch.from_numpy(plane.astype(np.float32) / 255.0)[None, None]
    x = F.pad(x, (0, -w % b, 0, -h % b), mode="replicate")[0]  # (1, hp, wp)
    with torch.no_grad():
        y = model.measure_key(x) if key else model.measure_non(x)
    return y[0].double().numpy()


@pytest.mark.parametrize("weights", ["tiny DCT", "random"])
def test_numpy_encoder_matches_the_network(use_tiny_weights, random_phi_card, noise_clip, pan_clip, weights):
    card = default_model(0.1) if weights == "tiny DCT" else random_phi_card
    model = card.load("cpu")
    phi_k, phi_n = card.sampling_matrices()
    # Not multiples of 32: the last block row and column are mostly padding, which must agree too.
    planes = [f.y for f in noise_clip(2, 99, 61, seed=7)] + [pan_clip(1, 133, 70)[0].y, noise_clip(1, 99, 61)[0].u]
    total = differ = 0
    for plane in planes:
        for key, phi in ((True, phi_k), (False, phi_n)):
            ours = measure_plane(plane, phi)
            theirs = _torch_measure(model, plane, key)
            assert ours.shape == theirs.shape == (phi.shape[0], -(-plane.shape[0] // 32), -(-plane.shape[1] // 32))
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=2e-5)
            q_ours = quantize(ours, DEFAULT_QUANT_STEP).astype(np.int64)
            q_theirs = quantize(theirs, DEFAULT_QUANT_STEP).astype(np.int64)
            assert np.abs(q_ours - q_theirs).max() <= 1
            total += q_ours.size
            differ += int(np.count_nonzero(q_ours != q_theirs))
    assert differ / total <= 1e-3, (differ, total)


# ------------------------------------------------------------------------------------- export-sampler


def _readme_measure(plane: np.ndarray, phi: np.ndarray, block: int, step: float) -> np.ndarray:
    """Only what README.txt says: pad by repeating the last row and column, value / 255, B×B blocks row-major,
    each flattened row-major (pixel (r, c) → r·B + c), y = Φ·x in float64, q = round_half_even(y·255/step),
    stored as (M, H/B, W/B)."""
    h, w = plane.shape
    hp, wp = -(-h // block) * block, -(-w // block) * block
    padded = np.empty((hp, wp), np.float64)
    for r in range(hp):
        for c in range(wp):
            padded[r, c] = plane[min(r, h - 1), min(c, w - 1)] / 255.0
    out = np.empty((phi.shape[0], hp // block, wp // block), np.int64)
    for br in range(hp // block):
        for bc in range(wp // block):
            x = np.empty(block * block, np.float64)
            for r in range(block):
                x[r * block : (r + 1) * block] = padded[br * block + r, bc * block : (bc + 1) * block]
            y = phi @ x
            out[:, br, bc] = np.rint(y * 255.0 / step)
    return out


def test_exported_sampler_reproduces_the_file(tmp_path, use_tiny_weights, pan_clip):
    folder = tmp_path / "sampler"
    env = {**os.environ, "VCS_WEIGHTS": str(use_tiny_weights)}
    done = subprocess.run(
        [sys.executable, "-m", "vcscodec.cli", "export-sampler", str(folder), "--ratio", "0.1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    readme = (folder / "README.txt").read_text()
    block = int(re.search(r"multiples of B = (\d+)", readme).group(1))
    gop = int(re.search(r"Keyframes are frames 0, (\d+),", readme).group(1))
    phi_k, phi_n = np.load(folder / "phi_k.npy"), np.load(folder / "phi_n.npy")
    # The CSV files hold exactly the same numbers, for tools that cannot read .npy.
    np.testing.assert_array_equal(np.loadtxt(folder / "phi_k.csv", delimiter=","), phi_k)
    np.testing.assert_array_equal(np.loadtxt(folder / "phi_n.csv", delimiter=","), phi_n)
    assert phi_k.shape == (512, block * block) and phi_n.shape == (102, block * block)
    # README.txt promises float16 entries, so that Φ·(8-bit pixels) can be summed exactly in integers
    assert "every entry of Φ is a float16 value" in readme.replace("\n", " ")
    for phi in (phi_k, phi_n):
        np.testing.assert_array_equal(phi.astype(np.float16).astype(np.float64), phi)

    frames = pan_clip(10, 99, 61, seed=3)
    src, vcs = tmp_path / "clip.y4m", tmp_path / "clip.vcs"
    write_clip(src, frames, fps=25)
    encode_file(src, vcs)
    with ContainerReader(vcs) as reader:
        step = reader.header.quant_step
        stored = {fm.index: (fm.key, fm.planes) for record in reader for fm in record.frames}
    keyframes = set(range(0, 10, gop)) | {9}
    assert {i for i, (key, _) in stored.items() if key} == keyframes == {0, 8, 9}
    for i in (0, 1, 9):  # a keyframe, a non-keyframe and the final keyframe, all three planes
        key, planes = stored[i]
        phi = phi_k if i in keyframes else phi_n
        for plane, q in zip((frames[i].y, frames[i].u, frames[i].v), planes, strict=True):
            np.testing.assert_array_equal(_readme_measure(plane, phi, block, step), q)


def test_exported_sampler_of_an_alt_model_says_how_keyframes_are_shifted(tmp_path, alternating_weights, pan_clip):
    """An encoder that follows README.txt alone must shift the odd-counted keyframes' grids as the file does."""
    folder = tmp_path / "sampler"
    done = subprocess.run(
        [sys.executable, "-m", "vcscodec.cli", "export-sampler", str(folder), "--model", alternating_weights],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    readme = (folder / "README.txt").read_text()
    shift = int(re.search(r"shifted (\d+) pixels down and right", readme).group(1))
    rolled = re.search(r"rolled by\s+\((\d+), (\d+)\)", readme)
    assert shift == 16 and rolled.groups() == ("16", "16")
    phi_k = np.load(folder / "phi_k.npy")
    frames = pan_clip(12, 70, 40, seed=2)  # keyframes 0, 8, 11: counted 0, 1, 2, so only frame 8 is shifted
    src, vcs = tmp_path / "clip.y4m", tmp_path / "clip.vcs"
    write_clip(src, frames, fps=25)
    encode_file(src, vcs, model=alternating_weights, chroma="gray")
    with ContainerReader(vcs) as reader:
        step = reader.header.quant_step
        keys = {fm.index: fm.planes[0] for record in reader for fm in record.frames if fm.key}
    assert sorted(keys) == [0, 8, 11]
    for count, index in enumerate(sorted(keys)):
        plane = frames[index].y
        if count % 2:  # as README.txt says: roll the padded plane, then measure it unshifted
            plane = np.roll(pad_plane(plane, 32), (shift, shift), (0, 1))
        np.testing.assert_array_equal(_readme_measure(plane, phi_k, 32, step), keys[index])
