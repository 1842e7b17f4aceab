"""Writes the HEIF and AVIF files tests/test_heif.cpp reads, with encoders other than Debian's libheif
that kiln links: the HEIC files by pillow-heif (its own libheif 1.23 with x265), the AVIF files by
Pillow's own AVIF plugin (libavif with libaom); and the pixels those packages decode from the lossy
ones (*.rgb, *.rgba: raw interleaved bytes, row-major, as the picture is shown). Run from this
folder with a Python that has Pillow >= 11.3 and pillow-heif (neither is a dependency of kiln):
  python3 -m venv /tmp/hv && /tmp/hv/bin/pip install pillow-heif==1.9.0 && /tmp/hv/bin/python make_fixtures.py
The lossless pictures are tests/fixture_pictures.py's, whose formula the test computes itself."""
import os
import sys

import pillow_heif
from PIL import Image, ImageOps, features

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fixture_pictures import picture, rgb, smooth  # noqa: E402

assert features.check("avif"), "this Pillow has no AVIF"
pillow_heif.register_heif_opener()
print("Pillow", Image.__version__, "libavif", features.version("avif"), "pillow-heif", pillow_heif.__version__, pillow_heif.libheif_info())


def decoded(name, mode):  # the pixels as the other decoder shows them (EXIF orientation applied)
    im = ImageOps.exif_transpose(Image.open(name))
    assert im.mode == mode, (name, im.mode)
    open(name.replace(".", "-") + (".rgba" if mode == "RGBA" else ".rgb"), "wb").write(im.tobytes())
    return im


# Lossless HEIC: x265's lossless mode, 4:4:4, the identity matrix (RGB coded as is).
LOSSLESS = dict(quality=-1, chroma=444, matrix_coefficients=0)
picture(7, 5).save("rgb-lossless.heic", "HEIF", **LOSSLESS)
picture(7, 5, alpha=True).save("rgba-lossless.heic", "HEIF", **LOSSLESS)
grey = Image.new("L", (7, 5))
grey.putdata([(30 * x + 7 + 40 * y) % 256 for y in range(5) for x in range(7)])
grey.save("grey-lossless.heic", "HEIF", quality=-1)
# A grid of 32 x 32 tiles, as phones write their photos (in 512 x 512 tiles): 70 x 40 in 3 x 2
# tiles, the last column and row cut to fit; lossless.
grid = Image.new("RGB", (70, 40))
grid.putdata([rgb(x, y) for y in range(40) for x in range(70)])
grid.save("grid-lossless.heic", "HEIF", tile_size=32, **LOSSLESS)
assert b"grid" in open("grid-lossless.heic", "rb").read()
# Lossy, as phones write them: 4:2:0, an even and an odd size.
smooth(16, 12).save("rgb-lossy.heic", "HEIF", quality=80)
smooth(15, 11).save("rgb-lossy-odd.heic", "HEIF", quality=80)
decoded("rgb-lossy.heic", "RGB")
decoded("rgb-lossy-odd.heic", "RGB")
# 10 bits a sample (from 16-bit samples); the other decoder reduces it to 8 bits.
deep = pillow_heif.from_bytes(mode="RGB;16", size=(16, 12), data=b"".join(
    int(v * 257).to_bytes(2, "little") for y in range(12) for x in range(16) for v in (8 * x + 60, 10 * y + 40, 200 - 5 * x - 4 * y)))
deep.save("rgb-10bit.heic", quality=90, chroma=444)
decoded("rgb-10bit.heic", "RGB")
# AVIF: 4:4:4 without alpha, 4:2:0 with.
smooth(16, 12).save("rgb-lossy.avif", "AVIF", quality=80, subsampling="4:4:4")
smooth(16, 12, alpha=True).save("rgba-lossy.avif", "AVIF", quality=80, subsampling="4:2:0")
decoded("rgb-lossy.avif", "RGB")
decoded("rgba-lossy.avif", "RGBA")
# EXIF orientation 6 (turn 90 degrees clockwise): Pillow's AVIF plugin writes it as the file's own
# rotation ('irot'), which HEIF readers apply.
exif = Image.Exif()
exif[0x0112] = 6
picture(3, 5).save("turned.avif", "AVIF", quality=100, subsampling="4:4:4", exif=exif)
assert b"irot" in open("turned.avif", "rb").read()
assert decoded("turned.avif", "RGB").size == (5, 3)
for f in ("rgb-lossless.heic", "rgba-lossless.heic", "grey-lossless.heic", "grid-lossless.heic", "rgb-lossy.heic", "rgb-lossy-odd.heic", "rgb-10bit.heic",
          "rgb-lossy.avif", "rgba-lossy.avif", "turned.avif"):
    b = open(f, "rb").read()
    print(f"{f}: {len(b)} bytes, major brand {b[8:12].decode()}")
