"""Run the Rasa command line with SPIN's patches: ``python -m nlu.serve run ...``."""

from __future__ import annotations

import sys

from nlu.rasa_patches import install


def main() -> None:
    """Install the patches, then hand over to Rasa's own ``main`` (reads ``sys.argv``)."""
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


if __name__ == "__main__":
    main()
