"""vcscodec: a video compressive-sensing codec built on the HIT-VCSNet reconstruction network."""

__version__ = "0.2.0"
