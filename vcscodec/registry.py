"""Named, hashed model weights (the model zoo).

A model is two files in the weights folder:
- ``<name>.npz``: the state dict in half precision, one array per tensor (numpy's format, so the encoder can read
  the sampling matrices without importing torch);
- ``<name>.json``: the manifest: name, architecture, config, αk, αn, sha256 of the ``.npz``, training data and runs.

Names are ``<arch>-k<αk>-n<αn>-<sha256[:8]>`` as CompressAI's zoo names its files: a name identifies the weights,
never a position in a list, so a ``.vcs`` file can say exactly which model decodes it.
The weights folder is ``$VCS_WEIGHTS`` if set, else the copy of ``weights/`` a wheel installs inside the package
(``vcscodec/_weights``), else ``weights/`` beside the package (a source tree, an editable install).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import VcsError
from .output import replaced_whole

if TYPE_CHECKING:  # torch stays out of the encoder's imports
    import torch

    from .models import HITVCSNet, ModelConfig

WEIGHTS_ENV = "VCS_WEIGHTS"
DEFAULT_RATIO = 0.1  # the non-keyframe ratio αn that `vcs encode` uses unless told


BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "_weights"
"""Where a wheel (any non-editable install) carries the shipped models: pyproject.toml maps ``weights/`` there."""


def weights_dir() -> Path:
    """``$VCS_WEIGHTS`` if set; else the models installed with the package from a wheel; else ``weights/`` beside
    the package (a source tree or an editable install)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    # The installed copy comes first: beside an installed package is site-packages, whose weights/ is not ours.
    return BUNDLED_WEIGHTS if BUNDLED_WEIGHTS.is_dir() else Path(__file__).resolve().parent.parent / "weights"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def model_name(arch: str, alpha_k: float, alpha_n: float, sha256: str) -> str:
    return f"{arch}-k{alpha_k:g}-n{alpha_n:g}-{sha256[:8]}"


@dataclass
class ModelCard:
    """A manifest read from the weights folder."""

    name: str
    arch: str
    config: dict[str, Any]
    alpha_k: float
    alpha_n: float
    sha256: str
    path: Path  # the .npz
    default: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)

    def training_steps(self, short: bool = False) -> str:
        """The steps of the run that made these weights, plus those of a keyframe branch grafted into them
        (``scripts/graft_keyframes.py``), in ``steps_phrase``'s words."""
        return steps_phrase(*self.step_counts(), short)

    def step_counts(self) -> tuple[int | None, int | None]:
        """The manifest's training steps and those of a keyframe branch grafted in; None where it does not say."""
        grafted = self.manifest.get("grafted", {}).get("keyframe_branch_steps")
        return self.manifest.get("training", {}).get("steps"), grafted

    def verify(self) -> None:
        """Check the weights file against the manifest's sha256 (a renamed or damaged file is refused)."""
        if not self.path.is_file():
            raise VcsError(f"weights file {self.path} of model {self.name} is missing")
        actual = sha256_file(self.path)
        if actual != self.sha256:
            raise VcsError(f"weights file {self.path.name} does not match its manifest's sha256 (damaged?)")

    def arrays(self) -> dict[str, np.ndarray]:
        self.verify()
        with np.load(self.path) as data:
            return {k: data[k] for k in data.files}

    def sampling_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """Φk (m_k, B²) and Φn (m_n, B²) as float64; row i measures a block scanned row-major."""
        arrays = self.arrays()
        phi_k = arrays["sampling.key.weight"].astype(np.float64)
        phi_n = arrays["sampling.non.weight"].astype(np.float64)
        return phi_k.reshape(phi_k.shape[0], -1), phi_n.reshape(phi_n.shape[0], -1)

    def model_config(self) -> ModelConfig:
        from .models import ModelConfig

        return ModelConfig.from_dict(self.config)

    def load(self, device: str | torch.device = "cpu") -> HITVCSNet:
        """The network with these weights, in float32, in eval mode, on ``device`` (``auto``, ``cpu``, ``cuda`` as
        the command line takes them, or any torch device: ``cuda:1``, a ``torch.device``)."""
        import torch

        from .hardware import DEVICES, pick_device
        from .models import HITVCSNet

        if isinstance(device, str) and device in DEVICES:
            device = pick_device(device, option="device")
        else:
            try:
                device = torch.device(device)
            except (RuntimeError, TypeError):
                raise VcsError(f"device {device!r} is not auto, cpu, cuda or another torch device") from None
            if device.type == "cuda" and not torch.cuda.is_available():
                raise VcsError(f"device {device}: no CUDA device is available")

        model = HITVCSNet(self.model_config())
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in self.arrays().items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise VcsError(
                f"weights of {self.name} do not fit its architecture ({len(missing)} missing, "
                f"{len(unexpected)} unexpected tensors)"
            )
        return model.to(device).eval()


def steps_phrase(steps: int | None, keyframe_branch_steps: int | None, short: bool = False) -> str:
    """A model's training steps in words: '534 (+2919 keyframe branch)', short '534+2919'; '' when not known."""
    if steps is None or not keyframe_branch_steps:
        return "" if steps is None else str(steps)
    return f"{steps}+{keyframe_branch_steps}" if short else f"{steps} (+{keyframe_branch_steps} keyframe branch)"


def _read_manifest(path: Path) -> ModelCard:
    try:
        m = json.loads(path.read_text())
        return ModelCard(
            name=m["name"],
            arch=m["arch"],
            config=m["config"],
            alpha_k=float(m["alpha_k"]),
            alpha_n=float(m["alpha_n"]),
            sha256=m["sha256"],
            path=path.parent / m["file"],
            default=bool(m.get("default", False)),
            manifest=m,
        )
    except KeyError as e:  # a stray .json in the folder (a bench report, say), or a damaged manifest
        raise VcsError(f"{path} is not a model manifest: it has no field {e}") from None
    except (OSError, ValueError, TypeError) as e:
        raise VcsError(f"model manifest {path} is unreadable: {e}") from None


def scan_models(folder: str | os.PathLike[str] | None = None) -> tuple[list[ModelCard], dict[Path, str]]:
    """The models in ``folder`` and, for each other ``.json`` there, why it was skipped: a stray file (a bench
    report) or one damaged manifest must not stop every model in the folder from being used."""
    folder = Path(folder) if folder is not None else weights_dir()
    if not folder.is_dir():
        return [], {}
    cards: list[ModelCard] = []
    skipped: dict[Path, str] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            cards.append(_read_manifest(path))
        except VcsError as e:
            skipped[path] = str(e)
    return cards, skipped


def list_models(folder: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """The models in ``folder`` (default: the weights folder); unreadable manifests are left out (`scan_models`)."""
    return scan_models(folder)[0]


def installed_models(folder: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """`list_models`, but none at all is an error that says why: a broken install (`pip install .` copies no
    weights) or a mistyped $VCS_WEIGHTS would otherwise surface as "no model for ratio 0.1" or an empty table."""
    cards, skipped = scan_models(folder)
    if not cards:
        folder = Path(folder) if folder is not None else weights_dir()
        if not folder.exists():
            why = "no such folder"
        elif not folder.is_dir():
            why = "not a folder"
        elif skipped:
            first = next(iter(skipped.values()))
            why = first if len(skipped) == 1 else f"{len(skipped)} unreadable manifests, the first: {first}"
        else:
            why = "no .json manifests in it"
        raise VcsError(f"no models in {folder} ({why}): set ${WEIGHTS_ENV} to the folder that holds them")
    return cards


def skipped_note(folder: str | os.PathLike[str] | None = None) -> str:
    """For an error that says a model is not in the folder: '' or ' (a manifest there was skipped: …)', since the
    model looked for may be the one whose manifest is damaged."""
    skipped = scan_models(folder)[1]
    if len(skipped) == 1:
        return f" (a manifest there was skipped: {next(iter(skipped.values()))})"
    if skipped:  # their names, which say which model each was; `vcs models` says what is wrong with each
        names = ", ".join(p.name for p in skipped)
        return f" ({len(skipped)} manifests there were skipped: {names}; `vcs models` says why)"
    return ""


def find_model(
    name: str,
    folder: str | os.PathLike[str] | None = None,
    fits: Callable[[ModelCard], bool] | None = None,
    fitting: str = "",
) -> ModelCard:
    """A model by its full name or an unambiguous prefix of it. ``fits``: what the caller can use (a file's
    weights, a ratio), which settles a prefix that several models share when one of them fits; ``fitting`` says
    what it is, in the error that lists those that fit when several do."""
    if not isinstance(name, str):
        raise VcsError(f"a model name must be a str, not {type(name).__name__} {name!r}")
    cards = installed_models(folder)
    exact = [c for c in cards if c.name == name]
    matches = exact or [c for c in cards if c.name.startswith(name)]
    usable = [c for c in matches if fits(c)] if fits is not None and len(matches) > 1 else []
    if len(matches) == 1 or len(usable) == 1:
        return (usable or matches)[0]
    if len(usable) > 1:
        names = _some_names(usable)
        raise VcsError(f"model name {name!r} is ambiguous: {len(usable)} models for {fitting} start so: {names}")
    if fits is not None and len(matches) > 1:  # not ambiguous: none of them would do
        names = _some_names(matches)
        raise VcsError(f"no model whose name starts with {name!r} is for {fitting}; those that do: {names}")
    if not matches:
        # Close names if any (a typo), else the count: the whole list is `vcs models`, not a one-line error.
        close = difflib.get_close_matches(name, [c.name for c in cards], n=3, cutoff=0.6)
        where = f"model {name!r} is not in {folder or weights_dir()}"
        if close:
            raise VcsError(f"{where}; did you mean {' or '.join(close)}? (`vcs models` lists all {len(cards)})")
        raise VcsError(f"{where} (`vcs models` lists the {len(cards)} there){skipped_note(folder)}")
    raise VcsError(f"model name {name!r} is ambiguous: {_some_names(matches)}")


def _some_names(cards: list[ModelCard], most: int = 6) -> str:
    """Models' names for a one-line error: all of a few, else the first ``most`` and how many more (`vcs models`
    lists them: `-m hitvcsnet` would otherwise print every installed name on one line)."""
    names = ", ".join(c.name for c in cards[:most])
    if len(cards) <= most:
        return names
    return f"{names} and {len(cards) - most} more (`vcs models` lists them)"


def check_ratio(alpha_n: object) -> float:
    """``alpha_n``, a ratio from Python or a command line, if it is a number in (0, 1]: "0.1" would otherwise fail
    deep in a comparison, and 2 or NaN would be looked for among the models as if it could be there."""
    if isinstance(alpha_n, bool) or not isinstance(alpha_n, int | float):
        raise VcsError(f"ratio must be a number, got {type(alpha_n).__name__} {alpha_n!r}")
    if not 0 < alpha_n <= 1:  # NaN fails this too
        raise VcsError(f"ratio {alpha_n:g} is outside (0, 1]")
    return alpha_n


def default_model(alpha_n: float, folder: str | os.PathLike[str] | None = None) -> ModelCard:
    """The model marked default for this non-keyframe ratio; where none is marked (a training run's export
    folder as $VCS_WEIGHTS), the ratio's only model."""
    check_ratio(alpha_n)
    installed = installed_models(folder)
    cards = [c for c in installed if abs(c.alpha_n - alpha_n) < 1e-9]
    marked = [c for c in cards if c.default]
    if len(marked) > 1:  # which one a file gets must not depend on names' order
        names = ", ".join(c.name for c in marked)
        raise VcsError(
            f"several models are marked default for ratio {alpha_n:g}: {names}; set default to false in all but one"
        )
    where = folder or weights_dir()
    if not cards:
        ratios = ", ".join(sorted({f"{c.alpha_n:g}" for c in installed}))
        # repr, not :g: a ratio of 0.1000001 must not read as the 0.1 that is there
        raise VcsError(
            f"no model for ratio {alpha_n!r} in {where} (it has {ratios}); use --model NAME{skipped_note(folder)}"
        )
    if not marked and len(cards) > 1:  # as above: not the first by name
        raise VcsError(
            f"{len(cards)} models for ratio {alpha_n:g} in {where} and none marked default: {_some_names(cards)}; "
            f"use --model NAME{skipped_note(folder)}"
        )
    return (marked or cards)[0]


def save_model(model: HITVCSNet, folder: Path, info: dict[str, Any] | None = None, default: bool = False) -> ModelCard:
    """Export a model: half-precision ``.npz`` plus manifest, named after its hash. Returns its card."""
    cfg = model.config
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: v.detach().cpu().half().numpy() for k, v in model.state_dict().items()}
    tmp = folder / f".export-{os.getpid()}.npz"
    try:
        np.savez(tmp, **arrays)
        sha = sha256_file(tmp)
        name = model_name(cfg.arch, cfg.alpha_k, cfg.alpha_n, sha)
        target = folder / f"{name}.npz"
        existed = target.exists()  # the same weights exported before: the same bytes (the name is their hash)
        tmp.replace(target)
    except BaseException:  # Ctrl-C or a full disk: no half-written weights left in the folder
        tmp.unlink(missing_ok=True)
        raise
    manifest = {
        "name": name,
        "arch": cfg.arch,
        "config": cfg.to_dict(),
        "alpha_k": cfg.alpha_k,
        "alpha_n": cfg.alpha_n,
        "file": target.name,
        "sha256": sha,
        "dtype": "float16",
        "default": default,
        **(info or {}),
    }
    try:
        _write_manifest(folder / f"{name}.json", manifest)
    except BaseException:  # weights without a manifest are no model: neither is left
        if not existed:
            target.unlink(missing_ok=True)
        raise
    card = _read_manifest(folder / f"{name}.json")
    if default:
        mark_default(card)
    return card


def _write_manifest(path: Path, manifest: dict[str, Any], check: Callable[[Path], object] | None = None) -> None:
    """Write a manifest whole (`replaced_whole`); ``check`` reads the written file first, and refusing it keeps
    ``path`` as it was."""
    with replaced_whole(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if check is not None:
            check(tmp)


def mark_default(card: ModelCard) -> None:
    """Make ``card`` the default of its ratio in its folder, and no other model of that ratio: each manifest is
    rewritten whole (written aside, then renamed)."""
    folder = card.path.parent
    for other in list_models(folder):
        if abs(other.alpha_n - card.alpha_n) < 1e-9 and other.default != (other.name == card.name):
            _write_manifest(folder / f"{other.name}.json", {**other.manifest, "default": other.name == card.name})


# Sizes and ratios: a derived model keeps its base's; every other field comes from the derived architecture (and
# loading the weights then proves it adds no parameters).
_SIZE_FIELDS = ("block", "alpha_k", "alpha_n", "scales", "channels", "key_channels", "levels", "gop")


def derive_model(card: ModelCard, arch: str, why: str, default: bool = False) -> ModelCard:
    """A manifest that decodes ``card``'s weights file with another architecture that adds no parameters (the
    motion search, the projection): same tensors, same sha256, named after the new architecture, written beside
    the weights file (a manifest names its file without a folder)."""
    from .models import architecture

    base = card.model_config()
    config = architecture(arch, **{f: getattr(base, f) for f in _SIZE_FIELDS})
    folder = card.path.parent
    name = model_name(arch, config.alpha_k, config.alpha_n, card.sha256)
    if (folder / f"{name}.json").exists():
        raise VcsError(f"model {name} already exists in {folder}")
    manifest = {
        **card.manifest,
        "name": name,
        "arch": arch,
        "config": config.to_dict(),
        "default": False,
        "derived_from": {"model": card.name, "why": why},
    }
    # load() refuses an architecture whose tensors differ from the file's
    _write_manifest(folder / f"{name}.json", manifest, check=lambda tmp: _read_manifest(tmp).load())
    derived = _read_manifest(folder / f"{name}.json")
    if default:
        mark_default(derived)
    return derived
