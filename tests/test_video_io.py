"""Tests for motiontransfer.video.io: streaming reading and atomic writing of videos and images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from motiontransfer.errors import InputFileError, UserError
from motiontransfer.video.io import (
    VideoReader,
    VideoWriter,
    count_frames,
    is_video_path,
    iter_frames,
    probe,
    read_frames,
    read_image,
    write_image,
    write_video,
)

SRC = Path(__file__).resolve().parents[1] / "src"

# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def smooth_frames(count: int, height: int, width: int) -> list[torch.Tensor]:
    """Smooth moving gradients, (3, H, W) float in [0, 1] (easy for a video codec)."""
    ys = torch.linspace(0, 1, height)[:, None]
    xs = torch.linspace(0, 1, width)[None, :]
    frames = []
    for k in range(count):
        shift = k / max(count, 1)
        red = (0.2 + 0.6 * xs).expand(height, width) * 1.0
        green = (0.2 + 0.6 * ys).expand(height, width) * 1.0
        blue = 0.3 + 0.4 * torch.sin(2 * torch.pi * (xs + ys + shift)) * 0.5
        frames.append(torch.stack([red, green, blue.expand(height, width)]).float())
    return frames


def constant_frames(
    colours: list[tuple[int, int, int]], height: int = 8, width: int = 10
) -> list[np.ndarray]:
    """One (H, W, 3) uint8 frame per colour."""
    return [np.full((height, width, 3), colour, dtype=np.uint8) for colour in colours]


def make_av_video(
    path: Path,
    frames: int,
    size: tuple[int, int] = (64, 64),
    fps: int = 25,
    audio_codec: str | None = None,
    audio_seconds: float = 2.0,
) -> Path:
    """Write a test video directly with PyAV (independent of VideoWriter), optionally with a 440 Hz tone."""
    height, width = size
    container = av.open(str(path), mode="w")
    video = container.add_stream("libx264", rate=Fraction(fps))
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.options = {"preset": "ultrafast"}
    audio = None
    if audio_codec is not None:
        audio = container.add_stream(audio_codec, rate=16000)
        audio.layout = "mono"
    for k in range(frames):
        array = np.full((height, width, 3), (k * 7) % 256, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts = k
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if audio is not None:
        sample_format = audio.codec_context.format.name
        for start in range(0, int(16000 * audio_seconds), 1024):
            tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(start, start + 1024) / 16000)
            samples = (tone * 32767).astype(np.int16) if sample_format == "s16" else tone.astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(samples[None], format=sample_format, layout="mono")
            chunk.sample_rate, chunk.pts = 16000, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    container.close()
    return path


def audio_seconds(path: Path) -> float:
    """Duration of the decoded audio of a file, in seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def hidden_entries(folder: Path) -> list[str]:
    """Temporary (hidden) entries left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------------------


def test_mp4_round_trip(tmp_path: Path) -> None:
    frames = smooth_frames(12, 48, 64)
    path = write_video(tmp_path / "clip.mp4", frames, fps=24)
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (64, 48, 12, False)
    assert info.fps == pytest.approx(24.0)
    assert count_frames(path) == 12
    back = list(iter_frames(path))
    assert len(back) == 12
    for original, decoded in zip(frames, back, strict=True):
        assert decoded.shape == (3, 48, 64) and decoded.dtype == torch.float32
        assert (decoded - original).abs().mean() < 0.03
    assert hidden_entries(tmp_path) == []


def test_decoded_frames_are_arrays_that_convert_to_the_iterated_frames(tmp_path: Path) -> None:
    # decoding (which may run on another thread) does no torch work; convert() gives what iteration gives
    frames = smooth_frames(5, 40, 56)
    video = write_video(tmp_path / "clip.mp4", frames, fps=25)
    folder = write_video(tmp_path / "frames", frames)
    for path, kind in ((video, np.ndarray), (folder, Image.Image)):
        with VideoReader(path, size=32) as reader:
            decoded = list(reader.decoded())
            assert len(decoded) == 5 and all(isinstance(item, kind) for item in decoded)
            iterated = list(reader)
            assert list(reader.decoded())  # re-iterable
            for item, frame in zip(decoded, iterated, strict=True):
                assert torch.equal(reader.convert(item), frame)
                assert frame.shape == (3, 32, 32)
    with VideoReader(video) as reader:
        reader.close()
        with pytest.raises(ValueError, match="closed"):
            reader.decoded()


def test_ntsc_frame_rate_is_kept(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ntsc.mp4", smooth_frames(3, 16, 16), fps=29.97)
    assert probe(path).fps == pytest.approx(30000 / 1001)


def test_gif_round_trip(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30), (200, 200, 200)]
    frames = constant_frames(colours)
    for frame in frames:
        frame[:, :3] = (255, 255, 0)  # a second colour in each frame
    path = write_video(tmp_path / "anim.gif", frames, fps=25)
    info = probe(path)
    assert (info.width, info.height, info.num_frames) == (10, 8, 5)
    assert info.fps == pytest.approx(25.0)
    back = list(iter_frames(path))
    assert len(back) == 5
    for original, decoded in zip(frames, back, strict=True):
        expected = torch.from_numpy(original).permute(2, 0, 1).float() / 255
        assert torch.allclose(decoded, expected, atol=1e-6)


def test_png_folder_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8) for _ in range(4)]
    path = write_video(tmp_path / "frames", frames)
    assert sorted(p.name for p in path.iterdir()) == [f"{k:06d}.png" for k in range(4)]
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (7, 9, 4, None)
    for original, decoded in zip(frames, iter_frames(path), strict=True):
        assert torch.equal(decoded, torch.from_numpy(original).permute(2, 0, 1).float() / 255)


def test_writer_accepts_tensor_and_array_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    hwc = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    chw_float = torch.from_numpy(hwc).permute(2, 0, 1).float() / 255
    write_video(tmp_path / "a", [hwc, chw_float, chw_float.numpy(), torch.from_numpy(hwc)])
    decoded = list(iter_frames(tmp_path / "a"))
    for frame in decoded:
        assert torch.equal(frame, decoded[0])


def test_natural_sort_and_ignored_files(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for number in (10, 2, 1):
        Image.fromarray(np.full((4, 4, 3), number, dtype=np.uint8)).save(folder / f"frame{number}.png")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")
    values = [round(float(frame[0, 0, 0]) * 255) for frame in iter_frames(folder)]
    assert values == [1, 2, 10]
    assert count_frames(folder) == 3


# ----------------------------------------------------------------------------------------------------------
# Image conversions, crop and resize
# ----------------------------------------------------------------------------------------------------------


def test_grayscale_png(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 100], [200, 255]], dtype=np.uint8), mode="L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    expected = torch.tensor([[0, 100], [200, 255]], dtype=torch.float32) / 255
    assert image.shape == (3, 2, 2)
    for channel in range(3):
        assert torch.equal(image[channel], expected)


def test_rgba_png_is_composited_over_black(tmp_path: Path) -> None:
    pixels = np.array([[[200, 100, 50, 128], [10, 20, 30, 255], [255, 255, 255, 0]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    rgb = torch.from_numpy(pixels[..., :3]).permute(2, 0, 1).float() / 255
    alpha = torch.from_numpy(pixels[..., 3]).float()[None] / 255
    assert torch.allclose(image, rgb * alpha, atol=1e-7)
    assert torch.equal(image[:, 0, 2], torch.zeros(3))  # fully transparent -> black


def test_16bit_png(tmp_path: Path) -> None:
    values = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode in ("I;16", "I")
    image = read_image(tmp_path / "deep.png")
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    for channel in range(3):
        assert torch.allclose(image[channel], expected, atol=1e-7)


def test_palette_png(tmp_path: Path) -> None:
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    palette_image.putdata([0, 1])
    palette_image.save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    assert torch.equal(image[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(image[:, 0, 1], torch.tensor([0.0, 0.0, 1.0]))


def _thirds(height: int = 10, width: int = 30) -> np.ndarray:
    """A 3:1 frame: left third red, middle third green, right third blue."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    frame[:, :third, 0] = 255
    frame[:, third : 2 * third, 1] = 255
    frame[:, 2 * third :, 2] = 255
    return frame


def test_centre_crop_keeps_middle_third(tmp_path: Path) -> None:
    Image.fromarray(_thirds()).save(tmp_path / "wide.png")
    cropped = read_image(tmp_path / "wide.png", size=10, crop=True)
    assert cropped.shape == (3, 10, 10)
    assert torch.equal(cropped, torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 10, 10))
    squashed = read_image(tmp_path / "wide.png", size=10, crop=False)
    assert squashed.shape == (3, 10, 10)
    assert squashed[0, 5, 0] > 0.9 and squashed[2, 5, -1] > 0.9  # red left, blue right survive


def test_resize_shapes_for_videos_and_native_size(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", smooth_frames(3, 40, 64), fps=10)
    assert [f.shape for f in iter_frames(path, size=32)] == [(3, 32, 32)] * 3
    assert [f.shape for f in iter_frames(path, size=24, crop=False)] == [(3, 24, 24)] * 3
    assert [f.shape for f in iter_frames(path)] == [(3, 40, 64)] * 3
    for frame in iter_frames(path, size=100):  # upsampling stays in [0, 1]
        assert frame.min() >= 0 and frame.max() <= 1


def test_crop_on_video_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "thirds", [_thirds(20, 60)])
    (frame,) = read_frames(path, [0], size=20)
    assert torch.equal(frame, torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand(3, 20, 20))


def test_odd_size_mp4_is_padded_by_edge_replication(tmp_path: Path) -> None:
    frames = smooth_frames(4, 33, 47)
    path = write_video(tmp_path / "odd.mp4", frames, fps=25)
    info = probe(path)
    assert (info.height, info.width) == (34, 48)
    for original, decoded in zip(frames, iter_frames(path), strict=True):
        assert decoded.shape == (3, 34, 48)
        assert (decoded[:, :33, :47] - original).abs().mean() < 0.03
        # the extra row/column repeats the last one of the original
        assert (decoded[:, :33, 47] - original[:, :, 46]).abs().mean() < 0.03
        assert (decoded[:, 33, :47] - original[:, 32, :]).abs().mean() < 0.03


def test_16bit_video_is_read_through_48bit_rgb(tmp_path: Path) -> None:
    path = tmp_path / "deep.mkv"
    container = av.open(str(path), mode="w")
    stream = container.add_stream("ffv1", rate=Fraction(10))
    stream.width, stream.height, stream.pix_fmt = 8, 4, "yuv444p16le"
    array = np.zeros((4, 8, 3), dtype=np.uint16)
    array[..., 0], array[..., 1], array[..., 2] = 40000, 1000, 65535
    for k in range(2):
        frame = av.VideoFrame.from_ndarray(array, format="rgb48le")
        frame.pts = k
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    assert probe(path).num_frames is None and count_frames(path) == 2
    first = next(iter_frames(path))
    levels = first[:, 0, 0] * 65535
    assert torch.allclose(levels, torch.tensor([40000.0, 1000.0, 65535.0]), atol=100)
    assert any(round(float(v)) % 257 for v in levels)  # not quantised to 8 bits


def test_read_frames_order_duplicates_and_range(tmp_path: Path) -> None:
    colours = [(k * 40, 0, 0) for k in range(6)]
    folder = write_video(tmp_path / "f", constant_frames(colours))
    gif = write_video(tmp_path / "f.gif", constant_frames(colours))
    for path in (folder, gif):
        picked = read_frames(path, [4, 1, 4])
        assert [round(float(f[0, 0, 0]) * 255) for f in picked] == [160, 40, 160]
        assert picked[0] is not picked[2]
        assert read_frames(path, []) == []
        with pytest.raises(InputFileError, match="frame 6"):
            read_frames(path, [0, 6])
    with pytest.raises(ValueError):
        read_frames(folder, [-1])


def test_read_frames_from_folder_opens_only_requested_files(tmp_path: Path) -> None:
    folder = write_video(tmp_path / "f", constant_frames([(1, 1, 1)] * 5))
    (folder / "000003.png").write_bytes(b"corrupt")
    assert len(read_frames(folder, [0, 4])) == 2
    with pytest.raises(InputFileError, match=r"000003\.png"):
        list(iter_frames(folder))


def test_video_reader_reiterates_and_closes(tmp_path: Path) -> None:
    path = write_video(tmp_path / "r.mp4", smooth_frames(5, 16, 16))
    with VideoReader(path, size=8) as reader:
        assert reader.info.num_frames == 5
        assert len(list(reader)) == 5
        iterator = iter(reader)
        next(iterator)
        assert len(list(reader)) == 5
    with pytest.raises(ValueError):
        iter(reader)


def test_is_video_path(tmp_path: Path) -> None:
    frames = write_video(tmp_path / "frames", constant_frames([(0, 0, 0)]))
    (tmp_path / "empty").mkdir()
    assert is_video_path(frames)
    assert is_video_path(tmp_path / "x.MP4")
    assert not is_video_path(tmp_path / "empty")
    assert not is_video_path(tmp_path / "x.png")


def test_write_image_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    array = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    path = write_image(tmp_path / "sub" / "img.png", torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    assert torch.equal(read_image(path), torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    jpg = write_image(tmp_path / "img.jpg", np.full((8, 8, 3), 128, dtype=np.uint8))
    assert (read_image(jpg) - 128 / 255).abs().max() < 0.02
    with pytest.raises(InputFileError, match=r"img\.xyz"):
        write_image(tmp_path / "img.xyz", array)
    assert hidden_entries(tmp_path) == []


# ----------------------------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source_name", "codec"), [("tone.mp4", "aac"), ("tone.mov", "pcm_s16le")])
def test_audio_is_copied_and_trimmed(tmp_path: Path, source_name: str, codec: str) -> None:
    source = make_av_video(
        tmp_path / source_name, frames=50, size=(32, 32), audio_codec=codec, audio_seconds=2.0
    )
    assert probe(source).has_audio
    out = write_video(tmp_path / "out.mp4", smooth_frames(25, 32, 32), fps=25, audio_from=source)
    assert out == tmp_path / "out.mp4"
    info = probe(out)
    assert info.has_audio and info.num_frames == 25
    assert audio_seconds(out) == pytest.approx(1.0, abs=0.15)


def test_audio_from_video_without_audio_writes_video_only(tmp_path: Path) -> None:
    silent = make_av_video(tmp_path / "silent.mp4", frames=5, size=(16, 16))
    out = write_video(tmp_path / "out.mp4", smooth_frames(5, 16, 16), audio_from=silent)
    assert out == tmp_path / "out.mp4"
    assert not probe(out).has_audio


def test_missing_audio_source_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"nothere\.mp4"):
        VideoWriter(tmp_path / "out.mp4", audio_from=tmp_path / "nothere.mp4")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reader", [probe, count_frames, iter_frames, VideoReader, lambda p: read_frames(p, [0])]
)
def test_missing_path(tmp_path: Path, reader) -> None:
    with pytest.raises(InputFileError, match=r"ghost\.mp4"):
        reader(tmp_path / "ghost.mp4")


def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"ghost\.png"):
        read_image(tmp_path / "ghost.png")


def test_unknown_suffix(tmp_path: Path) -> None:
    odd = tmp_path / "clip.xyz"
    odd.write_bytes(b"data")
    with pytest.raises(InputFileError, match=r"clip\.xyz"):
        probe(odd)
    with pytest.raises(InputFileError, match=r"clip\.xyz"):
        read_image(odd)
    with pytest.raises(InputFileError, match=r"out\.xyz"):
        VideoWriter(tmp_path / "out.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.xyz"]


def test_image_is_not_a_video(tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "still.png")
    with pytest.raises(InputFileError, match=r"still\.png"):
        probe(tmp_path / "still.png")


@pytest.mark.parametrize("name", ["empty.mp4", "empty.gif", "empty.png"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    read = read_image if name.endswith(".png") else probe
    with pytest.raises(InputFileError, match=name.replace(".", r"\.")):
        read(tmp_path / name)


def test_random_bytes_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputFileError, match=r"noise\.mp4"):
        probe(path)
    with pytest.raises(InputFileError, match=r"noise\.mp4"):
        list(iter_frames(path))


def test_random_bytes_named_png(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(InputFileError, match=r"noise\.png"):
        read_image(path)


def _mdat_offset(data: bytes) -> int:
    """Byte offset of the top-level 'mdat' box of an mp4."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if kind == b"mdat":
            return offset
        offset += size
    raise AssertionError("no mdat box")


def test_truncated_mp4_without_any_frame(tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.mp4", [torch.rand(3, 64, 64) for _ in range(10)])
    data = full.read_bytes()
    # Cut inside the header: not even openable.
    (tmp_path / "head.mp4").write_bytes(data[:200])
    with pytest.raises(InputFileError, match=r"head\.mp4"):
        probe(tmp_path / "head.mp4")
    # Header complete (the writer puts it first) but cut before the first frame is complete.
    (tmp_path / "noframe.mp4").write_bytes(data[: _mdat_offset(data) + 24])
    with pytest.raises(InputFileError, match=r"noframe\.mp4"):
        list(iter_frames(tmp_path / "noframe.mp4"))
    with pytest.raises(InputFileError, match=r"noframe\.mp4"):
        read_frames(tmp_path / "noframe.mp4", [0])


def test_truncated_mp4_streams_the_frames_it_has(tmp_path: Path) -> None:
    full = write_video(tmp_path / "full.mp4", [torch.rand(3, 64, 64) for _ in range(10)])
    data = full.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match=r"half\.mp4"):
        frames = list(iter_frames(tmp_path / "half.mp4"))
    assert 1 <= len(frames) < 10


def test_empty_folder_and_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="empty"):
        probe(tmp_path / "empty")
    other = tmp_path / "texts"
    other.mkdir()
    (other / "a.txt").write_text("x")
    with pytest.raises(InputFileError, match="texts"):
        list(iter_frames(other))


# ----------------------------------------------------------------------------------------------------------
# Atomic writing
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out"])
def test_exception_inside_writer_leaves_nothing(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    with pytest.raises(RuntimeError), VideoWriter(target) as writer:
        for frame in smooth_frames(3, 16, 16):
            writer.write(frame)
        assert not target.exists()
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.mp4", "out"])
def test_exception_keeps_existing_target(tmp_path: Path, name: str) -> None:
    target = write_video(tmp_path / name, smooth_frames(2, 16, 16))
    before = (
        sorted((p.name, p.stat().st_size) for p in target.iterdir())
        if target.is_dir()
        else target.read_bytes()
    )
    with pytest.raises(KeyboardInterrupt), VideoWriter(target) as writer:
        writer.write(smooth_frames(1, 16, 16)[0])
        raise KeyboardInterrupt
    after = (
        sorted((p.name, p.stat().st_size) for p in target.iterdir())
        if target.is_dir()
        else target.read_bytes()
    )
    assert after == before
    assert hidden_entries(tmp_path) == []


def test_zero_frames_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no frames"):
        write_video(tmp_path / "out.mp4", [])
    writer = VideoWriter(tmp_path / "out2.gif")
    with pytest.raises(UserError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_abort_and_size_mismatch(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "out.mp4")
    writer.write(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="16x16"):
        writer.write(torch.zeros(3, 16, 18))
    writer.abort()
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_folder_output_replaces_frames_but_not_foreign_folders(tmp_path: Path) -> None:
    target = write_video(tmp_path / "frames", constant_frames([(1, 2, 3)] * 3))
    write_video(target, constant_frames([(9, 9, 9)] * 2))
    assert sorted(p.name for p in target.iterdir()) == ["000000.png", "000001.png"]
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(InputFileError, match="home"):
        VideoWriter(precious)
    assert (precious / "thesis.tex").read_text() == "do not delete"


# ----------------------------------------------------------------------------------------------------------
# Memory: streaming a long video must not accumulate frames
# ----------------------------------------------------------------------------------------------------------

_STREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from motiontransfer.video.io import VideoReader, VideoWriter

    def status_mib(key):
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        raise KeyError(key)

    source, target = sys.argv[1], sys.argv[2]
    count = 0
    with VideoReader(source) as reader, VideoWriter(target, fps=reader.info.fps or 25.0) as writer:
        frames = iter(reader)
        for _ in range(30):  # warm up decoder, encoder and allocator
            writer.write(next(frames))
            count += 1
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # reset the peak (VmHWM) to the current RSS
            baseline, method = status_mib("VmRSS"), "clear_refs"
        except OSError:
            baseline, method = status_mib("VmHWM"), "hwm"
        for frame in frames:
            writer.write(frame)
            count += 1
    peak = status_mib("VmHWM")
    print(json.dumps({"frames": count, "baseline_mib": baseline, "peak_mib": peak,
                      "growth_mib": peak - baseline, "method": method}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")
def test_streaming_memory_is_bounded(tmp_path: Path, record_property) -> None:
    started = time.monotonic()
    source = tmp_path / "long.mp4"
    container = av.open(str(source), mode="w")
    stream = container.add_stream("libx264", rate=25)
    stream.width = stream.height = 256
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "ultrafast"}
    ramp = np.linspace(0, 255, 512).astype(np.uint8)
    red, green = np.tile(ramp[:256], (256, 1)), np.tile(ramp[::2][:, None], (1, 256))
    base = np.stack([red, green, np.zeros((256, 256), np.uint8)], -1)
    for k in range(2000):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(base, k, axis=1)), format="rgb24")
        frame.pts = k
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", _STREAM_SCRIPT, str(source), str(tmp_path / "copy.mp4")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    elapsed = time.monotonic() - started
    message = (
        f"streaming 2000 frames 256x256 mp4 -> mp4: peak RSS growth {report['growth_mib']:.1f} MiB "
        f"(baseline {report['baseline_mib']:.1f} MiB, peak {report['peak_mib']:.1f} MiB, "
        f"{report['method']}), "
        f"{elapsed:.1f} s"
    )
    print(message)
    record_property("peak_rss_growth_mib", round(report["growth_mib"], 1))
    assert report["frames"] == 2000
    assert count_frames(tmp_path / "copy.mp4") == 2000
    assert report["growth_mib"] < 150, message
