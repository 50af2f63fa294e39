"""Real videos: detect, crop and track subjects, paste animated crops back.

* :mod:`~motiontransfer.preprocess.crop` (``motiontransfer crop``): square clips of each tracked face or body of a
  video, in FOMM's dataset layout, with the per-frame boxes (:func:`~motiontransfer.preprocess.crop.crop_video`).
* :mod:`~motiontransfer.preprocess.animate` (``animate --crop face|body``): animate the subject's crop of a photo with
  the tracked subject of a driving video and paste the result back into the photo
  (:func:`~motiontransfer.preprocess.animate.animate_cropped`, ``animate_video_cropped``).
* :mod:`~motiontransfer.preprocess.detect` (dlib faces, mediapipe bodies), :mod:`~motiontransfer.preprocess.track`
  (IoU tracking, smoothed boxes), :mod:`~motiontransfer.preprocess.boxes` (crop with padding, feathered paste-back).
  The temporal filters (centred Gaussian, One-Euro) and their jitter and lag measures are
  :mod:`motiontransfer.ops.temporal`, shared with the smoothing of the driving motion.
"""
