"""`vcs bench`: the paper's tables reproduced through the whole codec, with speed and rate.

Every number comes from a real round trip: frames are encoded into a ``.vcs`` file (`codec.encode_frames`), the
file's bytes are read back (`container.ContainerReader`) and decoded (`codec.decode_records`). Nothing goes around
the container, so quantization and the bitstream count exactly as they do for a user.

Protocol (the paper's, as its authors' test code runs it; see notes/facts.md):
- the first 17 frames of each sequence: GOP 1 = frames 1–9, GOP 2 = frames 9–17 (keyframes 1, 9, 17, αk 0.5),
  which is the codec's own layout for a 17-frame file;
- score = mean over frames 1–16 (keyframes included; Table 1), and over the non-keyframes 2–8 and 10–16 only
  (Table 4); the final keyframe (frame 17) belongs to the third GOP and is not scored;
- PSNR on the Y plane rounded to 8 bits, peak 255, no border crop; SSIM of Wang et al. (`vcscodec.metrics`);
- the average row is the mean over sequences of each sequence's mean.
With ``frames=None`` ("--frames all") whole sequences are coded: the score is the mean over all frames but the
final keyframe when the count is gop·k + 1 (the same rule as the 17-frame protocol), else over all frames.
"""

from .paper import LINEAR_FLOORS, PAPER_FRAMES, implied_keyframe_psnr, paper_results, paper_sequence
from .report import render, require_matplotlib, write_json, write_plots
from .run import DEFAULT_RATIOS, BenchConfig, decode_timed, device_info, run_bench
from .sequences import Sequence, find_sequences, scored_frames

__all__ = [
    "BenchConfig",
    "DEFAULT_RATIOS",
    "LINEAR_FLOORS",
    "PAPER_FRAMES",
    "Sequence",
    "decode_timed",
    "device_info",
    "find_sequences",
    "implied_keyframe_psnr",
    "paper_results",
    "paper_sequence",
    "render",
    "require_matplotlib",
    "run_bench",
    "scored_frames",
    "write_json",
    "write_plots",
]
