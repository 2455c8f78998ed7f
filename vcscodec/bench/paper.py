"""The paper's figures (Tables 1, 4 and 5), its sequences' names, and the linear floor, for `vcs bench`."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .sequences import VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from ..registry import ModelCard

PAPER_FRAMES = 17


# Not the paper's: the simplest linear decoder worth beating on the paper's test set (KLT sampling; keyframes
# interpolated and corrected by each frame's own measurements), measured in notes/facts.md. A network below it
# is not worth its FLOPs, so the bench prints it beside the table of a run over that whole test set.
LINEAR_FLOORS: dict[str, dict[str, float]] = {
    "0.01": {"psnr": 34.04, "psnr_nonkey": 33.17},
    "0.1": {"psnr": 35.52, "psnr_nonkey": 34.86},
}


FLOOR_SOURCE = "linear temporal-residual decoder, KLT sampling (notes/facts.md, 'Floors on the paper's test set')"


# Our architectures that the paper's Table 5 scores; the others are compared with HIT-VCSNet itself.
ABLATIONS = {"hitvcsnet-nohfim": "w/o HFIM", "hitvcsnet-nohffm": "w/o HFFM"}


PAPER_METHODS = ("HIT-VCSNet", "VCSNet2")


def paper_results() -> dict[str, Any]:
    """The paper's figures (Tables 1, 4 and 5) as shipped in ``vcscodec/data/paper_results.json``."""
    text = resources.files("vcscodec").joinpath("data/paper_results.json").read_text(encoding="utf-8")
    return json.loads(text)


# Tokens of a file name that describe the format, not the scene: "foreman_cif", "akiyo_352x288_30fps_8bit".
_NAME_NOISE = re.compile(
    r"^(?:\d+x\d+|\d+(?:\.\d+)?(?:fps|hz|p)?|s?qcif|cif|4cif|720p|1080p|\d+bit|p420|i420|yuv420p?|y4m|yuv|png|frames?|and|the)$"
)


def _name_key(text: str) -> str:
    return "".join(t for t in re.split(r"[^0-9a-z]+", text.lower()) if t and not _NAME_NOISE.match(t))


def paper_sequence(name: str, paper: dict[str, Any] | None = None) -> str | None:
    """The paper's row for a file or folder name (``mother_daughter_cif.y4m`` → "Mother daughter"), or None."""
    paper = paper or paper_results()
    key = _name_key(Path(name).stem if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name)
    return next((s for s in paper["sequences"] if _name_key(s) == key), None)


def ratio_key(ratio: float) -> str:
    """How the paper's tables (and the JSON) name a ratio: 0.01 → "0.01"."""
    return f"{ratio:g}"


def implied_keyframe_psnr(all_frames: float, non_keyframes: float) -> float:
    """The keyframes' mean PSNR that a paper's averages imply: Table 1 averages frames 1–16 (keyframes 1 and 9
    among them), Table 4 the 14 non-keyframes, so the two keyframes average (16·T1 − 14·T4) / 2. The paper gives
    no keyframe figure of its own; this is arithmetic on its tables, exact if both average the same frames."""
    scored, key = PAPER_FRAMES - 1, 2
    return (scored * all_frames - (scored - key) * non_keyframes) / key


def paper_figures(card: ModelCard, sequences: list[dict[str, Any]], paper: dict[str, Any]) -> dict[str, Any]:
    """The paper's figures for this run: per sequence (Table 1), averages (Tables 1, 4) and the ablation (5)."""
    rk = ratio_key(card.alpha_n)
    table1 = {m: paper["table1"]["methods"][m].get(rk) for m in PAPER_METHODS}
    present = [s["paper_name"] for s in sequences if s["paper_name"]]
    # each of the six once, and nothing else: a sequence present twice would weigh twice in the average
    complete = sorted(present) == sorted(paper["sequences"]) and len(present) == len(sequences)
    for s in sequences:
        s["paper"] = {m: rows[s["paper_name"]] for m, rows in table1.items() if rows and s["paper_name"]} or None
    average: dict[str, Any] = {"complete": complete, "table1": {}, "table4": {}, "table5": {}, "keyframes": {}}
    for m, rows in table1.items():
        if not rows or not present:
            continue
        if complete:
            average["table1"][m] = rows["Average"]
        else:  # a subset of the test set: the mean of the paper's rows for the sequences present
            average["table1"][m] = {
                "psnr": float(np.mean([rows[n]["psnr"] for n in present])),
                "ssim": float(np.mean([rows[n]["ssim"] for n in present])),
                "over": present,
            }
    if complete:  # Tables 4 and 5 give only averages over all six sequences
        for m in PAPER_METHODS:
            if rk in paper["table4"]["methods"][m]:
                average["table4"][m] = paper["table4"]["methods"][m][rk]
                if table1[m]:
                    implied = implied_keyframe_psnr(table1[m]["Average"]["psnr"], average["table4"][m]["psnr"])
                    average["keyframes"][m] = {"psnr": implied, "implied": "by Tables 1 and 4"}
        method = ABLATIONS.get(card.arch)  # the full model's Table 5 row repeats Table 1's average
        if method and rk in paper["table5"]["methods"][method]:
            average["table5"][method] = paper["table5"]["methods"][method][rk]
    return average


def linear_floor(alpha_n: float, paper_average: dict[str, Any]) -> dict[str, Any] | None:
    """The linear decoder's scores on the paper's test set, for a run over that whole set at a ratio that has one
    (`LINEAR_FLOORS` are averages over all six sequences: against any other set they mean nothing)."""
    key = ratio_key(alpha_n)
    if not paper_average["complete"] or key not in LINEAR_FLOORS:
        return None
    return {**LINEAR_FLOORS[key], "source": FLOOR_SOURCE}
