"""The maintenance scripts in scripts/ still fit the package: every name they import from vcscodec exists (a
refactor of the package would otherwise break them silently, as none runs in the suite), and each parses its
arguments (--help)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))


def vcscodec_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from vcscodec… import name` in the file, at any depth (lazy imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "vcscodec":
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_there_are_scripts_to_check() -> None:
    assert len(SCRIPTS) >= 5 and all(vcscodec_imports(s) for s in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_exist(script: Path) -> None:
    for module, name in vcscodec_imports(script):
        exists = hasattr(importlib.import_module(module), name) or importlib.util.find_spec(f"{module}.{name}")
        assert exists, f"{script.name}: from {module} import {name}"  # a name, or a submodule


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=script.parent)
    assert done.returncode == 0 and "usage:" in done.stdout, done.stderr


def test_graft_averages_several_branches_and_keeps_the_rest(tiny_weights: Path, tmp_path: Path) -> None:
    import os
    import shutil

    import torch

    from vcscodec.registry import default_model, find_model

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    env = {**os.environ, "VCS_WEIGHTS": str(folder)}
    into = default_model(0.1, folder)
    state = into.load().state_dict()
    # Two "checkpoints" whose keyframe branch is shifted by +1 and +3: the average must be +2, the rest untouched.
    paths = []
    for i, shift in enumerate((1.0, 3.0)):
        model = {k: v + shift if k.startswith(("msfm_key.", "msem_key.")) else v for k, v in state.items()}
        paths.append(tmp_path / f"ck{i}.pt")
        torch.save({"model": model, "step": 100 * (i + 1)}, paths[-1])
    script = SCRIPTS[0].parent / "graft_keyframes.py"
    args = ["--branch-from", *map(str, paths), "--into", into.name, "--export", str(folder)]
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    name = done.stdout.split()[1]
    grafted = find_model(name, folder)
    out = grafted.load().state_dict()
    for k, v in state.items():
        expected = v + 2.0 if k.startswith(("msfm_key.", "msem_key.")) else v
        assert torch.equal(out[k], expected.half().float()), k  # weights ship in half precision
    info = grafted.manifest["grafted"]
    assert info["keyframe_branch_steps"] == 200 and [a["steps"] for a in info["keyframe_branch_averaged"]] == [100, 200]


def test_graft_part_non_keyframes_takes_that_network_and_keeps_the_encoder(tiny_weights: Path, tmp_path: Path) -> None:
    """--part non-keyframes: the checkpoint's non-keyframe network goes in, the keyframe branch stays the target's,
    and a checkpoint measured with another Φn is refused (the encoder must not change)."""
    import os
    import shutil

    import torch

    from vcscodec.registry import default_model, find_model
    from vcscodec.train.loop import TRAINED_PARTS

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    env = {**os.environ, "VCS_WEIGHTS": str(folder)}
    into = default_model(0.1, folder)
    state = into.load().state_dict()
    trained = TRAINED_PARTS["non-keyframes"]
    shifted = {k: v + 1.0 if k.startswith(trained + TRAINED_PARTS["keyframes"]) else v for k, v in state.items()}
    other_phi = {**state, "sampling.non.weight": state["sampling.non.weight"] + 0.1}
    script = SCRIPTS[0].parent / "graft_keyframes.py"
    done = {}
    for name, model in (("net", shifted), ("phi", other_phi)):
        torch.save({"model": model, "step": 40}, tmp_path / f"{name}.pt")
        args = ["--part", "non-keyframes", "--branch-from", str(tmp_path / f"{name}.pt"), "--into", into.name]
        run = [sys.executable, str(script), *args, "--export", str(folder)]
        done[name] = subprocess.run(run, capture_output=True, text=True, env=env)
    assert done["net"].returncode == 0, done["net"].stderr
    grafted = find_model(done["net"].stdout.split()[1], folder)
    out = grafted.load().state_dict()
    for k, v in state.items():
        expected = v + 1.0 if k.startswith(trained) else v  # the keyframe branch's +1 stays behind
        assert torch.equal(out[k], expected.half().float()), k
    assert grafted.manifest["grafted"]["non_keyframe_network_steps"] == 40
    assert done["phi"].returncode != 0 and "not the same Φn" in done["phi"].stderr


def test_graft_takes_a_learned_phi_only_from_a_branch_that_learned_it(tiny_weights: Path, tmp_path: Path) -> None:
    """A branch whose Φk differs is refused, unless its checkpoint says it learned Φk (optim.orthonormal_sampling):
    then its Φk, put back onto orthonormal rows, becomes the export's encoder."""
    import os
    import shutil

    import torch

    from vcscodec.registry import default_model, find_model
    from vcscodec.train.loop import orthonormal_rows

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    env = {**os.environ, "VCS_WEIGHTS": str(folder)}
    into = default_model(0.1, folder)
    state = into.load().state_dict()
    torch.manual_seed(0)
    learned = orthonormal_rows(torch.randn_like(state["sampling.key.weight"]))  # another Φk, orthonormal rows
    script = SCRIPTS[0].parent / "graft_keyframes.py"
    outcome = {}
    for said in (False, True):
        path = tmp_path / f"ck{said}.pt"
        config = {"optim": {"orthonormal_sampling": said}}
        torch.save({"model": {**state, "sampling.key.weight": learned}, "step": 5, "config": config}, path)
        args = ["--branch-from", str(path), "--into", into.name, "--export", str(folder)]
        outcome[said] = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env)
    assert outcome[False].returncode != 0 and "not the same Φk" in outcome[False].stderr
    assert outcome[True].returncode == 0, outcome[True].stderr
    grafted = find_model(outcome[True].stdout.split()[1], folder)
    assert torch.allclose(grafted.load().state_dict()["sampling.key.weight"], learned, atol=1e-3, rtol=0)
    assert grafted.manifest["grafted"]["sampling_key_from"] == "branch (learned)"


def test_device_keyframes_trains_the_branch_and_leaves_a_slim_checkpoint(tmp_path: Path) -> None:
    """scripts/device_keyframes.sh end to end on the CPU, from the committed master, on a tiny spread pack: it
    leaves the log and branch.pt (the keyframe branch's weights, step and config, no optimizer state), split into
    shards under SHARD_MB, which graft_keyframes.py puts together into a shipped model."""
    import os
    import shutil

    import numpy as np
    import torch

    from vcscodec.registry import default_model, find_model
    from vcscodec.train.data import Clip, write_pack
    from vcscodec.train.loop import TRAINED_PARTS

    rng = np.random.default_rng(3)
    clips = [
        Clip(name, Path(f"{name}.y4m"), "", rng.integers(0, 256, (t, 64, 64), dtype=np.uint8), f"{i:064x}")
        for i, (name, t) in enumerate((("a", 30), ("b", 20), ("val", 12)))
    ]
    pack = tmp_path / "keys.npz"
    write_pack(clips, pack, max_mb=0.06, spread=True, contiguous=frozenset({"val"}))
    settings = {
        "data.train": f'["{pack}"]',
        "data.validation": '["val"]',
        "data.crop": 64,
        "data.validation_crop": 64,
        "data.batch": 1,
        "data.validation_chains": 1,
        "data.on_device": "false",
        "optim.steps": 3,
        "run.validate_every": 2,
        "run.threads": 1,
        # the GPU config's bf16 is emulated on a CPU without bf16 arithmetic: 178 s for this test on an AVX2 CPU
        "run.bf16": '"off"',
    }
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "DEVICE_TRAIN_SET": " ".join(f"--set {k}={v}" for k, v in settings.items()),
        "SHARD_MB": "5",  # the 32-channel branch is 8.7 MiB in fp32: two shards
    }
    script = SCRIPTS[0].parent / "device_keyframes.sh"
    done = subprocess.run(["bash", str(script), "120"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "stopped at step 3" in done.stdout, done.stdout + done.stderr
    run = tmp_path / "out" / "keys"
    assert sorted(p.name for p in run.iterdir()) == ["branch-1.pt", "branch.pt", "log.jsonl"]
    assert max(p.stat().st_size for p in run.glob("branch*.pt")) < 5.1 * 2**20
    branch = torch.load(run / "branch.pt", weights_only=False)
    assert branch["step"] == 3 and "optimizer" not in branch and branch["config"]["optim"]["parts"] == "keyframes"
    assert branch["shards"] == ["branch-1.pt"]
    weights = {**branch["model"], **torch.load(run / "branch-1.pt", weights_only=False)["model"]}
    assert all(k.startswith(TRAINED_PARTS["keyframes"]) for k in weights)

    # graft_keyframes.py reads the shards back: the export holds every tensor of the trained branch.
    shipped = default_model(0.1)
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in (shipped.path, shipped.path.with_suffix(".json")):
        shutil.copy(path, folder)
    env = {**os.environ, "VCS_WEIGHTS": str(folder)}
    graft = SCRIPTS[0].parent / "graft_keyframes.py"
    args = ["--branch-from", str(run / "branch.pt"), "--into", shipped.path.stem, "--export", str(folder)]
    done = subprocess.run([sys.executable, str(graft), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    grafted = find_model(done.stdout.split()[1], folder)
    state = grafted.load().state_dict()
    assert sorted(weights) == sorted(k for k in state if k.startswith(TRAINED_PARTS["keyframes"]))
    assert all(torch.equal(state[k], v.half().float()) for k, v in weights.items())  # weights ship in half
    assert [s["path"] for s in grafted.manifest["grafted"]["keyframe_branch_shards"]] == [str(run / "branch-1.pt")]
    (run / "branch-1.pt").unlink()
    done = subprocess.run([sys.executable, str(graft), *args], capture_output=True, text=True, env=env)
    assert done.returncode != 0 and "names a shard branch-1.pt that is not beside it" in done.stderr, done.stderr


def test_graft_widens_the_rest_of_the_model_for_a_wider_branch(tiny_weights: Path, tmp_path: Path) -> None:
    """A branch trained at model.key_channels = 12 goes into the 8-channel model widened: the export has the wider
    branch, and decodes as the model it came from while the branch is still the widened one."""
    import os
    import shutil

    import torch

    from vcscodec.models import HITVCSNet
    from vcscodec.models.init import load_widened
    from vcscodec.registry import default_model, find_model

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    env = {**os.environ, "VCS_WEIGHTS": str(folder)}
    into = default_model(0.1, folder)
    narrow = into.load()
    wide = HITVCSNet(narrow.config.replace(key_channels=12))
    load_widened(wide, narrow.state_dict())
    path = tmp_path / "wide.pt"
    torch.save({"model": wide.state_dict(), "step": 7, "config": {"model": {"key_channels": 12}}}, path)
    script = SCRIPTS[0].parent / "graft_keyframes.py"
    args = ["--branch-from", str(path), "--into", into.name, "--export", str(folder)]
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    grafted = find_model(done.stdout.split()[1], folder)
    assert grafted.config["key_channels"] == 12 and grafted.config["channels"] == 8
    model = grafted.load()
    assert model.msfm_key.out.weight.shape == (1, 12, 3, 3)
    frames = torch.rand(1, 9, 64, 64)
    with torch.no_grad():
        a, b = narrow(frames), model(frames)
    assert torch.allclose(a.key, b.key, atol=1e-5) and torch.allclose(a.non, b.non, atol=1e-5)
