"""motiontransfer: self-supervised image animation (Monkey-Net, FOMM, LIA, KPVP) in one library."""

from motiontransfer.errors import ConfigError, InputFileError, UserError

__version__ = "0.1.0"

__all__ = ["ConfigError", "InputFileError", "UserError", "__version__"]
