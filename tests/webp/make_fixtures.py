"""Writes the WebP files tests/test_webp.cpp reads, with Pillow (its own libwebp, not Debian's
that kiln links), and the pixels Pillow decodes from the lossy ones (*.rgb, *.rgba: raw
interleaved bytes, row-major). Run from this folder with a Python that has Pillow with WebP:
  $KILN_VENV/bin/python make_fixtures.py
The lossless pictures are tests/fixture_pictures.py's, whose formula the test computes itself."""
import io
import os
import struct
import sys

from PIL import Image, features

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fixture_pictures import picture, rgb, smooth  # noqa: E402

assert features.check("webp"), "this Pillow has no WebP"
print("Pillow's libwebp:", features.version("webp"))


def save(im, name, **kw):
    im.save(name, "WEBP", **kw)
    return open(name, "rb").read()


def chunks(b):
    at, out = 12, []
    while at + 8 <= len(b):
        n = struct.unpack_from("<I", b, at + 4)[0]
        out.append((b[at:at + 4].decode(), n))
        at += 8 + n + (n & 1)
    return out


save(picture(7, 5), "rgb-lossless.webp", lossless=True, exact=True)
save(picture(7, 5, alpha=True), "rgba-lossless.webp", lossless=True, exact=True)
for alpha, name in ((False, "rgb-lossy"), (True, "rgba-lossy")):
    save(smooth(16, 12, alpha), name + ".webp", quality=80)
    im = Image.open(name + ".webp")
    assert im.mode == ("RGBA" if alpha else "RGB"), im.mode
    open(name + (".rgba" if alpha else ".rgb"), "wb").write(im.tobytes())
# an animation of two 7 x 5 frames: the first the lossless picture, the second its negative
first = picture(7, 5)
second = Image.eval(first, lambda v: 255 - v)
first.save("animated.webp", "WEBP", save_all=True, append_images=[second], lossless=True, exact=True, duration=100)
# EXIF orientation 6 (turn 90 degrees clockwise), which a browser does not apply to a WebP
exif = Image.Exif()
exif[0x0112] = 6
save(picture(3, 5), "exif-turned.webp", lossless=True, exact=True, exif=exif)
# a 20 KiB ICC profile before the pixels (libwebp does not read it; the header pass must reach past it)
save(picture(7, 5), "big-icc.webp", lossless=True, exact=True, icc_profile=bytes(range(256)) * 80)
for f in ("rgb-lossless", "rgba-lossless", "rgb-lossy", "rgba-lossy", "animated", "exif-turned", "big-icc"):
    b = open(f + ".webp", "rb").read()
    print(f"{f}.webp: {len(b)} bytes, chunks {chunks(b)}")
