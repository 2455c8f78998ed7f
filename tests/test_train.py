"""`vcs train` on a tiny synthetic collection: learning, exact resume, signals, two processes, packs, bad configs.

Everything is tiny (block 16, 4 channels, one level, 32×32 crops, a handful of steps) so the file runs in well
under a minute on two shared cores; never the real data.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vcscodec.errors import CommandLineError, VcsError
from vcscodec.train.config import TrainConfig, load_config
from vcscodec.train.data import ChainSampler, DeviceChainSampler, load_collection, read_pack_meta
from vcscodec.train.loop import CHECKPOINT, LOG, run_training

TINY = {
    "model": {"arch": "hitvcsnet-tr", "block": 16, "channels": 4, "levels": 1, "init_samples": 300},
    "data": {
        "validation": ["val_64x64"],
        "crop": 32,
        "batch": 2,
        "photo_frames": 12,
        "photo_width": 64,
        "photo_height": 64,
        "validation_crop": 32,
        "validation_chains": 2,
    },
    "optim": {"steps": 4},
    "run": {"threads": 1, "log_every": 1, "validate_every": 3, "checkpoint_every": 2},
}


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short grey clips (one held out for validation) and a photo, with one shared luma cache."""
    from skimage import data
    from skimage.io import imsave

    from vcscodec.samples import gray_clip, write_clip

    root = tmp_path_factory.mktemp("collection")
    (root / "data").mkdir()
    write_clip(root / "data" / "a_64x64.y4m", gray_clip(18, 64, 64, "astronaut", 0))
    write_clip(root / "data" / "b_64x64.y4m", gray_clip(18, 64, 64, "coffee", 1))
    write_clip(root / "data" / "val_64x64.y4m", gray_clip(10, 64, 64, "chelsea", 2))
    imsave(root / "data" / "photo.png", data.camera()[:80, :96])
    (root / "PROVENANCE.md").write_text("# Where the test collection comes from\nscikit-image's pictures.\n")
    return root


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def write_config(path: Path, collection: Path, run_dir: str, **sections: dict[str, Any]) -> Path:
    """TINY, pointed at the collection, with per-test changes: write_config(p, c, "run1", optim={"steps": 8})."""
    merged = {s: dict(v) for s, v in TINY.items()}
    merged["data"].update(train=[str(collection / "data")], cache=str(collection / "cache"))
    merged["run"]["dir"] = str(path.parent / run_dir)
    for section, values in sections.items():
        merged.setdefault(section, {}).update(values)
    path.write_text(
        "".join(f"[{s}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) for s, values in merged.items())
    )
    return path


def steps_of(run_dir: Path) -> list[dict[str, Any]]:
    """The log's step records without the timings (which differ between two identical runs)."""
    records = [json.loads(line) for line in (run_dir / LOG).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "wall"} for r in records]


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---- settings ----------------------------------------------------------------------------------------------------
def test_defaults_follow_the_paper() -> None:
    c = TrainConfig()
    assert (c.model.block, c.model.scales, c.model.gop, c.model.alpha_k) == (32, 3, 8, 0.5)
    assert (c.data.batch, c.optim.lr, c.optim.halve_every_epochs) == (32, 1e-4, 30)


def test_shipped_configs_parse() -> None:
    for path in sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml")):
        config = load_config(path, check_data=False)
        assert 0 < config.model.alpha_n <= 1


def test_shipped_configs_start_from_shipped_models() -> None:
    """A config that continues a model names exactly one model in weights/, of its own ratio and architecture."""
    from vcscodec.registry import find_model

    root = Path(__file__).parent.parent
    starts = 0
    for path in sorted(root.joinpath("configs").glob("*.toml")):
        config = load_config(path, check_data=False)
        if config.model.resume_weights:
            card = find_model(config.model.resume_weights, root / "weights")
            assert (card.alpha_n, card.arch) == (config.model.alpha_n, config.model.arch), path.name
            starts += 1
    assert starts > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"crop": 32, "bogus": 1}}, "unknown key data.bogus"),
        ({"optim": {"stepz": 1}}, "did you mean optim.steps"),
        ({"extra": {"a": 1}}, "unknown section [extra]"),
        ({"data": {"crop": "32"}}, "data.crop: expected int"),
        ({"run": {"bf16": "maybe"}}, "run.bf16"),
        ({"data": {"train": ["missing"]}}, "does not exist"),
        ({"data": {"train": ["empty"]}}, "holds no video or photo"),
        ({"data": {"train": ["cif"]}}, "never train on the test set"),
        ({"data": {"crop": 40}}, "multiples of the block"),
        ({"optim": {"parts": "decoder"}}, "optim.parts"),
        ({"optim": {"quant_noise": -1.0}}, "optim.quant_noise"),
        ({"optim": {"orthonormal_sampling": True, "sampling_lr_scale": 0.0}}, "optim.orthonormal_sampling"),
        ({"optim": {"adam_eps": 0.0}}, "optim.adam_eps"),
        ({"optim": {"loss": "l1"}}, "optim.loss: 'l1' is not mse, frame-psnr, charbonnier or ssim-l1"),
        ({"model": {"arch": "hitvcsnet-mhc2-lin"}}, "skips the non-keyframe network"),
        ({"model": {"arch": "hitvcsnet-mhc-lin"}, "optim": {"parts": "non-keyframes"}}, "skips the non-keyframe"),
        ({"optim": {"parts": "non-keyframes", "orthonormal_sampling": True}}, "no Φ is trained .* non-keyframes"),
        ({"optim": {"lr": float("nan")}}, "optim.lr: expected a finite number, got nan"),
        ({"optim": {"lr": float("inf")}}, "optim.lr: expected a finite number, got inf"),
        ({"optim": {"sampling_lr_scale": float("nan")}}, "optim.sampling_lr_scale: expected a finite number"),
        ({"optim": {"warmup_steps": -1}}, "optim.warmup_steps: -1 is below its minimum, 0"),
        ({"data": {"batch": 0}}, "data.batch: 0 is below its minimum, 1"),
        ({"run": {"log_every": 0}}, "run.log_every: 0 is below its minimum, 1"),
        ({"data": {"photo_width": 8}}, "data.photo_width: 8 is below its minimum, 16"),
        ({"optim": {"lr": 0.0}}, "optim.lr: 0.0 must be > 0"),
        ({"run": {"seed": -1}}, "run.seed: -1 is not in 0 to 2.32 - 1"),
        ({"run": {"seed": 2**64}}, "run.seed: 18446744073709551616 is not in"),
        ({"run": {"dir": ""}}, "run.dir is empty"),
        ({"run": {"default": True}}, "run.default: true marks the exported model, but run.export names no folder"),
        ({"data": {"train": ["afile.y4m"]}}, "afile.y4m is a file; list the folder that holds it"),
        ({"data": {"validation": ["val_64x64", "nope"]}}, "data.validation names clips that are not in the data: nope"),
        ({"data": {"max_frames": 5}}, r"data.max_frames 5 is shorter than a chain \(model.gop \+ 1 = 9\)"),
        ({"data": {"train": ["empty", "empty"]}}, "data.train lists .*empty more than once"),
        ({"data": {"train": ["empty/inner", "empty"]}}, "data.train lists .*inner, which is inside .*empty, also"),
        (
            {"model": {"block": 8}, "data": {"crop": 8, "validation_crop": 8}, "optim": {"loss": "ssim-l1"}},
            "ssim-l1 needs crops of at least 11 pixels, data.crop is 8",
        ),
    ],
)
def test_bad_config_is_one_line_error(tmp_path: Path, collection: Path, change: dict, message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "cif").mkdir()
    (tmp_path / "cif" / "foreman_cif.y4m").write_bytes(b"")
    (tmp_path / "afile.y4m").write_bytes(b"")
    change = {s: dict(v) for s, v in change.items()}
    if "train" in change.get("data", {}):
        change["data"]["train"] = [str(tmp_path / name) for name in change["data"]["train"]]
    path = write_config(tmp_path / "bad.toml", collection, "run", **change)
    with pytest.raises(VcsError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        load_config(path)
    assert "\n" not in str(e.value)


def test_bad_override_is_refused(tmp_path: Path, collection: Path) -> None:
    path = write_config(tmp_path / "ok.toml", collection, "run")
    with pytest.raises(VcsError, match="unknown key optim.nope"):
        load_config(path, ["optim.nope=3"])
    for text in ("foo", "=1", ".=1", "optim.=1", ".lr=1", "optim.lr"):  # a mistyped command line: exit status 2
        with pytest.raises(CommandLineError, match=f"^--set '{re.escape(text)}' is not section.key=value"):
            load_config(path, [text])
    with pytest.raises(VcsError, match="config file .* is a folder: name a .toml file"):
        load_config(tmp_path)
    assert load_config(path, ["optim.steps=7", "run.dir=elsewhere"]).run.dir == str(Path.cwd() / "elsewhere")


def test_a_key_outside_a_section_and_a_date_like_value(tmp_path: Path, collection: Path) -> None:
    """`steps = 3` above the sections is named as such (it read "unknown section [steps]"); --set run.dir=2026-12-07
    is a folder's name, not a TOML date (which failed as "expected str")."""
    path = write_config(tmp_path / "c.toml", collection, "run")
    loose = tmp_path / "loose.toml"
    loose.write_text("steps = 3\n" + path.read_text())
    with pytest.raises(VcsError, match=r"steps = 3 stands outside a section \(model, data, optim, run\)"):
        load_config(loose)
    assert load_config(path, ["run.dir=2026-12-07"]).run.dir == str(Path.cwd() / "2026-12-07")


def test_resume_weights_override_keeps_a_model_name(
    tmp_path: Path, collection: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--set model.resume_weights=NAME names a model in the weights folder (it was once made a path under the
    current directory, which no model is); a checkpoint's path is still made absolute, and a missing one named."""
    from vcscodec.train.loop import _load_start_weights

    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path / "ok.toml", collection, "run")
    name = "hitvcsnet-mhc-k0.5-n0.1-2084f228"
    assert load_config(path, [f"model.resume_weights={name}"]).model.resume_weights == name
    torch.save({"model": {"w": torch.ones(1)}}, tmp_path / "ck.pt")
    given = load_config(path, ["model.resume_weights=ck.pt"]).model.resume_weights
    assert given == str(tmp_path / "ck.pt")
    assert _load_start_weights(load_config(path, ["model.resume_weights=ck.pt"]))["w"].item() == 1
    missing = load_config(path, ["model.resume_weights=runs/gone.pt"])
    with pytest.raises(VcsError, match=r"model.resume_weights: no such file .*runs/gone.pt"):
        _load_start_weights(missing)
    # Files that hold no weights are named, not a traceback from deep inside torch or the loop.
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    torch.save([1, 2], tmp_path / "list.pt")
    (tmp_path / "folder.pt").mkdir()
    for name, message in (
        ("garbage.pt", "garbage.pt is not a readable checkpoint"),
        ("list.pt", "list.pt holds no weights"),
        ("folder.pt", "folder.pt is a folder"),
    ):
        with pytest.raises(VcsError, match=f"model.resume_weights: .*{message}"):
            _load_start_weights(load_config(path, [f"model.resume_weights={name}"]))


def test_cli_bad_config_exits_1_with_one_line(tmp_path: Path, collection: Path) -> None:
    long_dir = tmp_path / ("a-long-folder-name-" * 5) / "missing"
    path = write_config(tmp_path / "bad.toml", collection, "run", data={"train": [str(long_dir)]})
    done = subprocess.run(
        [sys.executable, "-c", "from vcscodec.cli import main; main()", "train", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vcs: error: config data.train: folder")
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_cli_failure_while_loading_leaves_stdout_empty(tmp_path: Path, collection: Path) -> None:
    """A clip that fails once the progress display has started: the error is the one line on stderr and stdout
    stays empty, as for every other command (the bar was on stdout and left an empty line there)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "bad_64x64.y4m").write_bytes(b"YUV4MPEG2 W64 H64 F25:1\nFRAME\nxx")
    path = write_config(tmp_path / "c.toml", collection, "run", data={"train": [str(tmp_path / "d")], "validation": []})
    done = subprocess.run(
        [sys.executable, "-c", "from vcscodec.cli import main; main()", "train", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vcs: error: ") and "has no frames" in done.stderr
    assert not (tmp_path / "run").exists()


# ---- data --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gop", [8, 0], ids=["chains", "single frames"])
def test_device_sampler_draws_what_the_host_sampler_draws(collection: Path, gop: int) -> None:
    clips = load_collection([collection / "data"], collection / "cache", 12, (64, 64))
    host = ChainSampler(clips, gop, 32, seed=5)
    device = DeviceChainSampler(clips, gop, 32, seed=5, device="cpu")
    for _ in range(3):
        batch = device.batch(6)
        assert batch.shape == (6, gop + 1, 32, 32) and torch.equal(torch.from_numpy(host.sample(6)), batch)
    assert host.state() == device.state()


def test_pack_holds_the_collection_and_trains(tmp_path: Path, collection: Path) -> None:
    from vcscodec.registry import sha256_file
    from vcscodec.train.cli import train_command

    config = write_config(tmp_path / "pack.toml", collection, "run", data={"pack_scale": 2, "pack_max_mb": 0.035})
    pack = tmp_path / "luma.npz"
    train_command(config, [], resume=False, quiet=True, pack=pack)
    meta = read_pack_meta(pack)
    assert pack.stat().st_size <= 0.035e6 and meta["scale"] == 2 and 9 <= meta["frame_cap"] < 18
    assert {c["name"] for c in meta["clips"]} == {"a_64x64", "b_64x64", "val_64x64", "photo"}
    assert all(c["height"] == 32 and c["frames"] <= meta["frame_cap"] for c in meta["clips"])
    # Train from the pack alone (as on a machine without PyAV): no data folder, no cache.
    from_pack = write_config(
        tmp_path / "from-pack.toml",
        collection,
        "run",
        data={"train": [str(pack)], "cache": str(tmp_path / "no")},
        optim={"steps": 2},
        run={"export": str(tmp_path / "weights")},
    )
    trainer = run_training(load_config(from_pack))
    assert trainer.step == 2 and not (tmp_path / "no").exists()
    manifest = json.loads(trainer.exported.path.with_suffix(".json").read_text())
    files = {f["name"]: f["sha256"] for f in manifest["data"]["files"]}
    assert files["a_64x64.y4m"] == sha256_file(collection / "data" / "a_64x64.y4m")
    assert manifest["data"]["packs"][0]["sha256"] == sha256_file(pack)
    # the collection's PROVENANCE.md, found above its folder when the pack was made, is cited with its hash
    provenance = sha256_file(collection / "PROVENANCE.md")
    assert meta["provenance"].endswith(f"PROVENANCE.md (sha256 {provenance})")
    assert manifest["data"]["provenance"] == meta["provenance"]


def test_spread_pack_keeps_scenes_for_keyframes_only(tmp_path: Path, collection: Path) -> None:
    """data.pack_frames = "spread": each training clip keeps frames spread over its whole length, validation clips
    their first gop + 1; whole-chain training refuses the pack, keyframe training (single frames) takes it."""
    from vcscodec.train.cli import train_command

    data = {"pack_frames": "spread", "pack_max_mb": 0.1}
    config = write_config(tmp_path / "pack.toml", collection, "run", data=data)
    pack = tmp_path / "keys.npz"
    train_command(config, [], resume=False, quiet=True, pack=pack)
    meta = read_pack_meta(pack)
    assert pack.stat().st_size <= 0.1e6 and meta["spread"] and meta["frame_cap"] < 9  # under a chain's 9 frames
    spread = {c["name"]: c["spread"] for c in meta["clips"]}  # frames missing between the kept ones
    assert spread == {"a_64x64": True, "b_64x64": True, "photo": True, "val_64x64": False}
    source = {c.name: c.frames for c in load_collection([collection / "data"], collection / "cache", 12, (64, 64))}
    packed = {c.name: c.frames for c in load_collection([pack], tmp_path / "no", 12, (64, 64))}
    a, cap = source["a_64x64"], meta["frame_cap"]
    assert np.array_equal(packed["a_64x64"], a[np.linspace(0, len(a) - 1, cap).round().astype(int)])
    assert np.array_equal(packed["val_64x64"], source["val_64x64"][:9])
    data = {"train": [str(pack)], "cache": str(tmp_path / "no")}
    chains = write_config(tmp_path / "chains.toml", collection, "run", data=data)
    with pytest.raises(VcsError, match="not consecutive"):
        load_config(chains)
    keys = write_config(tmp_path / "keys.toml", collection, "run", data=data, optim={"parts": "keyframes", "steps": 2})
    trainer = run_training(load_config(keys))
    assert trainer.step == 2 and trainer.sampler.sample(3).shape == (3, 1, 32, 32)  # single frames, not chains


# ---- training ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arch", "loss"), [("hitvcsnet", "mse"), ("hitvcsnet-mhc", "mse"), ("hitvcsnet-mhc", "frame-psnr")]
)
def test_loss_goes_down(tmp_path: Path, collection: Path, arch: str, loss: str) -> None:
    """The paper's network, and our variant whose outputs pass through the measurement projection (the loss's
    gradient then reaches Φ through (ΦΦᵀ)⁻¹ as well); trained on the paper's loss or on the mean per-frame PSNR,
    the squared error falls."""
    from vcscodec.models import hitvcsnet_loss
    from vcscodec.train.loop import build_model

    path = write_config(
        tmp_path / "fit.toml",
        collection,
        "run",
        model={"arch": arch, "init": "random"},
        optim={"steps": 24, "lr": 2e-3, "loss": loss},
        run={"validate_every": 24, "checkpoint_every": 100},
    )
    config = load_config(path)
    clips = load_collection([collection / "data"], collection / "cache", 12, (64, 64))
    batch = torch.from_numpy(ChainSampler(clips, 8, 32, seed=99).sample(4))
    torch.manual_seed(config.run.seed)  # the run's starting weights
    start = build_model(config, clips)
    trainer = run_training(config)
    with torch.no_grad():
        before = hitvcsnet_loss(start(batch), batch, 8).item()
        after = hitvcsnet_loss(trainer.model(batch), batch, 8).item()
    assert after < 0.7 * before
    losses = [r["loss"] for r in steps_of(tmp_path / "run") if "loss" in r]
    assert len(losses) == 24 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert all(v < 0 for v in losses) if loss == "frame-psnr" else all(v > 0 for v in losses)  # the loss it logs


def test_loss_takes_bf16_reconstructions_in_fp32() -> None:
    """CUDA's mse_loss backward refuses a bf16 input with an fp32 target (it failed a lent H100's first run, while
    the CPU's accepts it): every squared error must see one dtype on both sides."""
    from torch.overrides import TorchFunctionMode

    from vcscodec.models import Reconstruction, hitvcsnet_loss

    class MseDtypes(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[torch.dtype, torch.dtype]] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            if func is torch.nn.functional.mse_loss:
                self.seen.append((args[0].dtype, args[1].dtype))
            return func(*args, **(kwargs or {}))

    frames = torch.rand(2, 9, 16, 16)
    parts = {
        "key_initial": (2, 2, 1, 16, 16),
        "key": (2, 2, 1, 16, 16),
        "non_initial": (2, 1, 7, 1, 16, 16),
        "non": (2, 1, 7, 1, 16, 16),
    }
    rec = Reconstruction(**{k: torch.rand(shape).bfloat16().requires_grad_() for k, shape in parts.items()})
    with MseDtypes() as mode:
        loss = hitvcsnet_loss(rec, frames, 8)
    loss.backward()
    assert len(mode.seen) == 4 and all(a == b == torch.float32 for a, b in mode.seen), mode.seen
    assert loss.dtype == torch.float32 and all(getattr(rec, k).grad.dtype == torch.bfloat16 for k in parts)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none; a lent device has)")
def test_bf16_training_step_on_cuda(tmp_path: Path, collection: Path) -> None:
    path = write_config(
        tmp_path / "cuda.toml", collection, "run", model={"arch": "hitvcsnet-mhc"}, run={"device": "cuda", "bf16": "on"}
    )
    trainer = run_training(load_config(path))
    losses = [r["loss"] for r in steps_of(tmp_path / "run") if "loss" in r]
    assert trainer.step == 4 and len(losses) == 4 and all(np.isfinite(losses))


@pytest.mark.parametrize(
    ("parts", "trained"),
    [
        ("keyframes", ("sampling.key.", "initial_key.", "msem_key.", "msfm_key.")),
        ("keyframe-head", ("msfm_key.",)),  # leaves the MSEM features HFIM reads untouched
        ("non-keyframes", ("initial_non.", "msem_non.", "hfim.", "msfm_non.")),  # Φ and the keyframes stay
    ],
)
def test_partial_training_changes_its_parts_alone(
    tmp_path: Path, collection: Path, parts: str, trained: tuple[str, ...]
) -> None:
    from vcscodec.models import chain_targets
    from vcscodec.models.loss import reconstruction_terms
    from vcscodec.train.loop import build_model, keyframe_loss

    path = write_config(
        tmp_path / "part.toml",
        collection,
        "run",
        model={"arch": "hitvcsnet-mhc", "init": "random"},
        optim={"steps": 12, "lr": 2e-3, "parts": parts},
        run={"validate_every": 12, "checkpoint_every": 100},
    )
    config = load_config(path)
    clips = load_collection([collection / "data"], collection / "cache", 12, (64, 64))
    torch.manual_seed(config.run.seed)
    start = build_model(config, clips).state_dict()
    trainer = run_training(config)
    end = trainer.model.state_dict()
    changed = {k for k in start if not torch.equal(start[k], end[k])}
    assert changed and all(k.startswith(trained) for k in changed)
    assert all(any(k.startswith(part) for k in changed) for part in trained)
    batch = torch.from_numpy(ChainSampler(clips, 8, 32, seed=99).sample(4))

    def loss(model: torch.nn.Module) -> float:
        """The terms of the loss that ``parts`` trains, on chains the run did not see."""
        if parts != "non-keyframes":
            return keyframe_loss(model, batch).item()
        rec = model(batch)
        return reconstruction_terms(rec.non_initial, rec.non, chain_targets(batch, 8)[1]).item()

    fresh = build_model(config, clips)
    fresh.load_state_dict(start)
    with torch.no_grad():
        assert loss(trainer.model.eval()) < loss(fresh.eval())


def test_quantizer_noise_is_a_training_option(tmp_path: Path, collection: Path) -> None:
    """optim.quant_noise: training measurements carry a quantizer's error (uniform, one step wide, centred);
    evaluation and the default stay clean, and two runs that differ only in it train differently."""
    runs = {}
    for noise in (0.0, 4.0):
        path = write_config(
            tmp_path / f"q{noise:g}.toml",
            collection,
            f"run-q{noise:g}",
            model={"arch": "hitvcsnet-mhc", "init": "random"},
            optim={"steps": 3, "lr": 2e-3, "parts": "keyframes", "quant_noise": noise},
            run={"validate_every": 3, "checkpoint_every": 100},
        )
        runs[noise] = run_training(load_config(path)).model
    assert runs[0.0].measurement_noise == 0 and runs[4.0].measurement_noise == 4.0 / 255
    key = "msfm_key.out.weight"
    assert not torch.equal(runs[0.0].state_dict()[key], runs[4.0].state_dict()[key])
    model, y = runs[4.0], torch.rand(64, 16, 8, 8)
    model.train()
    error = model.quantizer_noise(y) - y
    assert 0 < error.abs().max() <= 2.0 / 255 + 1e-6 and abs(error.mean()) < 0.05 / 255
    assert error.std() == pytest.approx(4.0 / 255 / 12**0.5, rel=0.05)  # a uniform error's spread
    model.eval()
    assert torch.equal(model.quantizer_noise(y), y)


def test_orthonormal_sampling_keeps_a_trained_phi_orthonormal(tmp_path: Path, collection: Path) -> None:
    """optim.orthonormal_sampling: a trained Φk learns yet keeps orthonormal rows; the Φn it does not train stays
    exactly as it started, and without the option the same run leaves Φk's rows off unit length."""
    runs = {}
    for steps, on in ((0, False), (3, False), (3, True)):
        path = write_config(
            tmp_path / f"o{steps}{on}.toml",
            collection,
            f"run-o{steps}{on}",
            model={"arch": "hitvcsnet-mhc"},
            optim={"steps": steps, "lr": 2e-2, "parts": "keyframes", "orthonormal_sampling": on},
            run={"validate_every": 3, "checkpoint_every": 100},
        )
        runs[steps, on] = run_training(load_config(path)).model.sampling
    start, free, kept = runs[0, False], runs[3, False], runs[3, True]

    def off_orthonormal(weight: torch.Tensor) -> float:
        rows = weight.detach().double().flatten(1)
        return (rows @ rows.T - torch.eye(len(rows), dtype=torch.float64)).abs().max().item()

    assert off_orthonormal(start.key.weight) < 1e-4  # the KLT start
    assert off_orthonormal(free.key.weight) > 1e-3
    assert off_orthonormal(kept.key.weight) < 1e-5
    assert not torch.allclose(kept.key.weight, start.key.weight, atol=1e-4)
    assert torch.equal(kept.non.weight, start.non.weight)


def test_a_wider_keyframe_branch_starts_from_narrower_weights(tmp_path: Path, collection: Path) -> None:
    """model.key_channels with narrower resume_weights: the start is widened, so it decodes what they decoded, and
    a few steps of the keyframe branch then train it."""
    from vcscodec.train.loop import build_model

    narrow_run = run_training(
        load_config(write_config(tmp_path / "n.toml", collection, "run-n", model={"arch": "hitvcsnet-mhc"}))
    )
    start = tmp_path / "run-n" / CHECKPOINT
    wide = {"arch": "hitvcsnet-mhc", "key_channels": 6, "resume_weights": str(start)}
    path = write_config(tmp_path / "w.toml", collection, "run-w", model=wide, optim={"parts": "keyframes"})
    config = load_config(path)
    clips = load_collection([collection / "data"], collection / "cache", 12, (64, 64))
    model = build_model(config, clips).eval()
    assert model.msem_key.fem[0].out_channels == 6
    frames = torch.from_numpy(ChainSampler(clips, 8, 32, seed=5).sample(2))
    with torch.no_grad():
        a, b = narrow_run.model.eval()(frames), model(frames)
    assert torch.allclose(a.key, b.key, atol=1e-5) and torch.allclose(a.non, b.non, atol=1e-5)
    trained = run_training(config).model.state_dict()
    assert not torch.equal(trained["msfm_key.out.weight"], model.state_dict()["msfm_key.out.weight"])


def test_adam_eps_is_set_and_follows_the_config_on_resume(tmp_path: Path, collection: Path) -> None:
    """optim.adam_eps reaches Adam, and a resume with another value uses the new one (as it does the rate), so a
    run can be continued with a smaller ε; the two values also train differently."""
    path = write_config(tmp_path / "e.toml", collection, "run-e", optim={"steps": 2, "adam_eps": 1e-6})
    first = run_training(load_config(path))
    assert [g["eps"] for g in first.optimizer.param_groups] == [1e-6, 1e-6]
    resumed = run_training(load_config(path, ["optim.steps=3", "optim.adam_eps=1e-15"]), resume=True)
    assert resumed.step == 3 and [g["eps"] for g in resumed.optimizer.param_groups] == [1e-15, 1e-15]
    other = write_config(tmp_path / "f.toml", collection, "run-f", optim={"steps": 2, "adam_eps": 1e-15})
    key = "msfm_key.out.weight"
    assert not torch.equal(run_training(load_config(other)).model.state_dict()[key], first.model.state_dict()[key])


def test_resume_is_exact_and_reads_old_checkpoints(tmp_path: Path, collection: Path) -> None:
    whole = run_training(load_config(write_config(tmp_path / "whole.toml", collection, "whole", optim={"steps": 6})))
    half = tmp_path / "half.toml"
    write_config(half, collection, "half", optim={"steps": 3}, run={"export": str(tmp_path / "weights")})
    first = run_training(load_config(half))
    assert first.step == 3 and first.exported is not None
    # Rewrite the checkpoint as the first loop wrote it (format 1): a resume must still read it exactly.
    ckpt = tmp_path / "half" / CHECKPOINT
    state = torch.load(ckpt, weights_only=False)
    old = (
        "model",
        "optimizer",
        "scheduler",
        "step",
        "wall",
        "samples_seen",
        "sampler",
        "torch_rng",
        "config",
        "model_config",
    )
    torch.save({k: state[k] for k in old}, ckpt)
    resumed = run_training(load_config(half, ["optim.steps=6"]), resume=True)
    assert (resumed.step, resumed.samples_seen) == (whole.step, whole.samples_seen) == (6, 12)
    assert_same_state(resumed.model.state_dict(), whole.model.state_dict())
    assert steps_of(tmp_path / "half") == steps_of(tmp_path / "whole")
    # Resuming a finished run only saves and exports again.
    again = run_training(load_config(half, ["optim.steps=6"]), resume=True)
    assert again.step == 6 and again.exported.name == resumed.exported.name
    assert steps_of(tmp_path / "half") == steps_of(tmp_path / "whole")
    manifest = json.loads(again.exported.path.with_suffix(".json").read_text())
    training = manifest["training"]
    assert training["steps"] == 6 and training["samples_seen"] == 12 and training["hardware"]
    assert training["wall_seconds"] >= 0 and "val_psnr" in training and training["config"]["optim"]["steps"] == 6
    assert {f["name"] for f in manifest["data"]["files"]} == {"a_64x64.y4m", "b_64x64.y4m", "photo.png"}
    assert manifest["data"]["validation_files"][0]["name"] == "val_64x64.y4m"


def test_sigterm_checkpoints_and_resume_continues_exactly(tmp_path: Path, collection: Path) -> None:
    path = write_config(
        tmp_path / "long.toml",
        collection,
        "killed",
        optim={"steps": 100000},
        run={"checkpoint_every": 100000, "validate_every": 100000},
    )
    log = tmp_path / "killed" / LOG
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vcscodec.cli import main; main()", "train", "--config", str(path), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("loss") < 3):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert "vcs: SIGTERM received: stopping after this step (again: stop now)" in err
    stopped = torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=False)["step"]
    assert stopped >= 3
    target = stopped + 2
    resumed = run_training(load_config(path, [f"optim.steps={target}"]), resume=True)
    whole = run_training(load_config(path, [f"optim.steps={target}", f"run.dir={tmp_path / 'whole'}"]))
    assert resumed.step == whole.step == target
    assert_same_state(resumed.model.state_dict(), whole.model.state_dict())
    assert steps_of(tmp_path / "killed") == steps_of(tmp_path / "whole")


DDP_SCRIPT = """
import hashlib, os, signal, sys
from pathlib import Path
import torch.distributed as dist
import vcscodec.train.loop as loop
from vcscodec.train.config import load_config
from vcscodec.train.loop import run_training

dist.init_process_group("gloo")
config, out = Path(sys.argv[1]), Path(sys.argv[2])
rank = dist.get_rank()

def digest(trainer):
    h = hashlib.sha256()
    for name, value in trainer.model.state_dict().items():
        h.update(name.encode() + value.numpy().tobytes())
    return h.hexdigest()

step = loop.train_step
def step_then_sigterm(trainer):  # rank 1 alone is told to stop after step 2: both must stop there
    loss = step(trainer)
    if rank == 1 and trainer.step == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    return loss

loop.train_step = step_then_sigterm
first = run_training(load_config(config, ["optim.steps=100", f"run.dir={out / 'split'}"]))
loop.train_step = step
split = run_training(load_config(config, ["optim.steps=4", f"run.dir={out / 'split'}"]), resume=True)
whole = run_training(load_config(config, ["optim.steps=4", f"run.dir={out / 'whole'}"]))
result = f"{first.stopped} {first.step} {digest(split)} {digest(whole)} {split.step} {whole.step}"
(out / f"rank{rank}.txt").write_text(result)
dist.destroy_process_group()
"""


def test_torchrun_two_processes_agree(tmp_path: Path, collection: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    config = write_config(tmp_path / "ddp.toml", collection, "unused", data={"batch": 4})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(config),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [(tmp_path / f"rank{r}.txt").read_text().split() for r in range(2)]
    assert results[0] == results[1]  # both ranks stopped at the same step and hold the same weights
    stopped, stopped_at, split_hash, whole_hash, split_steps, whole_steps = results[0]
    assert (stopped, stopped_at) == ("SIGTERM", "2")
    assert split_hash == whole_hash and split_steps == whole_steps == "4"  # resume under DDP is exact too
    assert steps_of(tmp_path / "split") == steps_of(tmp_path / "whole")
    records = steps_of(tmp_path / "whole")
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]  # rank 0 alone writes the log
    assert records[-1]["samples"] == 16  # the batch of 4 is shared by the two ranks
    state = torch.load(tmp_path / "whole" / CHECKPOINT, weights_only=False)
    assert state["world_size"] == 2 and state["sampler_ranks"][0] != state["sampler_ranks"][1]


# ---- the run's folders, checkpoints and signals (found by a QA pass, twenty-seventh session) -------------------
@pytest.mark.parametrize("setting", ["run.dir", "run.export", "data.cache"])
def test_a_file_where_a_folder_goes_is_refused_before_any_decoding(
    tmp_path: Path, collection: Path, setting: str
) -> None:
    """A file in place of run.dir, run.export or data.cache: a one-line error before the data is decoded into a
    cache (here a new one, which must not appear) and before the run's folder is made."""
    (tmp_path / "plain").write_text("x")
    cache = tmp_path / "fresh-cache"
    path = write_config(tmp_path / "c.toml", collection, "r", data={"cache": str(cache)})
    where = {"run.dir": "r", "run.export": "w", "data.cache": "fresh-cache"}
    with pytest.raises(VcsError, match=f"{setting} .*plain") as e:
        run_training(load_config(path, [f"{setting}={tmp_path / 'plain'}"]))
    assert "\n" not in str(e.value)
    assert not (tmp_path / where[setting]).exists() and not cache.exists() and not (tmp_path / "r").exists()


def test_held_out_content_in_the_training_data_short_clips_and_provenance(
    tmp_path: Path, collection: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy of a validation clip under another name is refused (validation would score trained content), loose
    or in a pack; a clip shorter than a chain is named in a note; the manifest cites the PROVENANCE.md beside the
    data as the config names its folder, with its hash, or says there is none."""
    from vcscodec.registry import sha256_file
    from vcscodec.samples import gray_clip, write_clip
    from vcscodec.train.cli import train_command
    from vcscodec.train.data import find_provenance

    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(collection / "data" / "val_64x64.y4m", copies / "renamed.y4m")
    path = write_config(tmp_path / "c.toml", collection, "r", data={"train": [str(collection / "data"), str(copies)]})
    with pytest.raises(VcsError, match=r"val_64x64.y4m is held out, but .*renamed.y4m in data.train has the same"):
        run_training(load_config(path))
    pack = tmp_path / "luma.npz"  # the held-out clip in a pack, its copy loose
    train_command(write_config(tmp_path / "p.toml", collection, "p"), [], resume=False, quiet=True, pack=pack)
    path = write_config(tmp_path / "pc.toml", collection, "pc", data={"train": [str(pack), str(copies)]})
    with pytest.raises(VcsError, match=r"val_64x64.y4m is held out, but .*renamed.y4m in data.train has the same"):
        run_training(load_config(path))
    short = tmp_path / "short"
    short.mkdir()
    write_clip(short / "s_64x64.y4m", gray_clip(5, 64, 64, "coffee", 3))
    path = write_config(
        tmp_path / "s.toml",
        collection,
        "s",
        data={"train": [str(collection / "data"), str(short)]},
        optim={"steps": 1},
        run={"export": str(tmp_path / "weights"), "validate_every": 1},
    )
    trainer = run_training(load_config(path))
    assert "1 clip(s) shorter than a chain (gop + 1 = 9 frames)" in capsys.readouterr().err
    manifest = json.loads(trainer.exported.path.with_suffix(".json").read_text())
    cited = f"{collection / 'PROVENANCE.md'} (sha256 {sha256_file(collection / 'PROVENANCE.md')})"
    assert manifest["data"]["provenance"] == cited
    assert find_provenance(["data/../data"], lambda entry: collection / entry) == cited.replace(
        str(collection / "PROVENANCE.md"), "PROVENANCE.md"
    )  # named from the entry as written, whatever the working directory
    assert find_provenance([str(short)], Path) == ""


def test_a_damaged_or_foreign_checkpoint_is_refused_on_resume(tmp_path: Path, collection: Path) -> None:
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 2})
    run_training(load_config(path))
    ckpt = tmp_path / "r" / CHECKPOINT
    whole = ckpt.read_bytes()
    for damage, message in (
        (whole[:5000], "is not a readable checkpoint"),
        (b"", "is not a readable checkpoint"),
        (None, "is not a vcs train checkpoint"),
    ):
        if damage is None:
            torch.save(torch.load(ckpt.with_suffix(".keep"), weights_only=False)["model"], ckpt)
        else:
            ckpt.with_suffix(".keep").write_bytes(whole)
            ckpt.write_bytes(damage)
        with pytest.raises(VcsError, match=message):
            run_training(load_config(path, ["optim.steps=3"]), resume=True)
    # edited by hand: a counter or Adam's state missing, a tensor of another shape
    state = torch.load(ckpt.with_suffix(".keep"), weights_only=False)
    for edit, message in (
        (lambda s: s.pop("samples_seen"), r"is damaged or not vcs train's \(missing 'samples_seen'\)"),
        (lambda s: s["optimizer"].pop("state"), r"is damaged or not vcs train's \(missing 'state'\)"),
        (
            lambda s: s["model"].update({k: v[:1] for k, v in list(s["model"].items())[:1]}),
            r"holds another network than \[model\] describes: size mismatch for [\w.]+: copying a param",
        ),
    ):
        edited = copy.deepcopy(state)
        edit(edited)
        torch.save(edited, ckpt)
        with pytest.raises(VcsError, match=message) as e:
            run_training(load_config(path, ["optim.steps=3"]), resume=True)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("model.gop=4", r"another network than \[model\] describes: gop 8 ≠ 4"),
        ("model.arch=hitvcsnet-mh", "arch 'hitvcsnet-tr' ≠ 'hitvcsnet-mh'"),
        ("optim.parts=keyframes", "trained optim.parts = all, not keyframes"),
    ],
)
def test_resume_with_another_network_or_parts_is_refused(
    tmp_path: Path, collection: Path, change: str, message: str
) -> None:
    """The checkpoint's network and trained parts are its own: a resume that names others is a one-line error
    (it once went on silently with another gop, or crashed in Adam's state for other parts)."""
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 2})
    run_training(load_config(path))
    before = (tmp_path / "r" / CHECKPOINT).read_bytes()
    with pytest.raises(VcsError, match=message):
        run_training(load_config(path, ["optim.steps=3", change]), resume=True)
    assert (tmp_path / "r" / CHECKPOINT).read_bytes() == before


def test_a_run_dir_in_use_is_refused(tmp_path: Path, collection: Path) -> None:
    """Two runs in one folder would interleave their logs: the folder is locked while a run holds it."""
    from vcscodec.train.loop import hold_run_dir

    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 1})
    held = hold_run_dir(tmp_path / "r")
    try:
        with pytest.raises(VcsError, match="is in use by another vcs train"):
            run_training(load_config(path))
    finally:
        os.close(held)
    assert run_training(load_config(path)).step == 1  # free again once the holder lets go


def test_the_same_signal_twice_hands_over_to_the_commands_handler() -> None:
    """The second SIGTERM stops at once through the handler that was there before (the CLI's, which exits 143
    and says so); it was a bare KeyboardInterrupt, which the CLI turned into a silent 130."""
    import signal

    from vcscodec.train.loop import StopRequest

    class Handed(Exception):
        pass

    def previous(signum: int, frame: object) -> None:
        raise Handed(signum)

    old = signal.signal(signal.SIGTERM, previous)
    stop = StopRequest()
    stop.install()
    try:
        stop._handle(signal.SIGTERM, None)
        assert stop.reason == "SIGTERM"
        with pytest.raises(Handed):
            stop._handle(signal.SIGTERM, None)
    finally:
        stop.restore()
        signal.signal(signal.SIGTERM, old)


def test_a_flipped_byte_in_a_checkpoint_is_refused(tmp_path: Path, collection: Path) -> None:
    """torch.load skips the zip archive's CRCs: a damaged tensor loaded as a wrong weight, and the run went on (to a
    NaN loss). The CRCs are checked, on a resume and for model.resume_weights, before any data is read."""
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 2})
    run_training(load_config(path))
    ckpt = tmp_path / "r" / CHECKPOINT
    data = bytearray(ckpt.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    ckpt.write_bytes(bytes(data))
    with pytest.raises(VcsError, match=r"checkpoint.pt is damaged \(CRC mismatch in .*\): not used$"):
        run_training(load_config(path, ["optim.steps=3"]), resume=True)
    fresh = write_config(tmp_path / "f.toml", collection, "f", model={"resume_weights": str(ckpt)})
    with pytest.raises(VcsError, match=r"^model.resume_weights: .*checkpoint.pt is damaged \(CRC mismatch"):
        run_training(load_config(fresh))


def test_what_a_run_starts_from_is_checked_before_the_data_is_read(tmp_path: Path, collection: Path) -> None:
    """A resume into another network, or start weights that are not there, fails before the luma cache is built
    (with the real data that is minutes of decoding)."""
    cache = tmp_path / "cache"
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 2})
    run_training(load_config(path))
    for overrides, resume, message in (
        (["model.gop=4"], True, "holds another network than"),
        (["model.resume_weights=nope.pt"], False, "no such file"),
        (["model.resume_weights=hitvcsnet-nosuchmodel"], False, "not in"),
    ):
        run = "r" if resume else "new"
        with pytest.raises(VcsError, match=message):
            run_training(load_config(path, [*overrides, f"data.cache={cache}", f"run.dir={tmp_path / run}"]), resume)
        assert not cache.exists() or not any(cache.iterdir()), overrides


def test_a_diverged_run_stops_and_saves_nothing_after_it(
    tmp_path: Path, collection: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN loss once went on to the end, checkpointed NaN weights and exported them (a manifest with NaN in it,
    which is not JSON) with exit 0; now it stops at that step, keeps the last good checkpoint and exports nothing."""
    import vcscodec.train.loop as loop

    step = loop.train_step

    def diverging(trainer):
        loss = step(trainer)
        return loss * float("nan") if trainer.step == 3 else loss

    monkeypatch.setattr(loop, "train_step", diverging)
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 4}, run={"export": str(tmp_path / "x")})
    with pytest.raises(VcsError, match=r"^the loss is nan at step 3: training diverged .*step 2's checkpoint is kept"):
        run_training(load_config(path))
    assert torch.load(tmp_path / "r" / CHECKPOINT, weights_only=False)["step"] == 2
    assert not (tmp_path / "x").exists()


def test_a_checkpoint_or_export_that_cannot_be_written_leaves_nothing_half_written(
    tmp_path: Path, collection: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or a second Ctrl-C) in the middle of a save: one line, the temporary file deleted and the last
    whole checkpoint kept; an export whose manifest cannot be written leaves no weights without one."""
    import vcscodec.registry as registry
    import vcscodec.train.loop as loop

    save = torch.save
    calls = []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:  # the second checkpoint: half of it, then the disk is full
            Path(f).write_bytes(b"PK" * 1000)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 5222848 vs 5222736")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(loop.torch, "save", full_disk)
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 4})
    with pytest.raises(
        VcsError, match=r"^cannot write the checkpoint .*checkpoint.pt \(.*unexpected pos.*\): the one of step 2"
    ):
        run_training(load_config(path))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [CHECKPOINT, LOG]
    assert torch.load(tmp_path / "r" / CHECKPOINT, weights_only=False)["step"] == 2
    monkeypatch.setattr(loop.torch, "save", save)

    def no_space(path, manifest, check=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry, "_write_manifest", no_space)
    exported = write_config(
        tmp_path / "e.toml", collection, "e", optim={"steps": 1}, run={"export": str(tmp_path / "x")}
    )
    with pytest.raises(VcsError, match=r"^export to .*x failed \(No space left on device\)"):
        run_training(load_config(exported))
    assert list((tmp_path / "x").iterdir()) == []


def test_a_damaged_luma_cache_is_decoded_again(tmp_path: Path, collection: Path, capfd: pytest.CaptureFixture) -> None:
    """A cached clip cut short (a full disk) or emptied crashed with a traceback (mmap length) or a bare "aborted";
    now it is decoded again, with a note."""
    cache = tmp_path / "cache"
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 1}, data={"cache": str(cache)})
    run_training(load_config(path))
    cached = sorted(cache.glob("*.npy"))
    whole = [f.read_bytes() for f in cached]
    cached[0].write_bytes(whole[0][:1000])
    cached[1].write_bytes(b"")
    capfd.readouterr()
    run_training(load_config(path, [f"run.dir={tmp_path / 'again'}"]))
    said = capfd.readouterr().err
    assert said.count("are damaged") == 2 and "decoding the clip again" in said
    assert [f.read_bytes() for f in cached] == whole


def test_a_stop_at_once_says_which_checkpoint_is_kept(
    tmp_path: Path, collection: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """The same signal twice stops inside a step (or a save): the run says where it can be continued from."""
    import vcscodec.train.loop as loop

    step = loop.train_step

    def interrupted(trainer):
        if trainer.step == 2:
            raise KeyboardInterrupt
        return step(trainer)

    monkeypatch.setattr(loop, "train_step", interrupted)
    path = write_config(tmp_path / "c.toml", collection, "r", optim={"steps": 4})
    capfd.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(path))
    said = capfd.readouterr().err
    assert f"vcs: stopped at once at step 2; step 2's checkpoint is in {tmp_path / 'r'} (--resume)" in said
