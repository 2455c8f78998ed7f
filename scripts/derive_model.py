"""Write a manifest that decodes a shipped weights file with another, parameter-free architecture.

    python scripts/derive_model.py BASE_MODEL ARCH --why "what the architecture adds" [--default]

Example: the -mhc-lin models are the -mhc weights decoded without the non-keyframe network (docs/architecture.md).
With --default the new model becomes the default of its ratio, and the model that was stops being it.
"""

from __future__ import annotations

import argparse

from vcscodec.registry import derive_model, find_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the model whose weights file is reused (name or unambiguous prefix)")
    parser.add_argument("arch", help="the architecture to decode it with, e.g. hitvcsnet-mhc-lin")
    parser.add_argument("--why", required=True, help="recorded in the manifest's derived_from")
    parser.add_argument("--default", action="store_true", help="make it the default model of its ratio")
    args = parser.parse_args()
    card = derive_model(find_model(args.base), args.arch, args.why, default=args.default)
    print(f"wrote {card.name} ({card.path.parent / (card.name + '.json')})")


if __name__ == "__main__":
    main()
