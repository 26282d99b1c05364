#!/usr/bin/env python3
"""bitsandbytes reference for takumi's NF4 (tests/test_nf4.c).

bitsandbytes (PyPI, CPU build) quantizes a [65, 256] f32 tensor with
quantize_4bit(blocksize=64, compress_statistics=True, quant_type="nf4"): the NF4 codebook,
an absmax per 64 values, and double quantization (the absmax values minus their mean,
quantized with the signed 8-bit dynamic map in blocks of 256). 260 blocks make two groups
of the second level, the last one partial; block 3 is all zeros.

The input is not stored: both sides compute it from the integer generator in gen() (every
value is a 13-bit integer times a power of two, so exact in f32 everywhere).

Written into tests/fixtures/quant/nf4_bnb.safetensors:
  codes      i8 [8320]  packed 4-bit codes (element 2j in the high nibble of byte j; uint8 bits)
  absmax_q   i8 [260]   the 8-bit codes of the block scales (uint8 bits)
  absmax2    f32 [2]    the second-level scales (one per 256 blocks)
  offset     f32 [1]    the mean subtracted before the second level
  code2      f32 [256]  bitsandbytes' dynamic map (the second level's codebook)
  nf4        f32 [16]   the NF4 codebook
  scale      f32 [260]  the block scales after undoing the double quantization
  deq_index  i32 [1040], deq f32 [1040]: dequantize_4bit at every 16th element

Usage: python3 tools/make_nf4_reference.py   (pip install bitsandbytes==0.50.2)
"""
import os

import torch
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "quant", "nf4_bnb.safetensors")
ROWS, COLS = 65, 256


def gen(n):
    """The test input: LCG (Numerical Recipes constants) over uint32; x_i = (a + b - 4095) * 2^-12
    * 2^((i / 64) % 9 - 4) with a, b the low 12 bits of two successive states; block 3 is zero."""
    s = 12345
    out = []
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        a = (s >> 8) & 4095
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        b = (s >> 8) & 4095
        blk = i // 64
        v = (a + b - 4095) * 2.0 ** -12 * 2.0 ** ((blk % 9) - 4)
        out.append(0.0 if blk == 3 else v)
    return out


def main():
    import bitsandbytes
    import bitsandbytes.functional as F
    x = torch.tensor(gen(ROWS * COLS), dtype=torch.float32).reshape(ROWS, COLS)
    q, st = F.quantize_4bit(x, blocksize=64, compress_statistics=True, quant_type="nf4")
    y = F.dequantize_4bit(q, st)
    scale = F.dequantize_blockwise(st.absmax, st.state2) + st.offset
    idx = torch.arange(0, ROWS * COLS, 16, dtype=torch.int32)
    t = {
        "codes": q.reshape(-1).contiguous().view(torch.int8),
        "absmax_q": st.absmax.reshape(-1).contiguous().view(torch.int8),
        "absmax2": st.state2.absmax.float().reshape(-1).contiguous(),
        "offset": st.offset.float().reshape(1).contiguous(),
        "code2": st.state2.code.float().contiguous(),
        "nf4": st.code.float().contiguous(),
        "scale": scale.float().reshape(-1).contiguous(),
        "deq_index": idx,
        "deq": y.reshape(-1)[idx.long()].contiguous(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(t, OUT, metadata={"bitsandbytes": bitsandbytes.__version__, "torch": torch.__version__,
                                "rows": str(ROWS), "cols": str(COLS)})
    print("wrote", OUT, "max |x - deq| =", float((x - y).abs().max()))


if __name__ == "__main__":
    main()
