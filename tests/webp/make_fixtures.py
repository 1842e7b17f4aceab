"""Writes the WebP files tests/test_webp.cpp reads, with Pillow (its own libwebp, not Debian's
that kiln links), and the pixels Pillow decodes from the lossy ones (*.rgb, *.rgba: raw
interleaved bytes, row-major). Run from this folder with a Python that has Pillow with WebP:
  $KILN_VENV/bin/python make_fixtures.py
The lossless pixels follow formulas that the test computes itself (kept in step with it)."""
import io
import struct

from PIL import Image, features

assert features.check("webp"), "this Pillow has no WebP"
print("Pillow's libwebp:", features.version("webp"))


def rgb(x, y):  # the lossless pictures' colour at (x, y): tests/test_webp.cpp's rgb_at
    return (30 * x + 7, 40 * y + 3, (11 * x * y) % 256)


def picture(w, h, alpha=False):
    im = Image.new("RGBA" if alpha else "RGB", (w, h))
    for y in range(h):
        for x in range(w):
            im.putpixel((x, y), rgb(x, y) + ((20 + 30 * x + 5 * y) % 256,) if alpha else rgb(x, y))
    return im


def smooth(w, h, alpha=False):  # what lossy coding keeps close: gradients
    im = Image.new("RGBA" if alpha else "RGB", (w, h))
    for y in range(h):
        for x in range(w):
            c = (8 * x + 60, 10 * y + 40, 200 - 5 * x - 4 * y)
            im.putpixel((x, y), c + (255 - 12 * x,) if alpha else c)
    return im


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
