"""An ISO-BMFF (MP4) muxer for one H.264 video track, written with ``struct`` only.

Layout: ``ftyp``, then ``moov`` before ``mdat`` ("fast start", so a browser can play while it
downloads), one chunk holding every sample, samples as 4-byte-length-prefixed NAL units and the
SPS/PPS in ``avcC``. Box order follows ISO/IEC 14496-12 so ffprobe and browsers read it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANGUAGE_UND = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)
MOVIE_TIMESCALE = 1000


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def avcc(sps: bytes, pps: bytes) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3) from SPS/PPS NAL units."""
    return box(
        b"avcC",
        # version, profile, compatibility, level, 4-byte NAL lengths, one SPS
        bytes([1, sps[1], sps[2], sps[3], 0xFC | 3, 0xE0 | 1]),
        struct.pack(">H", len(sps)), sps,
        bytes([1]), struct.pack(">H", len(pps)), pps,
    )


def _avc1(width: int, height: int, sps: bytes, pps: bytes) -> bytes:
    compressor = b"videogen simulator"
    return box(
        b"avc1",
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16),  # pre_defined, reserved, pre_defined[3]
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
        bytes(4), struct.pack(">H", 1),  # reserved, frame_count
        bytes([len(compressor)]) + compressor.ljust(31, b"\x00"),
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        avcc(sps, pps),
    )


def _moov(*, width: int, height: int, sps: bytes, pps: bytes, sizes: Sequence[int], timescale: int,
          sample_delta: int, chunk_offset: int) -> bytes:
    count = len(sizes)
    media_duration = count * sample_delta
    movie_duration = media_duration * MOVIE_TIMESCALE // timescale
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, MOVIE_TIMESCALE, movie_duration),
                    struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _MATRIX, bytes(24), struct.pack(">I", 2))
    tkhd = full_box(b"tkhd", 0, 0x000003, struct.pack(">IIIII", 0, 0, 1, 0, movie_duration), bytes(8),
                    struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX, struct.pack(">II", width << 16, height << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, media_duration),
                    struct.pack(">HH", _LANGUAGE_UND, 0))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(width, height, sps, pps)),
        full_box(b"stts", 0, 0, struct.pack(">III", 1, count, sample_delta)),
        full_box(b"stss", 0, 0, struct.pack(f">I{count}I", count, *range(1, count + 1))),  # every frame is IDR
        full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),  # one chunk with all samples
        full_box(b"stsz", 0, 0, struct.pack(f">II{count}I", 0, count, *sizes)),
        full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
    )
    minf = box(b"minf", vmhd, dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    return box(b"moov", mvhd, trak)


def mux(*, width: int, height: int, sps: bytes, pps: bytes, samples: Sequence[Sequence[bytes]], fps: int) -> bytes:
    """An MP4 file from ``samples`` (each a list of NAL units without start codes) at ``fps``."""
    if not samples:
        raise ValueError("an MP4 needs at least one sample")
    encoded = [b"".join(struct.pack(">I", len(nal)) + nal for nal in nals) for nals in samples]
    sizes = [len(s) for s in encoded]
    timescale, delta = fps * 1000, 1000
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    # moov's size does not depend on the offset value, so measure it once with a placeholder.
    moov_size = len(_moov(width=width, height=height, sps=sps, pps=pps, sizes=sizes, timescale=timescale,
                          sample_delta=delta, chunk_offset=0))
    offset = len(ftyp) + moov_size + 8
    moov = _moov(width=width, height=height, sps=sps, pps=pps, sizes=sizes, timescale=timescale,
                 sample_delta=delta, chunk_offset=offset)
    mdat_body = b"".join(encoded)
    return ftyp + moov + struct.pack(">I", 8 + len(mdat_body)) + b"mdat" + mdat_body
