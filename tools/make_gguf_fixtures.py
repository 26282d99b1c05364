#!/usr/bin/env python3
"""Writes the GGUF reference fixtures in tests/fixtures/gguf/ with the PyPI `gguf`
package (an implementation independent of takumi: its GGUFWriter writes the files and
its numpy quantizers/dequantizers give the reference values).

Rerun from the repository root (needs: pip install gguf numpy):

    python3 tools/make_gguf_fixtures.py

Outputs (deterministic: fixed seeds; ~150 KB in all):
  meta.gguf   every metadata value type (all 12 scalars, arrays of each, array of
              strings incl. empty/UTF-8 ones, nested arrays), general.alignment = 64,
              a few small F32 tensors of 1..4 dims whose sizes force padding.
  meta.json   what meta.gguf must contain, in order: keys, types and values (64-bit
              integers as decimal strings, floats as exact hex strings), tensors with
              shapes (ggml order) and values.
  types.gguf  per dtype T, tensors "T.q" (the encoded data), "T.deq" (F32: gguf's numpy
              dequantization of T.q) and, where gguf can quantize T, "T.src" (F32 input
              with T.q = gguf.quants.quantize(T.src)). K types and Q8_K, which gguf cannot
              quantize, get random valid blocks (random bytes, sane f16/f32 scales).
  types.json  the list of dtypes in types.gguf and which ones carry a .src.
  models.json for the real models the tests open (models/SmolLM2-135M-Instruct.Q4_1.gguf,
              ../shared/models/stories260K/gguf/*.gguf), when present: what gguf's
              GGUFReader sees (version, every key with its type and scalar value or array
              length and a few elements, every tensor's name/type/shape/file offset) and
              gguf's dequantization of the first 64 values of one tensor of each dtype.
              Models that are absent keep their previous entry.

Notes on gguf-py as a reference:
  * Q8_1: gguf has no (de)quantizer, and its GGML_QUANT_SIZES still says 40 bytes per
    block (old float d/s); ggml's block_q8_1 is {f16 d, f16 s, int8 qs[32]} = 36 bytes.
    The script quantizes Q8_1 in numpy following ggml's quantize_row_q8_1_ref and passes
    a byte shape that makes the writer record the right element count.
  * Q8_K: gguf has no dequantizer; the reference is d * qs in numpy (float32).
"""
import json
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from gguf.quants import quantize, dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "gguf")

TYPE_NAMES = {V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
              V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string",
              V.ARRAY: "array", V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64"}


def jval(v, t):
    """A value as JSON: exact for every type (ints as strings, floats as hex)."""
    if t in (V.FLOAT32, V.FLOAT64):
        f = float(np.float32(v)) if t == V.FLOAT32 else float(v)
        return f.hex()
    if t == V.BOOL:
        return bool(v)
    if t == V.STRING:
        return v
    return str(int(v))


def infer_type(v):
    return gguf.GGUFValueType.get_type(v)


def jarr(vals, et):
    if et == V.ARRAY:
        return {"elem_type": "array", "values": [jarr(x, infer_type(x[0])) for x in vals]}
    return {"elem_type": TYPE_NAMES[et], "values": [jval(x, et) for x in vals]}


def make_meta():
    path = os.path.join(OUT, "meta.gguf")
    w = gguf.GGUFWriter(path, arch="takumi-test")
    kv = [("general.architecture", V.STRING, "takumi-test", None)]

    def add(key, t, val, sub=None):
        w.add_key_value(key, val, t, sub_type=sub)
        kv.append((key, t, val, sub))

    add("test.u8", V.UINT8, 250)
    add("test.i8", V.INT8, -100)
    add("test.u16", V.UINT16, 65535)
    add("test.i16", V.INT16, -32768)
    add("test.u32", V.UINT32, 4294967295)
    add("test.i32", V.INT32, -2147483648)
    add("test.f32", V.FLOAT32, 3.14159274101257324)
    add("test.bool_true", V.BOOL, True)
    add("test.bool_false", V.BOOL, False)
    add("test.string", V.STRING, "héllo, 世界 🙂")
    add("test.empty_string", V.STRING, "")
    add("test.u64", V.UINT64, 18446744073709551615)
    add("test.i64", V.INT64, -9223372036854775808)
    add("test.f64", V.FLOAT64, -2.718281828459045e-300)
    add("test.f32_tiny", V.FLOAT32, float(np.float32(1.4e-45)))
    rng = np.random.default_rng(7)
    add("test.arr_u8", V.ARRAY, [0, 1, 255], V.UINT8)
    add("test.arr_i8", V.ARRAY, [-128, 0, 127], V.INT8)
    add("test.arr_u16", V.ARRAY, [0, 65535], V.UINT16)
    add("test.arr_i16", V.ARRAY, [-32768, 32767], V.INT16)
    add("test.arr_u32", V.ARRAY, [0, 4294967295, 12345], V.UINT32)
    add("test.arr_i32", V.ARRAY, [int(x) for x in rng.integers(-2**31, 2**31 - 1, 40)], V.INT32)
    add("test.arr_f32", V.ARRAY, [float(np.float32(x)) for x in rng.standard_normal(33)], V.FLOAT32)
    add("test.arr_bool", V.ARRAY, [True, False, True], V.BOOL)
    add("test.arr_u64", V.ARRAY, [0, 18446744073709551615], V.UINT64)
    add("test.arr_i64", V.ARRAY, [-9223372036854775808, 9223372036854775807, -1], V.INT64)
    add("test.arr_f64", V.ARRAY, [1e308, -5e-324, 0.1], V.FLOAT64)
    toks = ["<unk>", "", "a", "Ġthe", "日本語", "🙂", "tab\there", "nul?", "x" * 300]
    toks += ["tok%05d" % i for i in range(300)]
    add("test.arr_str", V.ARRAY, toks, V.STRING)
    add("test.arr_nested", V.ARRAY, [[1, 2, 3], ["x", "yz"], [[0.5], [1.5, 2.5]], [True]], V.ARRAY)
    w.add_custom_alignment(64)
    kv.append(("general.alignment", V.UINT32, 64, None))

    tensors = []
    for name, shape in [("t.scalarish", (3,)), ("t.mat", (2, 5)), ("t.cube", (2, 3, 4)), ("t.4d", (1, 2, 1, 3))]:
        a = rng.standard_normal(shape).astype(np.float32)
        w.add_tensor(name, a)
        tensors.append({"name": name, "ggml_type": 0, "ne": list(reversed(shape)),
                        "values": [float(x).hex() for x in a.ravel()]})
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    out = []
    for key, t, val, sub in kv:
        e = {"key": key, "type": TYPE_NAMES[t]}
        if t == V.ARRAY:
            e.update(jarr(val, sub if sub is not None else infer_type(val[0])))
        else:
            e["value"] = jval(val, t)
        out.append(e)
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump({"version": 3, "alignment": 64, "kv": out, "tensors": tensors}, f, indent=1, ensure_ascii=False)
        f.write("\n")


def f16_bits(rng, shape, lo, hi):
    """Random f16 values with |x| in [lo, hi) and random sign, as raw uint16 bits."""
    mag = np.exp(rng.uniform(np.log(lo), np.log(hi), shape))
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float16).view(np.uint16)


def random_k_blocks(rng, qt, nb):
    """nb random but valid blocks of K type qt as a uint8 array [nb, type_size]."""
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    b = rng.integers(0, 256, (nb, ts), dtype=np.uint8)
    h = lambda lo, hi: f16_bits(rng, (nb,), lo, hi).view(np.uint8).reshape(nb, 2)
    if qt == Q.Q2_K:    # scales[16] qs[64] d dmin
        b[:, 80:82] = h(1e-3, 1.0); b[:, 82:84] = h(1e-3, 1.0)
    elif qt == Q.Q3_K:  # hmask[32] qs[64] scales[12] d
        b[:, 108:110] = h(1e-3, 1.0)
    elif qt in (Q.Q4_K, Q.Q5_K):  # d dmin scales[12] ...
        b[:, 0:2] = h(1e-3, 1.0); b[:, 2:4] = h(1e-3, 1.0)
    elif qt == Q.Q6_K:  # ql[128] qh[64] scales[16] d
        b[:, 208:210] = h(1e-3, 1.0)
    elif qt == Q.Q8_K:  # f32 d, qs[256], i16 bsums[16] (consistent with qs)
        d = rng.uniform(1e-4, 1e-1, nb).astype(np.float32) * np.where(rng.random(nb) < 0.5, -1, 1).astype(np.float32)
        b[:, 0:4] = d.view(np.uint8).reshape(nb, 4)
        qs = b[:, 4:260].view(np.int8).astype(np.int16)
        b[:, 260:292] = qs.reshape(nb, 16, 16).sum(axis=2).astype(np.int16).view(np.uint8).reshape(nb, 32)
    return b


def deq_q8_k(b):
    d = b[:, 0:4].copy().view(np.float32)
    qs = b[:, 4:260].view(np.int8).astype(np.float32)
    return (d * qs).astype(np.float32)


def quant_q8_1(x):
    """ggml quantize_row_q8_1_ref in numpy: d = amax/127, q = roundf(x/d), s = d*sum(q)."""
    blocks = x.reshape(-1, 32).astype(np.float32)
    d = (np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    qs = gguf.quants.np_roundf((blocks * idv).astype(np.float32)).astype(np.int8)
    s = (qs.astype(np.int32).sum(axis=1, keepdims=True).astype(np.float32) * d).astype(np.float32)
    out = np.concatenate([d.astype(np.float16).view(np.uint8), s.astype(np.float16).view(np.uint8),
                          qs.view(np.uint8)], axis=1)
    return out, (d.astype(np.float16).astype(np.float32) * qs.astype(np.float32)).astype(np.float32)


def quant_source(rng, rows, cols):
    """Realistic rows plus blocks that hit the quantizers' edge cases."""
    x = (rng.standard_normal((rows, cols)) * rng.uniform(0.01, 2.0, (rows, 1))).astype(np.float32)
    flat = x.reshape(-1, 32)
    flat[0] = 0                                   # all zero: d = 0, id = 0
    flat[1] = 0; flat[1][5] = -3.0                # a single (negative) value
    flat[2] = 1.25                                # constant block (q4_1/q5_1: max == min)
    flat[3] = np.arange(-16, 16) / 2.0            # halves: rounding ties
    flat[3][31] = 127.0
    flat[4] = np.linspace(-1e4, 3e4, 32)          # large values
    flat[5] = rng.standard_normal(32) * 1e-6      # tiny values (f16 subnormal scales)
    flat[6] = -np.abs(rng.standard_normal(32))    # all negative
    return x


def make_types():
    path = os.path.join(OUT, "types.gguf")
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(path, arch="takumi-test")
    entries = []

    def put(name, qbytes, qt, shape, deq, src=None, raw_shape=None):
        w.add_tensor(name + ".q", qbytes, raw_shape=raw_shape, raw_dtype=qt)
        w.add_tensor(name + ".deq", np.ascontiguousarray(deq.reshape(shape), dtype=np.float32))
        if src is not None:
            w.add_tensor(name + ".src", np.ascontiguousarray(src.reshape(shape), dtype=np.float32))
        entries.append({"name": name, "ggml_type": int(qt), "has_src": src is not None})

    rows, cols = 8, 64
    # Types gguf can quantize: T.q = quantize(T.src), T.deq = dequantize(T.q).
    for qt, name in [(Q.Q4_0, "q4_0"), (Q.Q4_1, "q4_1"), (Q.Q5_0, "q5_0"), (Q.Q5_1, "q5_1"),
                     (Q.Q8_0, "q8_0"), (Q.BF16, "bf16")]:
        src = quant_source(rng, rows, cols)
        qb = quantize(src, qt)
        put(name, qb, qt, (rows, cols), dequantize(qb, qt), src)
    # F16 through numpy's own conversion (gguf.quants.quantize does exactly astype).
    src = quant_source(rng, rows, cols)
    src.reshape(-1)[-8:] = [65504.0, 65519.0, 65520.0, 1e-8, 5.9604645e-08, 2.9802322e-08, 3e-08, -0.0]
    with np.errstate(over="ignore"):
        qb = quantize(src, Q.F16)
    put("f16", qb.view(np.uint8).reshape(rows, cols * 2), Q.F16, (rows, cols),
        dequantize(qb.view(np.uint8), Q.F16), src, raw_shape=(rows, cols * 2))
    # Q8_1: numpy reference (see the header).
    src = quant_source(rng, rows, cols)
    qb, deq = quant_q8_1(src)
    nb = rows * cols // 32
    put("q8_1", qb.reshape(rows, -1), Q.Q8_1, (rows, cols), deq, src, raw_shape=(rows, cols // 32 * 40))
    # F16 / BF16 from random bit patterns: every exponent incl. subnormals, inf and NaN.
    for qt, name in [(Q.F16, "f16_bits"), (Q.BF16, "bf16_bits")]:
        bits = rng.integers(0, 65536, (4, 64), dtype=np.uint16)
        bits.reshape(-1)[:6] = [0x0000, 0x8000, 0x0001, 0x7C00 if qt == Q.F16 else 0x7F80, 0xFC00 if qt == Q.F16 else 0xFF80, 0x03FF]
        qb = bits.view(np.uint8)
        deq = dequantize(qb, qt)
        put(name, qb, qt, (4, 64), deq, raw_shape=(4, 128))
    # Plain types.
    a64 = rng.standard_normal((3, 16)) * 1e3
    a64.reshape(-1)[:3] = [1e300, -1e-300, 3.4028235677973366e38]   # out of f32 range -> inf, 0, rounding
    put("f64", a64.astype(np.float64).view(np.uint8), Q.F64, (3, 16), a64.astype(np.float32), raw_shape=(3, 128))
    f32 = rng.standard_normal((3, 16)).astype(np.float32)
    put("f32", f32.view(np.uint8), Q.F32, (3, 16), f32, raw_shape=(3, 64))
    for qt, name, dt in [(Q.I8, "i8", np.int8), (Q.I16, "i16", np.int16), (Q.I32, "i32", np.int32), (Q.I64, "i64", np.int64)]:
        info = np.iinfo(dt)
        v = rng.integers(info.min, info.max, (2, 16), dtype=dt, endpoint=True)
        v.reshape(-1)[:2] = [info.min, info.max]
        put(name, v.view(np.uint8), qt, (2, 16), v.astype(np.float32), raw_shape=(2, 16 * v.itemsize))
    # K types and Q8_K: random valid blocks.
    for qt, name in [(Q.Q2_K, "q2_k"), (Q.Q3_K, "q3_k"), (Q.Q4_K, "q4_k"), (Q.Q5_K, "q5_k"), (Q.Q6_K, "q6_k"),
                     (Q.Q8_K, "q8_k")]:
        nb = 8
        blocks = random_k_blocks(rng, qt, nb)
        deq = deq_q8_k(blocks) if qt == Q.Q8_K else dequantize(blocks, qt)
        put(name, blocks.reshape(2, -1), qt, (2, 4 * 256), deq)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(OUT, "types.json"), "w") as f:
        json.dump({"types": entries}, f, indent=1)
        f.write("\n")


ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODELS = [("models/SmolLM2-135M-Instruct.Q4_1.gguf", os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf")),
          ("shared:models/stories260K/gguf/stories260K-f16.gguf",
           os.path.join(ROOT, "../shared/models/stories260K/gguf/stories260K-f16.gguf")),
          ("shared:models/stories260K/gguf/stories260K-f32.gguf",
           os.path.join(ROOT, "../shared/models/stories260K/gguf/stories260K-f32.gguf"))]


def field_json(f):
    t = V(f.types[0])
    e = {"key": f.name, "type": TYPE_NAMES[t]}
    if t == V.ARRAY:
        et = V(f.types[1]) if len(f.types) > 1 else V.UINT8
        n = len(f.data)
        e["elem_type"] = TYPE_NAMES[et]
        e["n"] = n
        if et != V.ARRAY:
            idx = sorted(set(i for i in [0, 1, 2, n // 2, n - 2, n - 1] if 0 <= i < n))
            vals = f.contents()
            e["samples"] = [[i, jval(vals[i], et)] for i in idx]
    else:
        e["value"] = jval(f.contents(), t)
    return e


def make_models():
    path = os.path.join(OUT, "models.json")
    old = {}
    if os.path.exists(path):
        with open(path) as fh:
            old = {m["path"]: m for m in json.load(fh)["models"]}
    models = []
    for rel, full in MODELS:
        if not os.path.exists(full):
            if rel in old:
                models.append(old[rel])
            continue
        r = gguf.GGUFReader(full)
        m = {"path": rel, "size": os.path.getsize(full), "version": int(r.fields["GGUF.version"].contents()),
             "alignment": int(r.alignment), "data_offset": int(r.data_offset),
             "kv": [field_json(f) for f in r.fields.values() if not f.name.startswith("GGUF.")], "tensors": [],
             "samples": []}
        seen = set()
        for t in r.tensors:
            m["tensors"].append({"name": t.name, "ggml_type": int(t.tensor_type),
                                 "ne": [int(x) for x in t.shape], "offset": int(t.data_offset)})
            if int(t.tensor_type) not in seen:
                seen.add(int(t.tensor_type))
                flat = np.asarray(t.data).reshape(-1).view(np.uint8)
                bs, ts = gguf.GGML_QUANT_SIZES[t.tensor_type]
                nbytes = 64 // bs * ts if bs > 1 else 64 * ts
                deq = dequantize(flat[:nbytes].copy().reshape(1, -1), t.tensor_type).reshape(-1)[:64]
                m["samples"].append({"name": t.name, "values": [float(x).hex() for x in deq]})
        models.append(m)
    with open(path, "w") as fh:
        json.dump({"models": models}, fh, indent=0, ensure_ascii=False)
        fh.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    with np.errstate(over="ignore"):
        make_meta()
        make_types()
    make_models()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
