"""Numbered-picture names (vcscodec.numbered) and the refusal to overwrite an input named by one."""

from __future__ import annotations

import os

import pytest

from vcscodec.errors import VcsError
from vcscodec.numbered import files_named, has_counter, is_pattern, numbered_files, picture_path
from vcscodec.output import refuse_input_as_output


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("f_%04d.png", True),
        ("f_%d.png", True),
        ("100%%_%03d.png", True),  # %% is a literal %, as FFmpeg reads it
        ("%%d_%d.png", True),
        ("f_%03d_%03d.png", False),  # two counters
        ("50%_%d.png", False),  # a lone %: FFmpeg refuses the name
        ("f_%%d.png", False),  # a literal "%d", no counter
        ("f_%3d.png", True),  # FFmpeg pads %3d with zeros, as %03d
        ("still.png", False),
    ],
)
def test_what_is_a_pattern(name, pattern):
    assert is_pattern(name) is pattern
    assert has_counter(name) is (pattern or name == "f_%03d_%03d.png" or name == "50%_%d.png")


def test_files_of_a_pattern_are_found_as_it_prints_them(tmp_path):
    for name in ("f_007.png", "f_008.png", "f_7.png", "f_1000.png", "g_007.png", "100%_002.png"):
        (tmp_path / name).write_bytes(b"x")
    assert sorted(numbered_files(tmp_path / "f_%03d.png")) == [7, 8, 1000]  # not 7 printed as "7"
    assert sorted(numbered_files(tmp_path / "f_%d.png")) == [7, 1000]  # not "007"
    assert numbered_files(tmp_path / "100%%_%03d.png") == {2: tmp_path / "100%_002.png"}
    assert sorted(numbered_files(tmp_path / "f_%3d.png")) == [7, 8, 1000]  # as FFmpeg prints %3d: 007
    assert picture_path(tmp_path / "f_%3d.png", 7) == tmp_path / "f_007.png"
    (tmp_path / "f_009.png").symlink_to(tmp_path / "gone.png")  # a dangling link names no picture
    assert 9 not in numbered_files(tmp_path / "f_%03d.png")
    assert picture_path(tmp_path / "100%%_%03d.png", 2) == tmp_path / "100%_002.png"
    assert numbered_files(tmp_path / "missing" / "f_%03d.png") == {}
    assert files_named(tmp_path / "f_007.png") == [tmp_path / "f_007.png"]
    assert files_named(tmp_path / "h_%03d.png") == []


def test_an_output_that_names_an_input_picture_is_refused_by_any_name(tmp_path):
    """Writing numbered pictures over the ones being read (the same pattern, one picture of it, a link to one)
    would destroy the source: refused; other names pass."""
    for number in range(3):
        (tmp_path / f"r_{number:03d}.png").write_bytes(b"x")
    pattern = tmp_path / "r_%03d.png"
    os.link(tmp_path / "r_001.png", tmp_path / "linked.png")
    for output in (pattern, tmp_path / "r_002.png", tmp_path / "linked.png"):
        with pytest.raises(VcsError, match="choose another output name"):
            refuse_input_as_output(output, pattern)
    with pytest.raises(VcsError, match="choose another output name"):
        refuse_input_as_output(pattern, tmp_path / "r_000.png")  # a pattern over a single input
    refuse_input_as_output(tmp_path / "r_%d.png", pattern)  # r_0.png…: no picture read
    refuse_input_as_output(tmp_path / "r_003.png", pattern)  # not there yet: nothing to destroy
    (tmp_path / "d_000.png").symlink_to(tmp_path / "gone.png")
    refuse_input_as_output(tmp_path / "d_%03d.png", pattern)  # a dangling link: neither read nor destroyed
    refuse_input_as_output(pattern.with_name("x.png"), tmp_path / "d_%03d.png")
