#!/usr/bin/env python3
"""Writes image K of an IDX image file (MNIST's format, unsigned bytes, N x H x W) as an 8-bit
greyscale PNG, with the standard library only: the picture tests/cli_web.sh and
bench/web_1989.sh drop on the web page.

  idx_image_png.py IMAGES-idx3-ubyte K OUT.png
"""
import struct
import sys
import zlib

path, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b = open(path, "rb").read()
n, h, w = struct.unpack(">III", b[4:16])
if not 0 <= k < n:
    sys.exit(f"{path}: image {k} requested, the file has {n}")
px = b[16 + k * h * w: 16 + (k + 1) * h * w]
raw = b"".join(b"\0" + px[y * w:(y + 1) * w] for y in range(h))  # filter 0 per row


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


open(out, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                      + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
