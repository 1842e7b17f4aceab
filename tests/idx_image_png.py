#!/usr/bin/env python3
"""Writes image K of an IDX image file (MNIST's format, unsigned bytes, N x H x W) as an 8-bit
greyscale PNG, or of a CIFAR binary batch (records of a label byte then 3 x 32 x 32 planar
bytes) as an 8-bit RGB PNG, with the standard library only: the picture tests/cli_web.sh and
bench/web_1989.sh drop on the web page.

  idx_image_png.py IMAGES-idx3-ubyte K OUT.png
  idx_image_png.py --cifar test_batch.bin K OUT.png
"""
import struct
import sys
import zlib

cifar = sys.argv[1] == "--cifar"
path, k, out = sys.argv[1 + cifar], int(sys.argv[2 + cifar]), sys.argv[3 + cifar]
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
    px = bytes(planes[c * h * w + i] for i in range(h * w) for c in range(3))  # planar -> interleaved RGB
    row, colour = 3 * w, 2
else:
    px = b[16 + k * h * w: 16 + (k + 1) * h * w]
    row, colour = w, 0
raw = b"".join(b"\0" + px[y * row:(y + 1) * row] for y in range(h))  # filter 0 per row


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                      + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
