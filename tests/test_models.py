"""HIT-VCSNet: sampling as y = Φx, shapes, ablations, training step, determinism, registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vcscodec.errors import VcsError
from vcscodec.models import (
    HITVCSNet,
    ModelConfig,
    architecture,
    chain_targets,
    hitvcsnet_loss,
    measurement_count,
    parameter_counts,
)
from vcscodec.models.init import init_linear, klt_basis, load_widened
from vcscodec.models.loss import frame_ssim, loss_term
from vcscodec.registry import (
    default_model,
    derive_model,
    find_model,
    list_models,
    mark_default,
    model_name,
    save_model,
    sha256_file,
)
from vcscodec.samples import camera_pan

TINY = {"channels": 4, "levels": 1}


def tiny(arch: str = "hitvcsnet", **kw: object) -> HITVCSNet:
    torch.manual_seed(0)
    return HITVCSNet(architecture(arch, **{**TINY, **kw}))


def orthonormal_basis(seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((1024, 1024)))
    return q.T


def test_measurement_counts_are_the_file_formats_one_rounding() -> None:
    """docs/format.md §2.2: α times the integer B², one binary64 product, then round half to even; (α·B)·B rounds
    twice and differs where B is no power of two. The model and the container's check must agree everywhere."""
    from fractions import Fraction

    from vcscodec.container import expected_m

    assert measurement_count(0.235, 10) == expected_m(0.235, 10) == 24  # (0.235·10)·10 = 23.499999999999996
    for block in (7, 10, 16, 24, 32):
        for alpha in (i / 1000 for i in range(1, 1001)):
            exact = float(Fraction(alpha) * block * block)  # the one correctly rounded binary64 product
            assert expected_m(alpha, block) == round(exact), (alpha, block)
            assert measurement_count(alpha, block) == max(1, round(exact)), (alpha, block)


@pytest.mark.parametrize(("alpha", "count"), [(0.5, 512), (0.1, 102), (0.01, 10), (1.0, 1024), (0.0049, 5)])
def test_measurement_counts_round_not_floor(alpha: float, count: int) -> None:
    assert measurement_count(alpha, 32) == count
    model = HITVCSNet(ModelConfig(alpha_n=alpha, **TINY))
    assert model.sampling.non.weight.shape == (count, 1, 32, 32)
    assert model.sampling.non.bias is None and model.sampling.key.bias is None


def test_sampling_convolution_is_phi_x_block_by_block() -> None:
    model = tiny(alpha_n=0.1)
    frame = torch.rand(64, 96)
    y = model.measure_non(frame).detach().numpy()  # (102, 2, 3)
    phi = model.sampling.non.weight.detach().numpy().reshape(102, 1024)  # explicit Φ, row-major blocks
    for r in range(2):
        for c in range(3):
            x = frame[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32].numpy().reshape(-1)
            np.testing.assert_allclose(y[:, r, c], phi @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), [(288, 352), (64, 96)])
def test_shapes_for_cif_and_small_frames(height: int, width: int) -> None:
    model = tiny("hitvcsnet-tr", alpha_n=0.01)
    frames = torch.rand(2, 17, height, width)  # batch of 2 chains of 2 GOPs of 8
    with torch.no_grad():
        rec = model(frames)
    assert rec.key.shape == (2, 3, 1, height, width)
    assert rec.key_initial.shape == rec.key.shape
    assert rec.non.shape == (2, 2, 7, 1, height, width)
    y_key = model.measure_key(frames[:, ::8])
    assert y_key.shape == (2, 3, 512, height // 32, width // 32)
    assert model.measure_non(frames[:, 1:8]).shape == (2, 7, 10, height // 32, width // 32)


def test_initial_reconstruction_has_three_scales() -> None:
    model = tiny()
    y = torch.rand(2, model.config.m_k, 2, 3)
    scales = model.initial_key(y)
    assert [tuple(s.shape) for s in scales] == [(2, 1, 64, 96), (2, 1, 32, 48), (2, 1, 16, 24)]
    assert [c.out_channels for c in model.initial_key.upsample] == [1024, 256, 64]


def test_ablations_remove_exactly_their_modules() -> None:
    full = parameter_counts(tiny())
    no_hffm = parameter_counts(tiny("hitvcsnet-nohffm"))
    no_hfim = parameter_counts(tiny("hitvcsnet-nohfim"))
    assert no_hffm["hffm"] == 0 < full["hffm"]
    assert no_hffm["total"] == full["total"] - full["hffm"]
    assert 0 < no_hfim["hfim"] < full["hfim"]  # keyframes still enter once, after feature extraction
    assert no_hfim["total"] == full["total"] - (full["hfim"] - no_hfim["hfim"])
    for part in ("sampling", "initial_reconstruction", "msem", "msfm"):
        assert no_hffm[part] == no_hfim[part] == full[part]
    assert full["run_in_decoding"] == full["total"]
    lin = tiny("hitvcsnet-mhc2-lin")
    skipped = sum(p.numel() for m in (lin.msem_non, lin.hfim, lin.msfm_non) for p in m.parameters())
    counts = parameter_counts(lin)
    assert counts["total"] == full["total"] and counts["run_in_decoding"] == full["total"] - skipped > 0
    frames = torch.rand(2, 9, 64, 64)
    for arch in ("hitvcsnet-nohffm", "hitvcsnet-nohfim"):
        rec = tiny(arch)(frames)
        assert rec.non.shape == (2, 1, 7, 1, 64, 64)


def test_hfim_carries_keyframe_information_into_non_keyframes() -> None:
    model = tiny()
    for p in model.msfm_non.out.parameters():  # make the deep path visible in the output
        torch.nn.init.normal_(p, std=0.1)
    frames = torch.rand(1, 9, 64, 64)
    other = frames.clone()
    other[:, 8] = torch.rand(64, 64)  # change only the next GOP's keyframe
    with torch.no_grad():
        a, b = model(frames).non, model(other).non
    assert not torch.allclose(a, b)


def test_a_wider_keyframe_branch_starts_exactly_where_the_narrow_one_was() -> None:
    """load_widened: the widened model decodes keyframes and non-keyframes as the narrow one did, and its new
    channels are live (a weight from them into the output changes the keyframes)."""
    narrow = tiny("hitvcsnet-mhc")
    for p in narrow.parameters():  # every weight nonzero, the zero-started last convs included
        torch.nn.init.normal_(p, std=0.05)
    wide = tiny("hitvcsnet-mhc", key_channels=7)
    assert "hfim.narrow.0.0.weight" in wide.state_dict() and not any("narrow" in k for k in narrow.state_dict())
    assert wide.msem_key.fem[0].out_channels == 7 and wide.msem_non.fem[0].out_channels == 4
    load_widened(wide, narrow.state_dict())
    frames = torch.rand(1, 9, 64, 64)
    with torch.no_grad():
        a, b = narrow(frames), wide(frames)
        assert torch.allclose(a.key, b.key, atol=1e-6) and torch.allclose(a.non, b.non, atol=1e-6)
        wide.msfm_key.out.weight[:, 4:] = 0.1
        assert not torch.allclose(wide(frames).key, a.key, atol=1e-3)
    with pytest.raises(ValueError, match="no place"):  # a narrower model has no HFIM narrowing
        load_widened(tiny("hitvcsnet-mhc"), wide.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        load_widened(tiny("hitvcsnet-mhc", key_channels=5), wide.state_dict())


def test_one_optimizer_step_lowers_the_loss() -> None:
    model = tiny("hitvcsnet-tr", alpha_n=0.1)
    frames = torch.rand(2, 9, 64, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    before = hitvcsnet_loss(model(frames), frames, 8)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = hitvcsnet_loss(model(frames), frames, 8)
    assert after.item() < before.item()


def test_loss_is_the_papers_sum_of_initial_and_deep_terms() -> None:
    model = tiny()
    frames = torch.rand(1, 9, 64, 64)
    rec = model(frames)
    keys, non = chain_targets(frames, 8)
    expected = sum(
        ((a - b) ** 2).mean()
        for a, b in ((rec.key_initial, keys), (rec.key, keys), (rec.non_initial, non), (rec.non, non))
    )
    torch.testing.assert_close(hitvcsnet_loss(rec, frames, 8), expected)


def test_frame_psnr_loss_is_minus_the_mean_psnr_of_each_term_and_weighs_frames_by_their_error() -> None:
    """optim.loss = "frame-psnr": each of the four terms is minus the mean PSNR of its frames (pixels in [0, 1]),
    and a frame's pull on the gradient is its MSE's gradient over its MSE: an exact frame's error counts as much
    as a bad frame's, where the MSE would all but ignore it."""
    model = tiny()
    frames = torch.rand(1, 9, 64, 64)
    with torch.no_grad():
        rec = model(frames)
    keys, non = chain_targets(frames, 8)

    def mean_psnr(rebuilt: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        mse = ((rebuilt - truth) ** 2).flatten(0, -3).mean((-2, -1))
        return (10 * torch.log10(1 / mse)).mean()

    pairs = ((rec.key_initial, keys), (rec.key, keys), (rec.non_initial, non), (rec.non, non))
    expected = -sum(mean_psnr(a, b) for a, b in pairs)
    torch.testing.assert_close(hitvcsnet_loss(rec, frames, 8, "frame-psnr"), expected)

    truth = torch.zeros(2, 8, 8)
    rebuilt = torch.stack([torch.full((8, 8), 0.01), torch.full((8, 8), 0.3)]).requires_grad_()
    for loss, ratio in (("mse", 1 / 30), ("frame-psnr", 30.0)):
        rebuilt.grad = None
        loss_term(rebuilt, truth, loss).backward()
        good, bad = rebuilt.grad.abs().mean((-2, -1))
        assert (good / bad).item() == pytest.approx(ratio, rel=1e-3)
    with pytest.raises(ValueError, match="frame-psnr"):
        loss_term(rebuilt, truth, "l1")


def test_charbonnier_loss_is_a_smooth_l1_whose_gradient_does_not_shrink_with_the_error() -> None:
    """optim.loss = "charbonnier": the mean over pixels of √(d² + ε²), so a pixel's pull on the gradient is about
    the sign of its error, where the MSE's shrinks with the error."""
    truth = torch.zeros(2, 8, 8)
    rebuilt = torch.stack([torch.full((8, 8), 0.01), torch.full((8, 8), -0.3)]).requires_grad_()
    value = loss_term(rebuilt, truth, "charbonnier")
    assert value.item() == pytest.approx((0.01 + 0.3) / 2, rel=1e-3)
    value.backward()
    good, bad = rebuilt.grad.mean((-2, -1))
    assert good.item() > 0 > bad.item()
    assert (good / -bad).item() == pytest.approx(1.0, rel=1e-2)
    # an exact pixel has a zero gradient (the ε keeps it smooth there) and costs ε
    exact = torch.zeros(1, 4, 4, requires_grad=True)
    loss_term(exact, torch.zeros(1, 4, 4), "charbonnier").backward()
    assert exact.grad.abs().max().item() == 0


def test_frame_ssim_is_the_bench_ssim_before_rounding_and_the_ssim_l1_loss_mixes_it_with_l1() -> None:
    """optim.loss = "ssim-l1": the SSIM term is metrics.ssim's definition (scikit-image's Gaussian SSIM), per
    frame, on unrounded pixels; the loss is 0.84·(1 − SSIM) + 0.16·L1 and pulls a blurred frame toward its truth."""
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(5)
    truth = torch.from_numpy(rng.random((2, 3, 24, 30))).float()
    rebuilt = (truth + 0.1 * torch.from_numpy(rng.standard_normal((2, 3, 24, 30))).float()).clamp(0, 1)
    expected = [
        structural_similarity(
            t.double().numpy(),
            r.double().numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for t, r in zip(truth.reshape(-1, 24, 30), rebuilt.reshape(-1, 24, 30), strict=True)
    ]
    got = frame_ssim(rebuilt, truth)
    assert got.shape == (2, 3)
    assert got.flatten().tolist() == pytest.approx(expected, abs=1e-5)
    assert frame_ssim(truth, truth).flatten().tolist() == pytest.approx([1.0] * 6, abs=1e-6)
    l1 = (rebuilt - truth).abs().mean().item()
    value = loss_term(rebuilt, truth, "ssim-l1").item()
    assert value == pytest.approx(0.84 * (1 - float(np.mean(expected))) + 0.16 * l1, abs=1e-5)
    with pytest.raises(ValueError, match="11x11"):
        frame_ssim(torch.zeros(1, 10, 40), torch.zeros(1, 10, 40))
    # its gradient pulls a blurred frame back toward the sharp one: one small step lowers the loss and lifts SSIM
    sharp = truth[0, :1]
    blurred = F.avg_pool2d(sharp.unsqueeze(0), 3, stride=1, padding=1, count_include_pad=False)[0].requires_grad_()
    before = loss_term(blurred, sharp, "ssim-l1")
    before.backward()
    stepped = (blurred - 0.5 * blurred.grad / blurred.grad.abs().max()).detach()
    assert loss_term(stepped, sharp, "ssim-l1") < before
    assert frame_ssim(stepped, sharp).item() > frame_ssim(blurred.detach(), sharp).item()


def test_decoder_is_deterministic_on_cpu() -> None:
    model = tiny("hitvcsnet-tr").eval()
    y_key = torch.rand(2, 3, 512, 2, 2)
    y_non = torch.rand(2, 2, 7, 102, 2, 2)
    with torch.no_grad():
        a = model.reconstruct(y_key, y_non)
        b = model.reconstruct(y_key, y_non)
    assert torch.equal(a.key, b.key) and torch.equal(a.non, b.non)


def test_decoder_needs_no_ground_truth_and_takes_short_gops() -> None:
    model = tiny("hitvcsnet-tr").eval()
    with torch.no_grad():
        rec = model.reconstruct(torch.rand(1, 2, 512, 1, 1), torch.rand(1, 1, 3, 102, 1, 1))
        alone = model.reconstruct_keyframes(torch.rand(3, 512, 1, 1))
    assert rec.non.shape == (1, 1, 3, 1, 32, 32)
    assert alone.shape == (3, 1, 32, 32)


def test_projection_is_the_nearest_frame_its_measurements_allow() -> None:
    torch.manual_seed(1)
    phi = torch.randn(102, 1, 32, 32) / 32
    truth, guess = torch.rand(2, 1, 64, 96), torch.rand(2, 1, 64, 96)
    y = F.conv2d(truth, phi, stride=32)
    projected = HITVCSNet.project(guess, y, phi)
    torch.testing.assert_close(F.conv2d(projected, phi, stride=32), y, atol=1e-4, rtol=1e-4)
    # An orthogonal projection onto a set that holds the truth: Pythagoras, so the error only shrinks.
    before, after = (guess - truth).pow(2).sum(), (projected - truth).pow(2).sum()
    moved = (projected - guess).pow(2).sum()
    assert after < before
    torch.testing.assert_close(before, after + moved, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(HITVCSNet.project(projected, y, phi), projected, atol=1e-5, rtol=1e-5)


def test_consistency_variant_outputs_agree_with_their_measurements() -> None:
    """-mhc decodes every frame onto its own measurements; -mh with the same weights does not."""
    mhc = tiny("hitvcsnet-mhc", alpha_n=0.1).eval()
    mh = HITVCSNet(mhc.config.replace(arch="hitvcsnet-mh", consistency=False)).eval()
    mh.load_state_dict(mhc.state_dict())
    frames = torch.rand(1, 9, 64, 64)
    y_key, y_non = mhc.measure_key(frames[:, ::8]), mhc.measure_non(frames[:, 1:8])
    with torch.no_grad():
        rec, plain = mhc.reconstruct(y_key, y_non.unsqueeze(1)), mh.reconstruct(y_key, y_non.unsqueeze(1))
        alone = mhc.reconstruct_keyframes(y_key[0])
    torch.testing.assert_close(mhc.measure_key(rec.key[:, :, 0]), y_key, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mhc.measure_non(rec.non[:, 0, :, 0]), y_non, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mhc.measure_key(alone[:, 0]), y_key[0], atol=1e-4, rtol=1e-4)
    assert (mh.measure_key(plain.key[:, :, 0]) - y_key).abs().max() > 1e-2


def test_klt_start_equals_the_linear_decoder() -> None:
    """With an orthonormal Φ, Φ_B = Φᵀ and a zero last conv, the untrained network returns Φᵀ Φ x (keyframes)
    and x̄ + Φnᵀ Φn (x − x̄) (non-keyframes of the temporal-prior variant)."""
    phi = orthonormal_basis()
    model = tiny("hitvcsnet-tr", alpha_n=0.1)
    init_linear(model, phi, phi)
    frames = torch.rand(1, 9, 32, 32, dtype=torch.float32)
    with torch.no_grad():
        rec = model(frames)
    x = frames[0].numpy().reshape(9, -1).astype(np.float64)
    pk, pn = phi[:512], phi[:102]
    np.testing.assert_allclose(rec.key[0, 0, 0].numpy().reshape(-1), pk.T @ pk @ x[0], atol=2e-5)
    t = 3 / 8
    blend = (1 - t) * (pk.T @ pk @ x[0]) + t * (pk.T @ pk @ x[8])
    expected = blend + pn.T @ (pn @ (x[3] - blend))
    np.testing.assert_allclose(rec.non[0, 0, 2, 0].numpy().reshape(-1), expected, atol=2e-5)


def test_klt_basis_is_orthonormal_and_sorted() -> None:
    rng = np.random.default_rng(1)
    data = rng.standard_normal((500, 16)) * np.linspace(3, 0.1, 16)
    basis = klt_basis(data.T @ data / 500)
    np.testing.assert_allclose(basis @ basis.T, np.eye(16), atol=1e-10)
    energy = ((data @ basis.T) ** 2).mean(axis=0)
    assert np.all(np.diff(energy) <= 1e-9)


def test_config_refuses_bad_values() -> None:
    with pytest.raises(VcsError, match="outside"):
        ModelConfig(alpha_n=0.0)
    with pytest.raises(VcsError, match="unknown model config"):
        ModelConfig.from_dict({"colour": 1})
    with pytest.raises(VcsError, match="unknown architecture"):
        architecture("resnet")
    with pytest.raises(VcsError, match="key_channels"):
        ModelConfig(key_channels=-1)


def test_registry_round_trip_hash_and_names(tmp_path: pytest.TempPathFactory) -> None:
    model = tiny("hitvcsnet-tr", alpha_n=0.01)
    card = save_model(model, tmp_path, {"training": {"steps": 3}}, default=True)
    sha = card.sha256
    assert card.name == f"hitvcsnet-tr-k0.5-n0.01-{sha[:8]}"
    manifest = json.loads((tmp_path / f"{card.name}.json").read_text())
    assert manifest["config"]["alpha_n"] == 0.01 and manifest["training"]["steps"] == 3
    assert find_model(card.name[:-4], tmp_path).name == card.name
    assert default_model(0.01, tmp_path).name == card.name
    # a ratio near one that is there is not printed as that one
    with pytest.raises(VcsError, match=r"no model for ratio 0\.0100001 in .* \(it has 0\.01\); use --model NAME$"):
        default_model(0.0100001, tmp_path)
    assert [c.name for c in list_models(tmp_path)] == [card.name]
    loaded = card.load()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v.half().float())
    phi_k, phi_n = card.sampling_matrices()
    assert phi_k.shape == (512, 1024) and phi_n.shape == (10, 1024)
    with np.load(card.path) as data:
        assert all(data[k].dtype == np.float16 for k in data.files)
    with open(card.path, "r+b") as f:  # damage one byte: loading must refuse
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(VcsError, match="sha256"):
        card.load()
    with pytest.raises(VcsError, match=r"'nothing' is not in .*\(`vcs models` lists the 1 there\)$"):
        find_model("nothing", tmp_path)
    typo = card.name.replace("-k0.5", "-k05")  # close to the one model there: named, the rest counted
    with pytest.raises(VcsError, match=rf"is not in .*; did you mean {card.name}\? \(`vcs models` lists all 1\)$"):
        find_model(typo, tmp_path)


def test_two_manifests_can_share_one_weights_file(tmp_path: pytest.TempPathFactory) -> None:
    """The -mh models name the -tr weights file: both load the same tensors, and both refuse it once damaged."""
    card = save_model(tiny("hitvcsnet-tr", alpha_n=0.1), tmp_path)
    manifest = json.loads((tmp_path / f"{card.name}.json").read_text())
    config = {**manifest["config"], "arch": "hitvcsnet-mh", "motion_radius": 16}
    shared = {**manifest, "name": card.name.replace("-tr-", "-mh-"), "arch": "hitvcsnet-mh", "config": config}
    (tmp_path / f"{shared['name']}.json").write_text(json.dumps(shared))
    mh = find_model(shared["name"], tmp_path)
    assert mh.path == card.path and mh.model_config().motion_radius == 16
    loaded = mh.load().state_dict()  # once: loading hashes the file
    for k, v in card.load().state_dict().items():
        torch.testing.assert_close(loaded[k], v)
    data = bytearray(card.path.read_bytes())
    data[-10] ^= 0xFF
    card.path.write_bytes(bytes(data))
    for c in (card, mh):
        with pytest.raises(VcsError, match="does not match its manifest"):
            c.load()


def test_an_interrupted_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vcscodec.registry as registry

    def interrupted(path: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "sha256_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(tiny("hitvcsnet-tr", alpha_n=0.1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unmarked_models_are_not_chosen_by_name(tmp_path: pytest.TempPathFactory) -> None:
    """A folder of exports none of which is marked default (a training run's, as $VCS_WEIGHTS): its only model of
    a ratio is that ratio's; two are refused, naming both, not chosen between by their names' order."""
    first = save_model(tiny("hitvcsnet-mhc", alpha_n=0.1), tmp_path)
    assert default_model(0.1, tmp_path).name == first.name
    second = save_model(tiny("hitvcsnet-mhc", alpha_n=0.1, channels=6), tmp_path)
    with pytest.raises(VcsError, match="2 models for ratio 0.1 in .* and none marked default: .*; use --model") as e:
        default_model(0.1, tmp_path)
    assert first.name in str(e.value) and second.name in str(e.value)
    mark_default(second)
    assert default_model(0.1, tmp_path).name == second.name


def test_one_default_per_ratio_whoever_marks_it(tmp_path: pytest.TempPathFactory) -> None:
    """An export or a derived decoder marked default takes the place of the ratio's old default (the other ratio's
    stays); two manifests marked default by hand are refused, not chosen between by their names' order."""
    old = save_model(tiny("hitvcsnet-mhc", alpha_n=0.1), tmp_path, default=True)
    other_ratio = save_model(tiny("hitvcsnet-mhc", alpha_n=0.01), tmp_path, default=True)
    new = save_model(tiny("hitvcsnet-mhc", alpha_n=0.1, channels=6), tmp_path, default=True)
    assert default_model(0.1, tmp_path).name == new.name and default_model(0.01, tmp_path).name == other_ratio.name
    assert not find_model(old.name, tmp_path).default
    derived = derive_model(find_model(old.name, tmp_path), "hitvcsnet-mhc-lin", "the default decoder", default=True)
    assert default_model(0.1, tmp_path).name == derived.name and not find_model(new.name, tmp_path).default
    manifest = json.loads((tmp_path / f"{new.name}.json").read_text())
    (tmp_path / f"{new.name}.json").write_text(json.dumps({**manifest, "default": True}))
    with pytest.raises(VcsError, match="several models are marked default for ratio 0.1"):
        default_model(0.1, tmp_path)


def test_derived_model_shares_the_weights_and_changes_only_the_decoder(tmp_path: pytest.TempPathFactory) -> None:
    card = save_model(tiny("hitvcsnet-mhc", alpha_n=0.01), tmp_path)
    derived = derive_model(card, "hitvcsnet-mhc2", "a second motion search")
    assert derived.name == card.name.replace("-mhc-", "-mhc2-") and derived.path == card.path
    assert find_model(derived.name, tmp_path).manifest["derived_from"]["model"] == card.name
    config = derived.model_config()
    assert (config.motion_passes, config.alpha_n, config.channels) == (2, 0.01, card.model_config().channels)
    assert not derived.default
    loaded = derived.load().state_dict()  # once: loading hashes the file
    for k, v in card.load().state_dict().items():
        torch.testing.assert_close(loaded[k], v)
    with pytest.raises(VcsError, match="already exists"):
        derive_model(card, "hitvcsnet-mhc2", "again")
    with pytest.raises(VcsError, match="do not fit"):  # the ablation has fewer HFIM blocks
        derive_model(card, "hitvcsnet-nohfim", "not a decoder-only change")
    assert not (tmp_path / derived.name.replace("-mhc2-", "-nohfim-")).with_suffix(".json").exists()


def test_shipped_manifests_name_their_weights_and_one_default_per_ratio() -> None:
    """weights/ as committed: every manifest's name is its architecture, ratios and file hash; its config is its
    architecture's; the file matches; one default per ratio, and the defaults load."""
    shipped = Path(__file__).resolve().parent.parent / "weights"
    cards = list_models(shipped)
    assert cards
    for card in cards:
        assert card.name == model_name(card.arch, card.alpha_k, card.alpha_n, card.sha256), card.name
        config = card.model_config()
        assert config.arch == card.arch and (config.alpha_k, config.alpha_n) == (card.alpha_k, card.alpha_n)
        assert architecture(card.arch, alpha_n=card.alpha_n, channels=config.channels, levels=config.levels) == config
        assert sha256_file(card.path) == card.sha256, card.name
    for ratio in (0.1, 0.01):
        defaults = [c for c in cards if c.default and c.alpha_n == ratio]
        assert len(defaults) == 1, [c.name for c in defaults]
        assert default_model(ratio, shipped).load().config.alpha_n == ratio


@pytest.mark.parametrize(("ratio", "klt_start"), [(0.1, "ba52909d"), (0.01, "7bc1f2af")])
def test_shipped_defaults_rebuild_a_pan_far_above_their_linear_start(ratio: float, klt_start: str) -> None:
    """The default decoders as shipped (weights and search), on 9 frames of a camera pan over a scikit-image photo
    that no training saw: keyframes and non-keyframes well above the KLT start decoded by linear interpolation
    (`hitvcsnet-tr`, the first shipped models). When written: keyframes +2.3 dB, non-keyframes +5.8 / +6.8 dB."""
    shipped = Path(__file__).resolve().parent.parent / "weights"
    frames = np.stack([f.y for f in camera_pan(9, 192, 128, seed=0)]).astype(np.float32) / 255
    frames = torch.from_numpy(frames)[None]
    key_truth, non_truth = frames[:, ::8], frames[:, 1:8].reshape(1, 1, 7, 1, 128, 192)
    psnr = {}
    for name in (default_model(ratio, shipped).name, f"hitvcsnet-tr-k0.5-n{ratio:g}-{klt_start}"):
        with torch.no_grad():
            rec = find_model(name, shipped).load().eval()(frames)
        psnr[name] = (
            -10 * torch.log10((rec.key[:, :, 0] - key_truth).pow(2).mean()).item(),
            -10 * torch.log10((rec.non - non_truth).pow(2).mean()).item(),
        )
    (key, non), (key_start, non_start) = psnr.values()
    assert key > key_start + 1.0 and non > non_start + 3.0, psnr


def test_training_steps_count_a_grafted_keyframe_branch(tmp_path: Path) -> None:
    from vcscodec.registry import ModelCard

    def card(manifest: dict) -> ModelCard:
        return ModelCard("m", "hitvcsnet", {}, 0.5, 0.1, "0" * 64, tmp_path / "m.npz", manifest=manifest)

    grafted = card({"training": {"steps": 534}, "grafted": {"keyframe_branch_steps": 2919}})
    assert (
        grafted.training_steps() == "534 (+2919 keyframe branch)" and grafted.training_steps(short=True) == "534+2919"
    )
    assert card({"training": {"steps": 0}}).training_steps(short=True) == "0"
    assert card({}).training_steps() == ""
