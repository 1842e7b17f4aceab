#!/usr/bin/env python3
"""Writes image K of an IDX image file (MNIST's format, unsigned bytes, N x H x W) as an 8-bit
greyscale PNG, or of a CIFAR binary batch (records of a label byte then 3 x 32 x 32 planar
bytes) as an 8-bit RGB PNG, with the standard library only: the picture tests/cli_web.sh and
bench/web_1989.sh drop on the web page.

  idx_image_png.py IMAGES-idx3-ubyte K OUT.png
  idx_image_png.py --cifar test_batch.bin K OUT.png [--enlarge W H] [--alpha-ramp]

--enlarge W H: resized to W x H by nearest neighbour; --alpha-ramp: RGBA, alpha falling from 255
on the first row to 135 on the last (a picture of another size with transparency, CIFAR only).
"""
import struct
import sys
import zlib

args = sys.argv[1:]
size = None
if "--enlarge" in args:
    i = args.index("--enlarge")
    size = (int(args[i + 1]), int(args[i + 2]))
    del args[i:i + 3]
ramp = "--alpha-ramp" in args
if ramp:
    args.remove("--alpha-ramp")
cifar = args[0] == "--cifar"
if (size or ramp) and not cifar:
    sys.exit("--enlarge and --alpha-ramp are for CIFAR images")
path, k, out = args[cifar], int(args[1 + cifar]), args[2 + cifar]
b = open(path, "rb").read()
if cifar:
    h = w = 32
    rec = 1 + 3 * h * w
    n = len(b) // rec
    if len(b) % rec:
        sys.exit(f"{path}: not a CIFAR binary batch ({len(b)} bytes is not a whole number of {rec}-byte records)")
else:
    n, h, w = struct.unpack(">III", b[4:16])
if not 0 <= k < n:
    sys.exit(f"{path}: image {k} requested, the file has {n}")
if cifar:
    planes = b[k * rec + 1: (k + 1) * rec]
    W, H = size or (w, h)
    src = lambda y, x, c: planes[c * h * w + (y * h // H) * w + (x * w // W)]  # nearest neighbour
    alpha = (lambda y: [255 - 120 * y // (H - 1)]) if ramp else (lambda y: [])
    px = bytes(v for y in range(H) for x in range(W) for v in [src(y, x, 0), src(y, x, 1), src(y, x, 2)] + alpha(y))
    h, w = H, W
    row, colour = (4 if ramp else 3) * w, 6 if ramp else 2
else:
    px = b[16 + k * h * w: 16 + (k + 1) * h * w]
    row, colour = w, 0
raw = b"".join(b"\0" + px[y * row:(y + 1) * row] for y in range(h))  # filter 0 per row


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                      + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
