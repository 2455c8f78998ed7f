"""The motion-compensated temporal prior of hitvcsnet-mh (vcscodec/models/motion.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vcscodec.errors import VcsError
from vcscodec.models import HITVCSNet, ModelConfig, architecture, hitvcsnet_loss
from vcscodec.models import hitvcsnet as hitvcsnet_module
from vcscodec.models.init import dct_basis, init_linear
from vcscodec.models.motion import (
    measurement_energy,
    multihypothesis_prediction,
    overlapped_blocks,
    shifted_candidates,
)
from vcscodec.samples import camera_pan


def textured(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth random texture in [0, 1], (1, 1, H, W): every shift of it looks different."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, height // 4, width // 4, generator=g)
    return F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def dct_phi(m: int, block: int) -> torch.Tensor:
    return torch.as_tensor(dct_basis(block)[:m], dtype=torch.float32).view(m, 1, block, block)


@pytest.mark.parametrize(("height", "width", "radius"), [(24, 32, 3), (40, 61, 3), (32, 32, 0)])
def test_measurement_energy_equals_its_definition(height: int, width: int, radius: int) -> None:
    """The FFT map equals ‖Φs‖² computed as a convolution, also where the padded width (67, a prime) is not an
    FFT-friendly length, and without padding."""
    block, m = 8, 6
    key = textured(height, width + (-width) % 4)[..., :width]
    phi = torch.randn(m, 1, block, block, generator=torch.Generator().manual_seed(3))
    padded = F.pad(key, (radius,) * 4, mode="replicate")
    expected = F.conv2d(padded, phi).pow(2).sum(1, keepdim=True)
    energy = measurement_energy(key, phi, radius)
    assert energy.shape == expected.shape
    torch.testing.assert_close(energy, expected, atol=1e-5, rtol=1e-5)


def test_search_distances_equal_brute_force() -> None:
    block, radius, m = 8, 3, 6
    key = textured(24, 32)
    phi = torch.randn(m, 1, block, block, generator=torch.Generator().manual_seed(1))
    y = torch.randn(1, m, 3, 4, generator=torch.Generator().manual_seed(2))
    energy = measurement_energy(key, phi, radius)
    back = F.conv_transpose2d(y, phi, stride=block)
    blocks, distance = shifted_candidates(key, energy, back, radius, block, count=5)
    padded = F.pad(key, (radius,) * 4, mode="replicate")[0, 0]
    for i in range(3):
        for j in range(4):
            brute = {}
            for dy in range(2 * radius + 1):
                for dx in range(2 * radius + 1):
                    patch = padded[i * block + dy : i * block + dy + block, j * block + dx : j * block + dx + block]
                    meas = (phi[:, 0] * patch).sum((-1, -2))
                    brute[(dy, dx)] = (y[0, :, i, j] - meas).pow(2).sum().item()
            best = sorted(brute.values())[:5]
            found = (distance[0, i, j] + y[0, :, i, j].pow(2).sum()).tolist()
            np.testing.assert_allclose(found, best, rtol=1e-4, atol=1e-4)
            # The returned blocks are the ones those distances belong to.
            meas = (phi[:, 0] * blocks[0, i, j, 0]).sum((-1, -2))
            assert (y[0, :, i, j] - meas).pow(2).sum().item() == pytest.approx(best[0], rel=1e-4, abs=1e-4)


def test_prediction_follows_a_translation_the_blend_misses() -> None:
    block, radius = 32, 16
    scene = textured(160, 224)
    before = scene[..., 16:144, 16:208]
    after = scene[..., 16:144, 16:208]
    truth = scene[..., 16 + 5 : 144 + 5, 16 - 7 : 208 - 7]  # moved (−5, +7) pixels, in both keyframes' terms
    phi = dct_phi(102, block)
    y = F.conv2d(truth, phi, stride=block)
    energy = measurement_energy(before, phi, radius)
    blend = 0.5 * before + 0.5 * after
    pred = multihypothesis_prediction([(before, energy), (after, energy)], [blend], y, phi, radius, 8, 1.0)
    inner = (slice(None), slice(None), slice(32, 96), slice(32, 160))  # blocks whose shift stays inside the frame
    mse_pred = (pred - truth)[inner].pow(2).mean().item()
    mse_blend = (blend - truth)[inner].pow(2).mean().item()
    assert mse_pred < mse_blend / 100


def test_still_scene_keeps_the_keyframe() -> None:
    frame = textured(64, 96)
    phi = dct_phi(10, 32)
    y = F.conv2d(frame, phi, stride=32)
    energy = measurement_energy(frame, phi, 16)
    pred = multihypothesis_prediction([(frame, energy), (frame, energy)], [frame], y, phi, 16, 8, 1.0)
    torch.testing.assert_close(pred, frame, atol=1e-4, rtol=0)


def test_search_floors_are_per_frame() -> None:
    """Frames searched together are predicted as each would be alone: the exact-fit floor and -obmc's confidence
    floor are each frame's own. A frame of low contrast that moves (its inner blocks fit exactly) beside one of
    high contrast with noise (no block fits well): floors taken over both would be the second frame's, mixing worse
    shifts into the first and flattening the confidences that blend its blocks' edges."""
    block, radius, overlap = 32, 8, 8
    scene = textured(160, 224)
    crop = (..., slice(16, 144), slice(16, 208))
    moved = (..., slice(16 + 3, 144 + 3), slice(16 - 5, 208 - 5))
    faint = 0.5 + 0.02 * (scene - 0.5)
    noisy = (scene + 0.05 * torch.randn(scene.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    keys = torch.cat([faint[crop], scene[crop]])
    truth = torch.cat([faint[moved], noisy[moved]])
    phi = dct_phi(102, block)[1:]  # no DC row: the energy is the frames' contrast
    y = F.conv2d(truth, phi, stride=block)
    energy = measurement_energy(keys, phi, radius)

    def predict(index: slice) -> torch.Tensor:
        pair = (keys[index], energy[index])
        return multihypothesis_prediction([pair, pair], [keys[index]], y[index], phi, radius, 4, 0.5, overlap)

    together = predict(slice(None))
    alone = torch.cat([predict(slice(0, 1)), predict(slice(1, 2))])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)


def test_mh_variant_beats_tr_on_motion_and_chunks_do_not_change_it(monkeypatch: pytest.MonkeyPatch) -> None:
    phi = dct_basis()
    models = {}
    for arch in ("hitvcsnet-tr", "hitvcsnet-mh"):
        models[arch] = HITVCSNet(architecture(arch, alpha_n=0.1, channels=4, levels=1)).eval()
        init_linear(models[arch], phi, phi)
    scene = textured(128, 192 + 9 * 4)
    frames = torch.cat([scene[..., 4 * i : 4 * i + 192] for i in range(9)], 1)  # a 4-pixel-per-frame pan
    frames = torch.cat([frames, frames.flip(-1)])  # two chains: 2·7 non-keyframes
    monkeypatch.setattr(hitvcsnet_module, "_MOTION_CHUNK_PIXELS", 3 * 128 * 192)  # chunks of 3 frames
    with torch.no_grad():
        tr, mh = models["hitvcsnet-tr"](frames), models["hitvcsnet-mh"](frames)
        monkeypatch.setattr(hitvcsnet_module, "_MOTION_CHUNK_PIXELS", 1 << 30)
        whole = models["hitvcsnet-mh"](frames)
    truth = torch.stack([frames[:, 1:8]], 1).unsqueeze(3)
    mse_tr = (tr.non - truth).pow(2).mean().item()
    mse_mh = (mh.non - truth).pow(2).mean().item()
    assert mse_mh < mse_tr / 4
    torch.testing.assert_close(mh.non, whole.non, atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ["hitvcsnet-mh", "hitvcsnet-mhc2"])
def test_mh_variant_trains(arch: str) -> None:
    torch.manual_seed(0)
    model = HITVCSNet(architecture(arch, alpha_n=0.1, channels=4, levels=1))
    frames = torch.rand(1, 9, 64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = hitvcsnet_loss(model(frames), frames, 8)
    optimizer.zero_grad()
    before.backward()
    assert model.sampling.non.weight.grad is not None and model.sampling.non.weight.grad.abs().sum() > 0
    optimizer.step()
    with torch.no_grad():
        after = hitvcsnet_loss(model(frames), frames, 8)
    assert after.item() < before.item()


def panned_chain(step: int, height: int = 128, width: int = 192) -> torch.Tensor:
    """Nine frames (1, 9, H, W) of a texture panned ``step`` pixels per frame."""
    scene = textured(height, width + 8 * step)
    return torch.cat([scene[..., step * i : step * i + width] for i in range(9)], 1)


@pytest.mark.parametrize("arch", ["hitvcsnet-mhc2", "hitvcsnet-mhc2s", "hitvcsnet-mhc2s-obmc"])
@pytest.mark.parametrize("alpha_n", [0.1, 0.01])
def test_second_search_follows_motion_past_the_radius(
    alpha_n: float, arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 5-pixel-per-frame pan puts the middle frames 15 to 25 pixels from both keyframes; the second pass finds
    them in their first-pass neighbours, 5 pixels away. Same weights (the KLT start), only motion_passes differs."""
    phi = dct_basis()
    models = {}
    for name in ("hitvcsnet-mhc", arch):
        models[name] = HITVCSNet(architecture(name, alpha_n=alpha_n, channels=4, levels=1)).eval()
        init_linear(models[name], phi, phi)
    frames = panned_chain(5)
    truth = frames[:, 1:8].view(1, 1, 7, 1, 128, 192)
    with torch.no_grad():
        once, twice = models["hitvcsnet-mhc"](frames), models[arch](frames)
        monkeypatch.setattr(hitvcsnet_module, "_MOTION_CHUNK_PIXELS", 2 * 128 * 192)  # chunks of 1 frame
        chunked = models[arch](frames)
    error = {name: (rec.non - truth).pow(2).mean().item() for name, rec in (("once", once), ("twice", twice))}
    assert error["twice"] < error["once"] / 2
    # Chunks of one frame rebuild it as well. Not to the last bit: in a noiseless pan several shifts fit a block
    # exactly, and which of them a search keeps is up to the last bits of the CPU's convolution kernels (an Intel
    # Xeon's differ by up to 9e-3 in the overlap of -obmc). That each floor is per frame is checked exactly in
    # test_search_floors_are_per_frame.
    assert (chunked.non - truth).pow(2).mean().item() == pytest.approx(error["twice"], rel=1e-3)
    # Still -mhc: every output frame agrees with its own measurements.
    y_non = models[arch].measure_non(twice.non[:, 0, :, 0])
    torch.testing.assert_close(y_non, models[arch].measure_non(truth[:, 0, :, 0]), atol=1e-4, rtol=1e-4)


def test_second_search_without_the_neighbour_blend_keeps_a_rigid_pan() -> None:
    """The demo's kind of clip (a camera pan over a scikit-image photo, 0.5–2.5 pixels a frame), αn 0.01: -mhc2
    takes the unshifted average of two first-pass neighbours, a blurred copy that fits 10 measurements a block,
    and falls below -mhc; -mhc2s, without that hypothesis, does not. Same weights (the DCT start)."""
    frames = torch.from_numpy(np.stack([f.y for f in camera_pan(9, 192, 128, seed=0)]).astype(np.float32) / 255)
    frames = frames[None]
    truth = frames[:, 1:8].view(1, 1, 7, 1, 128, 192)
    phi = dct_basis()
    psnr = {}
    for arch in ("hitvcsnet-mhc-lin", "hitvcsnet-mhc2-lin", "hitvcsnet-mhc2s-lin"):
        model = HITVCSNet(architecture(arch, alpha_n=0.01, channels=4, levels=1)).eval()
        init_linear(model, phi, phi)
        with torch.no_grad():
            psnr[arch] = -10 * torch.log10((model(frames).non - truth).pow(2).mean()).item()
    assert psnr["hitvcsnet-mhc2-lin"] < psnr["hitvcsnet-mhc-lin"] - 0.3  # the failure -mhc2s fixes
    assert psnr["hitvcsnet-mhc2s-lin"] > psnr["hitvcsnet-mhc2-lin"] + 0.3
    assert psnr["hitvcsnet-mhc2s-lin"] > psnr["hitvcsnet-mhc-lin"] - 0.1


def test_overlapped_blocks_blend_neighbours_across_their_edge_only() -> None:
    """Two 8×8 blocks side by side, extended by 2 pixels: each keeps its own value away from the common edge, the
    4 columns centred on it ramp from one to the other (weights summing to 1), and a block of higher confidence
    takes a larger share there."""
    block, overlap = 8, 2
    blocks = torch.stack([torch.full((12, 12), 1.0), torch.full((12, 12), 3.0)]).view(1, 1, 2, 12, 12)
    even = overlapped_blocks(blocks, torch.ones(1, 1, 2), block, overlap)[0, 0]
    assert even.shape == (8, 16)
    torch.testing.assert_close(even[:, :6], torch.full((8, 6), 1.0))
    torch.testing.assert_close(even[:, 10:], torch.full((8, 6), 3.0))
    # Ramp weights (i + 0.5) / 4 of the right block over columns 6–9: 1.25, 1.75, 2.25, 2.75.
    torch.testing.assert_close(even[0, 6:10], torch.tensor([1.25, 1.75, 2.25, 2.75]))
    trusted_left = overlapped_blocks(blocks, torch.tensor([[[9.0, 1.0]]]), block, overlap)[0, 0]
    assert (trusted_left[:, 6:10] < even[:, 6:10]).all()
    torch.testing.assert_close(trusted_left[:, :6], even[:, :6])
    with pytest.raises(ValueError, match="expected 8"):
        overlapped_blocks(blocks, torch.ones(1, 1, 2), block, 1)


def test_overlap_changes_nothing_where_every_block_moves_alike() -> None:
    """A whole-frame shift that the measurements pin down (a complete Φ): every block finds it, so the blocks'
    extended predictions agree where they overlap, and the overlapped prediction equals the plain one, which is
    the shifted keyframe. An extended block cut one pixel off its place would break the equality."""
    block, radius = 8, 4
    scene = textured(40, 56)
    key, frame = scene[..., 4:36, 4:52], scene[..., 1:33, 6:54]  # the frame is the keyframe moved by (3, −2)
    phi = dct_phi(block * block, block)
    y = F.conv2d(frame, phi, stride=block)
    references = [(key, measurement_energy(key, phi, radius))]
    plain = multihypothesis_prediction(references, [key], y, phi, radius, 4, 1.0)
    overlapped = multihypothesis_prediction(references, [key], y, phi, radius, 4, 1.0, overlap=3)
    # The top block row and the right block column reach past the keyframe's edge, so their best shifts are not the
    # true one; away from them (and from the 3 pixels they blend into their neighbours) every block is exact.
    inside = (..., slice(block + 3, None), slice(None, 40 - 3))
    torch.testing.assert_close(plain[inside], frame[inside], atol=1e-4, rtol=0)
    torch.testing.assert_close(overlapped[inside], plain[inside], atol=1e-4, rtol=0)
    assert (overlapped - plain).abs().max() > 1e-3  # where blocks disagree, the overlap does blend


def test_overlapped_motion_compensation_gains_on_a_rigid_pan() -> None:
    """The demo's kind of clip at αn 0.01 (DCT start): -mhc2s-obmc-lin blends neighbouring blocks' motion across
    their edges and beats -mhc2s-lin, whose prior has a seam at every block edge (+0.17 dB when written)."""
    frames = torch.from_numpy(np.stack([f.y for f in camera_pan(9, 192, 128, seed=0)]).astype(np.float32) / 255)
    frames = frames[None]
    truth = frames[:, 1:8].view(1, 1, 7, 1, 128, 192)
    psnr = {}
    for arch in ("hitvcsnet-mhc2s-lin", "hitvcsnet-mhc2s-obmc-lin"):
        model = HITVCSNet(architecture(arch, alpha_n=0.01, channels=4, levels=1)).eval()
        init_linear(model, dct_basis(), dct_basis())
        with torch.no_grad():
            psnr[arch] = -10 * torch.log10((model(frames).non - truth).pow(2).mean()).item()
    assert psnr["hitvcsnet-mhc2s-obmc-lin"] > psnr["hitvcsnet-mhc2s-lin"] + 0.1


def test_motion_overlap_is_checked() -> None:
    assert architecture("hitvcsnet-mhc2s-obmc-lin").motion_overlap == 8
    with pytest.raises(VcsError, match="motion_overlap must be in"):
        architecture("hitvcsnet-mhc2s-obmc", motion_overlap=17)
    with pytest.raises(VcsError, match="motion_overlap must be in"):
        architecture("hitvcsnet-mhc2s-obmc", motion_overlap_floor=0.0)
    with pytest.raises(VcsError, match="motion_overlap needs motion_radius"):
        architecture("hitvcsnet-tr", motion_overlap=4)


def test_neighbour_blend_needs_a_second_search() -> None:
    with pytest.raises(VcsError, match="neighbour_blend off needs motion_passes"):
        architecture("hitvcsnet-mhc", neighbour_blend=False)
    assert not architecture("hitvcsnet-mhc2s").neighbour_blend and architecture("hitvcsnet-mhc2").neighbour_blend


@pytest.mark.parametrize("arch", ["hitvcsnet-mhc2", "hitvcsnet-mhc2s", "hitvcsnet-mhc2s-obmc"])
def test_second_search_keeps_a_still_scene(arch: str) -> None:
    """Nothing moves: every non-keyframe is its decoded keyframe (whose error is the KLT's, not zero)."""
    phi = dct_basis()
    model = HITVCSNet(architecture(arch, alpha_n=0.01, channels=4, levels=1)).eval()
    init_linear(model, phi, phi)
    frames = panned_chain(0)
    with torch.no_grad():
        rec = model(frames)
    torch.testing.assert_close(rec.non[0, 0, :, 0], rec.key[0, :1, 0].expand(7, -1, -1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("whole", ["hitvcsnet-mhc", "hitvcsnet-mhc2", "hitvcsnet-mhc2s", "hitvcsnet-mhc2s-obmc"])
def test_linear_decoder_outputs_the_projected_prior_without_the_non_keyframe_network(
    whole: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-mhc-lin / -mhc2-lin / -mhc2s-lin: same weights as -mhc / -mhc2 / -mhc2s, same keyframes and initial
    non-keyframes; the non-keyframes are the initial ones projected onto their measurements, and the non-keyframe
    network never runs."""
    torch.manual_seed(0)
    full = HITVCSNet(architecture(whole, alpha_n=0.1, channels=4, levels=1)).eval()
    for p in full.msfm_non.parameters():  # a non-zero last conv, so the two decoders differ
        torch.nn.init.normal_(p, std=0.01)
    lin = HITVCSNet(architecture(f"{whole}-lin", alpha_n=0.1, channels=4, levels=1)).eval()
    lin.load_state_dict(full.state_dict())
    frames = panned_chain(3, 64, 96)
    with torch.no_grad():
        a = full(frames)
        monkeypatch.setattr(lin.msem_non, "extract", lambda *_: pytest.fail("the non-keyframe network ran"))
        b = lin(frames)
    torch.testing.assert_close(b.key, a.key, atol=0, rtol=0)
    torch.testing.assert_close(b.non_initial, a.non_initial, atol=0, rtol=0)
    y_non = lin.measure_non(frames[:, 1:8])  # (1, 7, m, h, w)
    expected = HITVCSNet.project(b.non_initial[0, 0], y_non[0], lin.sampling.non.weight)
    torch.testing.assert_close(b.non[0, 0], expected, atol=1e-6, rtol=0)
    assert (a.non - b.non).abs().max() > 1e-4


def test_keyframe_mirrors_average_the_keyframe_network_over_mirror_images() -> None:
    """-mhc-lin-flip4: a keyframe is the projected mean of the keyframe network run on the four mirror images of its
    initial reconstructions, each output mirrored back. Same weights as -mhc-lin; with the network's last conv at
    zero (it returns its input) the mirrors must cancel exactly."""
    torch.manual_seed(0)
    plain = HITVCSNet(architecture("hitvcsnet-mhc-lin", alpha_n=0.1, channels=4, levels=1)).eval()
    flip4 = HITVCSNet(architecture("hitvcsnet-mhc-lin-flip4", alpha_n=0.1, channels=4, levels=1)).eval()
    flip4.load_state_dict(plain.state_dict())
    frames = panned_chain(3, 64, 96)
    y = plain.measure_key(frames[0, :1])  # (1, m, h, w)
    with torch.no_grad():
        torch.testing.assert_close(flip4.reconstruct_keyframes(y), plain.reconstruct_keyframes(y), atol=1e-6, rtol=0)
        for p in plain.msfm_key.parameters():  # now the network changes its input, differently per mirror image
            torch.nn.init.normal_(p, std=0.01)
        flip4.load_state_dict(plain.state_dict())
        init = plain.initial_key(y)
        outputs = [
            plain._keyframe_network([x.flip(dims) for x in init]).flip(dims) for dims in [(-1,), (-2,), (-1, -2)]
        ]
        mean = (plain._keyframe_network(init) + sum(outputs)) / 4
        expected = HITVCSNet.project(mean, y, plain.sampling.key.weight)
        got = flip4.reconstruct_keyframes(y)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
        assert (got - plain.reconstruct_keyframes(y)).abs().max() > 1e-4
        torch.testing.assert_close(flip4(frames).key[0, 0], got[0], atol=1e-6, rtol=0)  # chains decode the same
    with pytest.raises(VcsError, match="keyframe_mirrors must be 1, 2 or 4"):
        architecture("hitvcsnet-mhc-lin", keyframe_mirrors=3)


def test_motion_settings_are_checked() -> None:
    with pytest.raises(VcsError, match="needs temporal_prior"):
        ModelConfig(motion_radius=8)
    with pytest.raises(VcsError, match="motion_radius must be"):
        ModelConfig(temporal_prior=True, motion_radius=-1)
    with pytest.raises(VcsError, match="motion_radius must be"):
        ModelConfig(temporal_prior=True, motion_radius=4, motion_temperature=0)
    with pytest.raises(VcsError, match="motion_passes must be"):
        ModelConfig(temporal_prior=True, motion_passes=2)
    with pytest.raises(VcsError, match="motion_passes must be"):
        ModelConfig(temporal_prior=True, motion_radius=4, motion_passes=0)
    with pytest.raises(VcsError, match="non_key_network off needs temporal_prior"):
        ModelConfig(non_key_network=False)
