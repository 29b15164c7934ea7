"""lstmkit: Long Short-Term Memory networks from their gate equations."""

from lstmkit.errors import LstmkitError

__version__ = "0.1.0"

__all__ = ["LstmkitError", "__version__"]
