"""How a stored picture asks to be shown: turned or mirrored by a video's display matrix or a photo's EXIF
orientation. vcs reads pictures as shown, as ffmpeg's command line does (its ``-autorotate``, on by default)."""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np

# An orientation: (quarter turns counter-clockwise, mirrored left to right first). The eight that a display matrix
# or EXIF can ask for are all of this form: shown = np.rot90(np.fliplr(stored) if mirrored else stored, turns).
Orientation = tuple[int, bool]
UPRIGHT: Orientation = (0, False)

# A display matrix's linear part (a, b, c, d) = matrix[0], [1], [3], [4] sends a stored pixel (x, y), y downwards,
# to (a·x + c·y, b·x + d·y) on screen: the track matrix of ISO/IEC 14496-12, which FFmpeg keeps as it is. For these
# eight matrices this is what ffmpeg's transpose, hflip and vflip filters do when it autorotates.
_MATRIX_ORIENTATIONS: dict[tuple[int, int, int, int], Orientation] = {
    (1, 0, 0, 1): (0, False),
    (-1, 0, 0, 1): (0, True),  # mirrored
    (1, 0, 0, -1): (2, True),  # upside down, mirrored (a vertical flip)
    (-1, 0, 0, -1): (2, False),  # a half turn
    (0, -1, 1, 0): (1, False),  # a quarter turn counter-clockwise
    (0, 1, -1, 0): (3, False),  # clockwise
    (0, 1, 1, 0): (1, True),  # transposed
    (0, -1, -1, 0): (3, True),  # transposed about the other diagonal
}
# Within 1° of a quarter turn counts as one, as in ffmpeg; sin 1° ≈ 0.0175 of the matrix's scale.
_MATRIX_TOLERANCE = 0.02

# EXIF tag 274 (Orientation), values 1–8, as the same eight.
_EXIF_ORIENTATION_TAG = 0x0112
_EXIF_ORIENTATIONS: dict[int, Orientation] = {
    1: (0, False),
    2: (0, True),
    3: (2, False),
    4: (2, True),
    5: (1, True),
    6: (3, False),
    7: (3, True),
    8: (1, False),
}


def matrix_orientation(matrix: np.ndarray) -> Orientation | None:
    """The orientation a display matrix (nine int32, FFmpeg's layout) asks for; None for any other transform (a
    turn by another angle, a shear), which vcs does not apply. A matrix that flattens the picture to nothing is
    ignored, as ffmpeg ignores it (its angle is undefined): upright."""
    a, b, c, d = np.asarray(matrix, dtype=np.float64)[[0, 1, 3, 4]]
    # Each axis by its own length, as av_display_rotation_get does: a stretch (a pixel aspect) turns nothing.
    x_scale, y_scale = np.hypot(a, c), np.hypot(b, d)
    if x_scale == 0 or y_scale == 0:
        return UPRIGHT
    linear = np.array([a / x_scale, b / y_scale, c / x_scale, d / y_scale])
    signs = np.round(linear)
    if np.abs(linear - signs).max() > _MATRIX_TOLERANCE:
        return None
    return _MATRIX_ORIENTATIONS.get(tuple(int(s) for s in signs))


def display_matrix(av_frame: av.VideoFrame) -> np.ndarray | None:
    """The display matrix that came with a decoded picture (FFmpeg attaches the stream's to its frames); None
    without one, or when PyAV cannot list the frame's side data: PyAV 18 knows no name for FFmpeg 8's EXIF side
    data and raises, so a photo's matrix is read from its EXIF instead (`picture_orientation`)."""
    try:
        side_data = av_frame.side_data
    except ValueError:
        return None
    data = side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    return None if data is None else np.frombuffer(bytes(data), dtype=np.int32)  # native-endian, as FFmpeg's


def picture_orientation(path: Path) -> Orientation | None:
    """A photo's EXIF orientation (JPEG, PNG, WebP, TIFF: what Pillow reads); None without one, or for a file
    Pillow cannot open, which FFmpeg may still decode."""
    from PIL import Image  # installed with scikit-image; only photos need it

    try:
        # Pillow warns of corrupt EXIF on stderr, in two lines of its own
        with warnings.catch_warnings(action="ignore"), Image.open(path) as image:
            value = image.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # EXIF is a hint: a file Pillow cannot parse is read as stored
        return None
    return _EXIF_ORIENTATIONS.get(value) if isinstance(value, int) else None


def frame_orientation(av_frame: av.VideoFrame, picture: Path | None = None) -> Orientation | None:
    """How ``av_frame`` asks to be shown: by ``picture``'s EXIF when it is a photo with an orientation tag, else by
    its display matrix, else by PyAV's angle of it (``rotation``, degrees counter-clockwise: all that can be read
    where the matrix cannot, so no mirror); None for a turn other than quarter turns."""
    if picture is not None and (from_exif := picture_orientation(picture)) is not None:
        return from_exif
    matrix = display_matrix(av_frame)
    if matrix is not None:
        return matrix_orientation(matrix)
    turns = quarter_turns(getattr(av_frame, "rotation", 0) or 0)  # PyAV ≥ 14 reads it; whole degrees
    return None if turns is None else (turns, False)


def quarter_turns(degrees: float) -> int | None:
    """Counter-clockwise ``degrees`` as quarter turns (0–3), within 1° of one (ffmpeg's tolerance); None for any
    other angle."""
    quarters = round(degrees / 90)
    return quarters % 4 if abs(degrees - 90 * quarters) <= 1 else None


def shown(plane: np.ndarray, orientation: Orientation) -> np.ndarray:
    """``plane`` as ``orientation`` shows it (a contiguous copy when it moves)."""
    turns, mirrored = orientation
    if orientation == UPRIGHT:
        return plane
    return np.ascontiguousarray(np.rot90(plane[:, ::-1] if mirrored else plane, turns))


def swaps_axes(orientation: Orientation) -> bool:
    """Whether ``orientation`` shows a W×H picture as H×W."""
    return orientation[0] % 2 == 1
