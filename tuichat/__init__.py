"""tuichat: a video chat that lives in the terminal."""

import logging
import os

# Before numpy loads OpenBLAS: its matrices here are small (frames resized to terminal cells), where
# its worker threads only spin-wait: at some grid sizes one took a whole core (94% of one for a
# client that needs 12%). A user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
__all__ = ["__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
