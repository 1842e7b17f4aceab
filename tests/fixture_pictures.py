"""The pictures of the image fixtures (tests/webp/, tests/heif/; their make_fixtures.py import this):
`picture`, the lossless ones, whose formula tests/helpers.h's fixture_picture computes too (kept in
step with it), and `smooth`, gradients for the lossy ones (what lossy coding keeps close)."""
from PIL import Image


def rgb(x, y):  # the lossless pictures' colour at (x, y), mod 256 as the test's uint8_t
    return ((30 * x + 7) % 256, (40 * y + 3) % 256, (11 * x * y) % 256)


def picture(w, h, alpha=False):
    im = Image.new("RGBA" if alpha else "RGB", (w, h))
    im.putdata([rgb(x, y) + ((20 + 30 * x + 5 * y) % 256,) if alpha else rgb(x, y) for y in range(h) for x in range(w)])
    return im


def smooth(w, h, alpha=False):
    im = Image.new("RGBA" if alpha else "RGB", (w, h))
    for y in range(h):
        for x in range(w):
            c = (8 * x + 60, 10 * y + 40, 200 - 5 * x - 4 * y)
            im.putpixel((x, y), c + (255 - 12 * x,) if alpha else c)
    return im
