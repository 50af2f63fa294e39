from motiontransfer.video.io import *  # noqa: F403  (moved to motiontransfer.video.io; kept for existing scripts)
