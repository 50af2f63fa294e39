"""The model families, one package each (``config``, ``networks``, ``animator``, ``task`` and, where there is
something to convert, ``convert``), each registering its :class:`~motiontransfer.registry.FamilySpec` when
imported. Importing this package registers the built-in families: FOMM, Monkey-Net, LIA and KPVP.
"""

from motiontransfer.families import fomm, kpvp, lia, monkeynet

BUILTIN = (fomm.SPEC, monkeynet.SPEC, lia.SPEC, kpvp.SPEC)
"""The built-in families' specs."""

__all__ = ["BUILTIN"]
