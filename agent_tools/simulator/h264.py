"""A tiny H.264 (AVC) encoder that emits only I_PCM macroblocks.

Why I_PCM: a PCM macroblock stores its 16×16 luma and two 8×8 chroma samples verbatim, so there is
no transform, prediction or entropy coding of residuals to get wrong, and the decoded picture is
bit-exact. The price is size (384 bytes per macroblock), which is fine for a few small frames.

The stream is Constrained Baseline, level 3.0, CAVLC, one slice per picture, every picture an IDR
(so every sample is a sync sample), ``pic_order_cnt_type`` 2 and the deblocking filter disabled.
Frame sizes that are not a multiple of 16 are coded padded and cropped in the SPS.

Samples are clamped to 1..255 by callers (``media.py`` uses video range 16..235/240): PCM bytes are
then never zero, so the only zero bytes in a slice sit in headers, and emulation prevention
(``escape``) stays cheap and obviously correct.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PROFILE_BASELINE = 66
CONSTRAINT_FLAGS = 0xC0  # constraint_set0_flag and constraint_set1_flag: Constrained Baseline
LEVEL_3_0 = 30
LOG2_MAX_FRAME_NUM = 4

NAL_SLICE_IDR = 5
NAL_SPS = 7
NAL_PPS = 8

MB_TYPE_I_PCM = 25  # in I slices
MB_BYTES = 16 * 16 + 2 * 8 * 8
MB_HEADER_ALIGNED = b"\x0d\x00"
"""ue(25) is the 9 bits 000011010; from a byte boundary plus 7 pcm_alignment_zero_bits that is 0D 00."""


class BitWriter:
    """MSB-first bit writer with the Exp-Golomb codes of H.264 §9.1."""

    def __init__(self) -> None:
        self._value = 0
        self._bits = 0

    def u(self, bits: int, value: int) -> None:
        if value < 0 or value >= 1 << bits:
            raise ValueError(f"{value} does not fit in {bits} bits")
        self._value = (self._value << bits) | value
        self._bits += bits

    def ue(self, value: int) -> None:
        """Unsigned Exp-Golomb: ``leading zeros`` then ``value + 1`` in binary."""
        code = value + 1
        length = code.bit_length()
        self.u(2 * length - 1, code)  # the high (length - 1) bits of a (2·length − 1)-bit field are 0

    def se(self, value: int) -> None:
        """Signed Exp-Golomb: 0, 1, −1, 2, −2 … map to 0, 1, 2, 3, 4 …"""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        if self._bits % 8:
            self.u(8 - self._bits % 8, 0)

    def trailing(self) -> None:
        """rbsp_trailing_bits: a stop bit, then zeros to the byte boundary."""
        self.u(1, 1)
        self.align_zero()

    @property
    def byte_aligned(self) -> bool:
        return self._bits % 8 == 0

    def to_bytes(self) -> bytes:
        if not self.byte_aligned:
            raise ValueError("not byte aligned")
        return self._value.to_bytes(self._bits // 8, "big")


_EMULATION = re.compile(rb"\x00\x00(?=[\x00-\x03])")


def escape(rbsp: bytes) -> bytes:
    """Insert emulation_prevention_three_byte after every 00 00 that precedes a byte ≤ 03 (§7.4.1)."""
    return _EMULATION.sub(b"\x00\x00\x03", rbsp)


def nal_unit(nal_type: int, rbsp: bytes, ref_idc: int = 3) -> bytes:
    """One NAL unit (header byte + escaped payload), without a start code or length prefix."""
    return bytes([(ref_idc << 5) | nal_type]) + escape(rbsp)


@dataclass(frozen=True)
class StreamFormat:
    """Picture geometry: display ``width``×``height``, coded in whole macroblocks."""

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError("width and height must be positive and even (4:2:0 cropping works in pairs)")

    @property
    def mb_cols(self) -> int:
        return (self.width + 15) // 16

    @property
    def mb_rows(self) -> int:
        return (self.height + 15) // 16

    @property
    def coded_width(self) -> int:
        return self.mb_cols * 16

    @property
    def coded_height(self) -> int:
        return self.mb_rows * 16

    def sps(self) -> bytes:
        """The sequence parameter set NAL unit (§7.3.2.1.1)."""
        w = BitWriter()
        w.u(8, PROFILE_BASELINE)
        w.u(8, CONSTRAINT_FLAGS)
        w.u(8, LEVEL_3_0)
        w.ue(0)  # seq_parameter_set_id
        w.ue(LOG2_MAX_FRAME_NUM - 4)
        w.ue(2)  # pic_order_cnt_type 2: output order = decode order, no POC syntax in slices
        w.ue(1)  # max_num_ref_frames
        w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
        w.ue(self.mb_cols - 1)
        w.ue(self.mb_rows - 1)  # pic_height_in_map_units_minus1 (frame_mbs_only)
        w.u(1, 1)  # frame_mbs_only_flag
        w.u(1, 1)  # direct_8x8_inference_flag
        crop_right = (self.coded_width - self.width) // 2  # CropUnitX = CropUnitY = 2 for 4:2:0 frames
        crop_bottom = (self.coded_height - self.height) // 2
        if crop_right or crop_bottom:
            w.u(1, 1)
            w.ue(0)
            w.ue(crop_right)
            w.ue(0)
            w.ue(crop_bottom)
        else:
            w.u(1, 0)
        w.u(1, 0)  # vui_parameters_present_flag: timing lives in the MP4
        w.trailing()
        return nal_unit(NAL_SPS, w.to_bytes())

    def pps(self) -> bytes:
        """The picture parameter set NAL unit (§7.3.2.2)."""
        w = BitWriter()
        w.ue(0)  # pic_parameter_set_id
        w.ue(0)  # seq_parameter_set_id
        w.u(1, 0)  # entropy_coding_mode_flag: CAVLC
        w.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
        w.ue(0)  # num_slice_groups_minus1
        w.ue(0)  # num_ref_idx_l0_default_active_minus1
        w.ue(0)  # num_ref_idx_l1_default_active_minus1
        w.u(1, 0)  # weighted_pred_flag
        w.u(2, 0)  # weighted_bipred_idc
        w.se(0)  # pic_init_qp_minus26
        w.se(0)  # pic_init_qs_minus26
        w.se(0)  # chroma_qp_index_offset
        w.u(1, 1)  # deblocking_filter_control_present_flag: lets slices switch the filter off
        w.u(1, 0)  # constrained_intra_pred_flag
        w.u(1, 0)  # redundant_pic_cnt_present_flag
        w.trailing()
        return nal_unit(NAL_PPS, w.to_bytes())

    def idr_slice(self, mb_stream: bytes, idr_pic_id: int) -> bytes:
        """An IDR picture as one I slice, from a macroblock stream made by ``macroblock_stream``.

        ``mb_stream`` is every macroblock as ``0D 00`` + 384 PCM bytes, in raster order; the first
        macroblock's type is instead written right after the slice header, which ends mid-byte.
        """
        expected = self.mb_cols * self.mb_rows * (len(MB_HEADER_ALIGNED) + MB_BYTES)
        if len(mb_stream) != expected:
            raise ValueError(f"macroblock stream has {len(mb_stream)} bytes, expected {expected}")
        w = BitWriter()
        w.ue(0)  # first_mb_in_slice
        w.ue(7)  # slice_type: I, and all slices of the picture are I
        w.ue(0)  # pic_parameter_set_id
        w.u(LOG2_MAX_FRAME_NUM, 0)  # frame_num: 0 for IDR pictures
        w.ue(idr_pic_id & 0xFFFF)  # consecutive IDR pictures must differ
        w.u(1, 0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
        w.u(1, 0)  # long_term_reference_flag
        w.se(0)  # slice_qp_delta
        w.ue(1)  # disable_deblocking_filter_idc: 1 = off, so PCM samples are shown as coded
        w.ue(MB_TYPE_I_PCM)
        w.align_zero()  # pcm_alignment_zero_bits
        rbsp = w.to_bytes() + mb_stream[len(MB_HEADER_ALIGNED):] + b"\x80"  # + rbsp_slice_trailing_bits
        return nal_unit(NAL_SLICE_IDR, rbsp)


def macroblock(y: bytes | bytearray, u: bytes | bytearray, v: bytes | bytearray, *, coded_width: int,
               mb_x: int, mb_y: int) -> bytes:
    """One macroblock as ``0D 00`` + its PCM samples, cut from full planes of ``coded_width``."""
    cw = coded_width // 2
    parts = [MB_HEADER_ALIGNED]
    base = mb_y * 16 * coded_width + mb_x * 16
    parts.extend(y[base + r * coded_width: base + r * coded_width + 16] for r in range(16))
    base = mb_y * 8 * cw + mb_x * 8
    parts.extend(u[base + r * cw: base + r * cw + 8] for r in range(8))
    parts.extend(v[base + r * cw: base + r * cw + 8] for r in range(8))
    return b"".join(parts)


def macroblock_stream(y: bytes | bytearray, u: bytes | bytearray, v: bytes | bytearray, *, coded_width: int,
                      mb_rows: Sequence[int] | range) -> bytes:
    """The macroblocks of the given macroblock rows of a picture, in raster order."""
    cols = coded_width // 16
    return b"".join(macroblock(y, u, v, coded_width=coded_width, mb_x=mx, mb_y=my)
                    for my in mb_rows for mx in range(cols))
