"""HIT-VCSNet and its named variants. Tensors only: nothing here reads files or knows the CLI."""

from .config import ARCHITECTURES, ModelConfig, architecture, measurement_count
from .hitvcsnet import HITVCSNet, KeyMeasurements, Reconstruction, chain_targets, keyframes_on_grids
from .loss import hitvcsnet_loss

# The network's parts by key (`vcs info --model --json`), the names of their parameters, and their names in the
# paper's terms (the table of `vcs info --model`).
PART_PREFIXES = {
    "sampling": ("sampling.",),
    "initial_reconstruction": ("initial_key.", "initial_non."),
    "msem": ("msem_key.fem", "msem_non.fem", "msem_key.blocks", "msem_non.blocks"),
    "hffm": ("msem_key.hffm", "msem_non.hffm"),
    "hfim": ("hfim.",),
    "msfm": ("msfm_key.", "msfm_non."),
}
PART_LABELS = {
    "sampling": "sampling",
    "initial_reconstruction": "initial reconstruction",
    "msem": "MSEM (FEM + RBs)",
    "hffm": "HFFM",
    "hfim": "HFIM",
    "msfm": "MSFM",
    "total": "total",
    "run_in_decoding": "run in decoding",
}


# What a decoder without the non-keyframe network (ModelConfig.non_key_network off) holds but never runs.
NON_KEY_NETWORK_PREFIXES = ("msem_non.", "hfim.", "msfm_non.")


def parameter_counts(model: HITVCSNet) -> dict[str, int]:
    """Parameters per part of the network (keys of PART_PREFIXES), the ``total``, and how many of them decoding runs
    (``run_in_decoding``)."""
    counts = dict.fromkeys(PART_PREFIXES, 0)
    total = skipped = 0
    for name, p in model.named_parameters():
        total += p.numel()
        part = next(part for part, prefixes in PART_PREFIXES.items() if name.startswith(prefixes))
        counts[part] += p.numel()
        if not model.config.non_key_network and name.startswith(NON_KEY_NETWORK_PREFIXES):
            skipped += p.numel()
    counts["total"] = total
    counts["run_in_decoding"] = total - skipped
    return counts


__all__ = [
    "ARCHITECTURES",
    "HITVCSNet",
    "KeyMeasurements",
    "PART_LABELS",
    "ModelConfig",
    "Reconstruction",
    "architecture",
    "chain_targets",
    "hitvcsnet_loss",
    "keyframes_on_grids",
    "measurement_count",
    "parameter_counts",
]
