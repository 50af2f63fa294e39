"""The web page: ``motiontransfer serve`` (gradio, the ``web`` extra).

A source image and a driving video (uploads, a webcam recording or bundled samples), the options of
``motiontransfer animate``, a Run button with a progress bar in frames, and the animation, its visualisation and
download links. See docs/web.md.

Usage::

    from motiontransfer.web import ServeOptions, serve

    serve(ServeOptions(port=7860, models=Path("models")))   # blocks until Ctrl-C

Importing this package does not import gradio; :func:`serve` reports a missing ``web`` extra in one line.
"""

from __future__ import annotations

from motiontransfer.web.jobs import Limits
from motiontransfer.web.server import DEFAULT_HOST, DEFAULT_PORT, ServeOptions, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Limits", "ServeOptions", "serve"]
