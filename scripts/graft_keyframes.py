"""Put a trained keyframe branch (or, with --part, non-keyframe network) into another model with the same Φ.

    python scripts/graft_keyframes.py --branch-from runs/hitvcsnet-mh-keyframes/checkpoint.pt [MORE.pt ...] \
        --into hitvcsnet-mh-k0.5-n0.01 --export weights [--default]

A keyframe is rebuilt from its own measurements alone (Sk, the initial reconstruction, MSEM and MSFM of the
keyframe branch), so a branch trained with ``optim.parts = "keyframes"`` on one model fits any model whose Φk is
the same (within 1e-3: the two shipped ratios share it); the branch brings its own initial reconstruction. The rest
of ``--into`` is kept. The export's manifest names both sources, with their sha256.

A branch trained wider (``model.key_channels``, as its checkpoints' config says) goes into a copy of ``--into``
widened to it (``models.init.load_widened``): the export has the wider keyframe branch and the rest unchanged.

A branch trained with a learned Φk (``optim.orthonormal_sampling``, every checkpoint's config says so) brings its
own Φk instead: the export is a new encoder, and its manifest says so. Averaged, that Φk is put back onto
orthonormal rows.

Several checkpoints of one run are averaged tensor by tensor (a model soup) before grafting: three sessions wrote
throwaway scripts for that (docs/training.md); their averages never beat the best single checkpoint, so this is for
measuring, not a recipe.

``--part non-keyframes`` grafts the other half instead: the non-keyframe network of a run with
``optim.parts = "non-keyframes"`` (its initial reconstruction, MSEM, HFIM and MSFM), into a model with the same Φn;
HFIM reads the keyframe branch's features, so it fits best the keyframe branch it was trained beside.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from vcscodec.models import HITVCSNet
from vcscodec.models.init import load_widened
from vcscodec.registry import find_model, save_model, sha256_file
from vcscodec.train.loop import TRAINED_PARTS, orthonormal_rows

# --part: the trained half grafted, and the name the export's manifest gives it.
PARTS = {"keyframes": "keyframe_branch", "non-keyframes": "non_keyframe_network"}


def load_checkpoint(path: Path) -> dict:
    """A checkpoint.pt, a bare state dict, or a slim branch.pt whose "shards" (files beside it, as
    scripts/device_keyframes.sh writes them for a branch over the device tool's 16 MiB a file) hold more weights."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    for name in checkpoint.get("shards", []):
        shard = path.parent / name
        if not shard.is_file():
            raise SystemExit(f"graft_keyframes: {path} names a shard {name} that is not beside it")
        checkpoint["model"].update(torch.load(shard, map_location="cpu", weights_only=False)["model"])
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--branch-from", type=Path, nargs="+", required=True, help="checkpoint.pt or state dict; several: averaged"
    )
    parser.add_argument("--into", required=True, help="a model name in the weights folder")
    parser.add_argument("--export", type=Path, required=True, help="weights folder to write the new model to")
    parser.add_argument("--default", action="store_true", help="mark it the default model of its ratio")
    parser.add_argument(
        "--part", choices=PARTS, default="keyframes", help="which half to graft (default: the keyframe branch)"
    )
    args = parser.parse_args()
    label = PARTS[args.part]

    checkpoints = [load_checkpoint(path) for path in args.branch_from]
    states = [c.get("model", c) for c in checkpoints]  # a checkpoint.pt, or a bare state dict (weights/master)
    branch = {
        k: torch.stack([s[k].float() for s in states]).mean(0)
        for k in states[0]
        if k.startswith(TRAINED_PARTS[args.part])
    }
    if not branch:
        raise SystemExit(f"graft_keyframes: {args.branch_from[0]} holds no {args.part} weights")
    new_sampling = args.part == "keyframes" and all(
        c.get("config", {}).get("optim", {}).get("orthonormal_sampling") for c in checkpoints
    )
    card = find_model(args.into)
    model = card.load()
    # A wider branch (model.key_channels) goes into ``--into`` widened so that its own parts compute what they did.
    width = {c.get("config", {}).get("model", {}).get("key_channels", 0) for c in checkpoints}
    if len(width) > 1:
        raise SystemExit(f"graft_keyframes: the checkpoints' keyframe branches differ in width ({sorted(width)})")
    key_channels = width.pop()
    if key_channels != model.config.key_channels:
        wide = HITVCSNet(model.config.replace(key_channels=key_channels))
        try:
            load_widened(wide, model.state_dict())
        except ValueError as e:
            raise SystemExit(f"graft_keyframes: {card.name} does not widen to the branch's width: {e}") from None
        model = wide
    state = model.state_dict()
    # Φn must be the one the non-keyframe network was trained on (that run kept it frozen): the encoder is kept.
    for k in (k for k in states[-1] if args.part == "non-keyframes" and k.startswith("sampling.non.")):
        if not torch.allclose(states[-1][k].float(), state[k], atol=1e-3, rtol=0):
            raise SystemExit(f"graft_keyframes: {k} differs between the checkpoint and {card.name}: not the same Φn")
    # Φk must be the one the branch was trained on (the encoder does not change), unless the branch learned it.
    # The initial reconstruction is decoder-side and comes with the branch: whole-chain training may have moved it
    # differently per ratio.
    for k in (k for k in branch if k.startswith("sampling.key.")):
        if new_sampling:
            branch[k] = orthonormal_rows(branch[k])
        elif not torch.allclose(branch[k].float(), state[k], atol=1e-3, rtol=0):
            raise SystemExit(f"graft_keyframes: {k} differs between the branch and {card.name}: not the same Φk")
    state.update(branch)
    model.load_state_dict(state)
    info = copy.deepcopy({k: v for k, v in card.manifest.items() if k in ("training", "data")})
    digests = [sha256_file(path) for path in args.branch_from]
    info["grafted"] = {
        f"{label}_from": str(args.branch_from[-1]),
        f"{label}_sha256": digests[-1],
        f"{label}_steps": max(int(c.get("step", 0)) for c in checkpoints),
        "rest_from": card.name,
        "rest_sha256": card.sha256,
        "sampling_key_from": "branch (learned)" if new_sampling else card.name,
    }
    shards = [args.branch_from[-1].parent / name for name in checkpoints[-1].get("shards", [])]
    if shards:
        info["grafted"][f"{label}_shards"] = [{"path": str(s), "sha256": sha256_file(s)} for s in shards]
    if len(checkpoints) > 1:
        info["grafted"][f"{label}_averaged"] = [
            {"path": str(path), "sha256": digest, "steps": int(c.get("step", 0))}
            for path, digest, c in zip(args.branch_from, digests, checkpoints, strict=True)
        ]
    out = save_model(model, args.export, info, default=args.default)
    print(f"wrote {out.name} ({out.path})")


if __name__ == "__main__":
    main()
