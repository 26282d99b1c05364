#!/usr/bin/env python3
"""Writes examples/support/policy.pdf from policy.md: a plain text PDF (Helvetica, WinAnsi
encoding, standard library only) so that `takumi data synth` can be run on a PDF of the same
policy. Headings are set larger; characters outside WinAnsi (the shop's Japanese name) are left
out. Usage: python3 examples/support/make_policy_pdf.py [policy.md] [policy.pdf]"""
import sys, textwrap, os

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "policy.md")
dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "policy.pdf")

def winansi(s):
    out = bytearray()
    for ch in s:
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            pass
    return bytes(out).replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")

lines = []  # (size, text)
para = []
def flush():
    if para:
        text = " ".join(para).replace(" (花森サイクル)", "")
        for w in textwrap.wrap(text, 90, break_long_words=False):
            lines.append((11, w))
        para.clear()
for raw in open(src, encoding="utf-8").read().splitlines():
    s = raw.strip()
    if s.startswith("#"):
        flush()
        level = len(s) - len(s.lstrip("#"))
        lines += [(0, ""), (18 if level == 1 else 14, s.lstrip("#").strip()), (0, "")]
    elif not s:
        flush()
        lines.append((0, ""))
    elif s.startswith("- "):
        flush()
        para.append(s)
    else:
        para.append(s)
flush()

pages, page, y = [], [], 740
for size, text in lines:
    step = 16 if size == 0 else size + 5
    if y - step < 60:
        pages.append(page); page, y = [], 740
    y -= step
    if size:
        page.append(b"BT /F1 %d Tf 60 %d Td (%s) Tj ET" % (size, y, winansi(text)))
pages.append(page)

objs = [b"<< /Type /Catalog /Pages 2 0 R >>", None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
kids = []
for p in pages:
    content = b"\n".join(p)
    objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 3 0 R >> >> >>" % (len(objs)))
    kids.append(len(objs))
objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
out = bytearray(b"%PDF-1.4\n")
offsets = []
for i, o in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n%s\nendobj\n" % (i, o)
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
out += b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(dst, "wb").write(out)
print(f"{dst}: {len(pages)} pages")
