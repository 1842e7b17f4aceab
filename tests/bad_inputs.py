#!/usr/bin/env python3
"""kiln's bad-input corpus: every case builds a small broken input, runs kiln on it, and asserts
a clean refusal: exit status 2 (no signal, no abort), a message on stderr that names the file or
key and the problem, and no output directory left behind. Needs only kiln and Python.

usage: bad_inputs.py KILN_BINARY [--list]
"""
import gzip, os, shutil, struct, subprocess, sys, tempfile

kiln = sys.argv[1]
root = tempfile.mkdtemp(prefix="kiln-bad-")
cases = []


def case(name):
    def wrap(fn):
        cases.append((name, fn))
        return fn
    return wrap


def cifar_file(path, n=2, label=3, extra=b""):
    with open(path, "wb") as f:
        for i in range(n):
            f.write(bytes([label]) + bytes((j * (i + 1)) % 256 for j in range(3072)))
        f.write(extra)


def cifar_dir(d):
    os.makedirs(d, exist_ok=True)
    for i in range(1, 6):
        cifar_file(os.path.join(d, f"data_batch_{i}.bin"))
    cifar_file(os.path.join(d, "test_batch.bin"))


def idx_images(n, h=4, w=4, magic=2051):
    return struct.pack(">IIII", magic, n, h, w) + bytes(range(n * h * w % 256)) * 0 + bytes(i % 256 for i in range(n * h * w))


def idx_labels(n, magic=2049, value=1):
    return struct.pack(">II", magic, n) + bytes([value] * n)


def mnist_dir(d, tri=None, trl=None, tei=None, tel=None, gz=False):
    os.makedirs(d, exist_ok=True)
    files = {"train-images-idx3-ubyte": tri if tri is not None else idx_images(3),
             "train-labels-idx1-ubyte": trl if trl is not None else idx_labels(3),
             "t10k-images-idx3-ubyte": tei if tei is not None else idx_images(2),
             "t10k-labels-idx1-ubyte": tel if tel is not None else idx_labels(2)}
    for k, v in files.items():
        if gz:
            with gzip.open(os.path.join(d, k + ".gz"), "wb") as f:
                f.write(v)
        else:
            with open(os.path.join(d, k), "wb") as f:
                f.write(v)


def png_1x1():
    import zlib
    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)
    raw = b"\x00\xff\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def folder_dir(d, classes=("a", "b"), per=2, image=None, empty_classes=False):
    for split in ("train", "test"):
        for c in classes:
            p = os.path.join(d, split, c)
            os.makedirs(p, exist_ok=True)
            if empty_classes:
                continue
            for i in range(per):
                with open(os.path.join(p, f"{i}.png"), "wb") as f:
                    f.write(png_1x1())
    if image is not None:
        with open(os.path.join(d, "train", classes[0], "bad.png"), "wb") as f:
            f.write(image)


def preset_file(d, text):
    p = os.path.join(d, "bad.toml")
    with open(p, "w") as f:
        f.write(text)
    return p


# ---- CIFAR-10 binary -------------------------------------------------------------------
@case("cifar: truncated file")
def _(d):
    cifar_dir(d + "/cifar10")
    cifar_file(d + "/cifar10/data_batch_3.bin", extra=b"\x01" * 100)
    return ["data", "info", "cifar10", "--data", d], ["data_batch_3.bin", "truncated"]

@case("cifar: empty file")
def _(d):
    cifar_dir(d + "/cifar10")
    open(d + "/cifar10/test_batch.bin", "wb").close()
    return ["data", "info", "cifar10", "--data", d], ["test_batch.bin", "0 bytes"]

@case("cifar: a batch missing")
def _(d):
    cifar_dir(d + "/cifar10")
    os.remove(d + "/cifar10/data_batch_4.bin")
    return ["data", "info", "cifar10", "--data", d], ["data_batch_4.bin", "missing"]

@case("cifar: directory instead of file")
def _(d):
    cifar_dir(d + "/cifar10")
    os.remove(d + "/cifar10/data_batch_2.bin")
    os.makedirs(d + "/cifar10/data_batch_2.bin")
    return ["data", "info", "cifar10", "--data", d], ["data_batch_2.bin", "directory"]

@case("cifar: label out of range")
def _(d):
    cifar_dir(d + "/cifar10")
    cifar_file(d + "/cifar10/data_batch_5.bin", label=10)
    return ["data", "info", "cifar10", "--data", d], ["data_batch_5.bin", "label 10", "0..9"]

@case("cifar: no dataset at all")
def _(d):
    return ["data", "info", "cifar10", "--data", d], ["cifar10", "kiln data fetch cifar10"]

# ---- IDX ---------------------------------------------------------------------------------
@case("idx: wrong magic (labels file given as images)")
def _(d):
    mnist_dir(d + "/mnist", tri=idx_labels(3))
    return ["data", "info", "mnist", "--data", d], ["train-images-idx3-ubyte", "magic number 2051"]

@case("idx: image/label count mismatch")
def _(d):
    mnist_dir(d + "/mnist", trl=idx_labels(5))
    return ["data", "info", "mnist", "--data", d], ["3 images", "5 labels"]

@case("idx: truncated images")
def _(d):
    mnist_dir(d + "/mnist", tri=idx_images(3)[:-5])
    return ["data", "info", "mnist", "--data", d], ["train-images-idx3-ubyte", "truncated"]

@case("idx: negative/absurd sizes in the header")
def _(d):
    mnist_dir(d + "/mnist", tri=struct.pack(">IIII", 2051, 3, 0xFFFFFFFF, 4) + b"\x00" * 48)
    return ["data", "info", "mnist", "--data", d], ["train-images-idx3-ubyte", "implausible image size"]

@case("idx: label out of range")
def _(d):
    mnist_dir(d + "/mnist", tel=idx_labels(2, value=11))
    return ["data", "info", "mnist", "--data", d], ["t10k-labels-idx1-ubyte", "label 11"]

@case("idx: broken gzip")
def _(d):
    mnist_dir(d + "/mnist", gz=True)
    p = d + "/mnist/train-labels-idx1-ubyte.gz"
    b = open(p, "rb").read()
    open(p, "wb").write(b[: len(b) // 2])
    return ["data", "info", "mnist", "--data", d], ["train-labels-idx1-ubyte.gz"]

@case("idx: gzip magic followed by garbage")
def _(d):
    mnist_dir(d + "/mnist", gz=True)
    open(d + "/mnist/t10k-images-idx3-ubyte.gz", "wb").write(b"\x1f\x8b" + b"garbage" * 10)
    return ["data", "info", "mnist", "--data", d], ["t10k-images-idx3-ubyte.gz"]

# ---- image folders -------------------------------------------------------------------------
@case("folder: corrupt image")
def _(d):
    folder_dir(d + "/f", image=b"\x89PNG\r\n\x1a\nthis is not a png")
    return ["data", "info", "folder", "--folder", d + "/f"], ["bad.png", "cannot decode"]

@case("folder: empty image file")
def _(d):
    folder_dir(d + "/f", image=b"")
    return ["data", "info", "folder", "--folder", d + "/f"], ["bad.png", "empty"]

@case("folder: a GIF named .png (kiln reads PNG, JPEG, BMP, WebP and HEIF/AVIF; libstb's GIF decoder is never handed it)")
def _(d):
    gif = bytes([*b"GIF89a", 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255, *b",", 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, *b";"])
    folder_dir(d + "/f", image=gif)
    return ["data", "info", "folder", "--folder", d + "/f"], ["bad.png", "not a PNG, JPEG, BMP, WebP or HEIF/AVIF file", "but a GIF"]

@case("folder: an HEIC cut short (kiln reads HEIF/AVIF with libheif)")
def _(d):
    folder_dir(d + "/f")
    heic = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "heif", "rgb-lossy.heic"), "rb").read()
    with open(d + "/f/train/a/cut.heic", "wb") as f:
        f.write(heic[:len(heic) // 2])
    return ["data", "info", "folder", "--folder", d + "/f"], ["cut.heic", "cannot decode image", "libheif: ", "the file is cut short"]

@case("folder: an MP4 named .heic")
def _(d):
    folder_dir(d + "/f")
    with open(d + "/f/train/a/clip.heic", "wb") as f:
        f.write(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2" + bytes(64))
    return ["data", "info", "folder", "--folder", d + "/f"], ["clip.heic", "an ISO media file (MP4, QuickTime, ...) that is not an HEIF/AVIF image, brand 'isom'"]

@case("folder: empty class folders")
def _(d):
    folder_dir(d + "/f", empty_classes=True)
    return ["data", "info", "folder", "--folder", d + "/f"], ["f/train", "no .png"]

@case("folder: no class folders")
def _(d):
    os.makedirs(d + "/f/train")
    os.makedirs(d + "/f/test")
    return ["data", "info", "folder", "--folder", d + "/f"], ["f/train", "no class subdirectories"]

@case("folder: a test class that train/ lacks")
def _(d):
    folder_dir(d + "/f")
    os.makedirs(d + "/f/test/c")
    with open(d + "/f/test/c/0.png", "wb") as f:
        f.write(png_1x1())
    return ["data", "info", "folder", "--folder", d + "/f"], ["test/ has 'c', which train/ lacks"]

# ---- configuration -------------------------------------------------------------------------
@case("config: unknown key")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "optim.lrr=1"], ["optim.lrr", "optim.lr"]

@case("config: wrong type")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "data.batch_size=big"], ["data.batch_size"]

@case("config: negative size")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "data.batch_size=-4"], ["data.batch_size", "positive"]

@case("config: negative epochs")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "schedule.epochs=-1"], ["schedule.epochs", "positive"]

@case("config: TOML syntax error")
def _(d):
    cifar_dir(d + "/cifar10")
    p = preset_file(d, "[optim]\nlr = = 3\n")
    return ["train", "--preset", p, "--data", d, "--out", d + "/out"], ["bad.toml:2"]

@case("config: unknown key in a preset file")
def _(d):
    cifar_dir(d + "/cifar10")
    p = preset_file(d, "[model]\nwidht = [1, 2, 3]\n")
    return ["train", "--preset", p, "--data", d, "--out", d + "/out"], ["bad.toml", "model.widht"]

@case("config: wrong type in a preset file")
def _(d):
    cifar_dir(d + "/cifar10")
    p = preset_file(d, "[data]\nbatch_size = \"many\"\n")
    return ["train", "--preset", p, "--data", d, "--out", d + "/out"], ["bad.toml", "data.batch_size"]

@case("config: missing base preset")
def _(d):
    cifar_dir(d + "/cifar10")
    p = preset_file(d, "base = \"no-such-preset\"\n")
    return ["train", "--preset", p, "--data", d, "--out", d + "/out"], ["no-such-preset"]

@case("config: a preset that is a directory")
def _(d):
    os.makedirs(d + "/dir.toml")
    return ["train", "--preset", d + "/dir.toml", "--data", d, "--out", d + "/out"], ["dir.toml"]

@case("config: batch larger than the data")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--device", "cpu", "--out", d + "/out"], ["data.batch_size", "1024"]

@case("config: unknown augmentation policy")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "aug.policy=autoaugmnt"], ["aug.policy", "autoaugment"]

@case("config: a NaN learning rate")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "optim.lr=nan"], ["optim.lr", "not a finite number"]

@case("config: dropout of 1")
def _(d):
    cifar_dir(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--out", d + "/out", "--set", "model.dropout=1"], ["model.dropout", "[0, 1)"]

# ---- self-training ----------------------------------------------------------------------
def cifar_all_classes(d, n=40):
    os.makedirs(d, exist_ok=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(d, name), "wb") as f:
            for i in range(n):
                f.write(bytes([i % 10]) + bytes((j * (i + 1)) % 256 for j in range(3072)))

@case("selftrain: the teacher's checkpoint is missing")
def _(d):
    cifar_all_classes(d + "/cifar10")
    return ["train", "--preset", "cifar10-selftrain", "--data", d, "--device", "cpu", "--out", d + "/out",
            "--set", "data.labeled=20", "--set", "data.batch_size=10", "--set", f"selftrain.teacher={d}/teacher/checkpoint.pt"], \
           [f"{d}/teacher/checkpoint.pt"]

@case("selftrain: a teacher without a labeled split")
def _(d):
    cifar_all_classes(d + "/cifar10")
    return ["train", "--preset", "cifar10-94", "--data", d, "--device", "cpu", "--out", d + "/out",
            "--set", "data.batch_size=10", "--set", f"selftrain.teacher={d}/teacher/checkpoint.pt"], ["data.labeled"]

@case("selftrain: unknown augmentation strength")
def _(d):
    cifar_all_classes(d + "/cifar10")
    return ["selftrain", "--preset", "cifar10-selftrain", "--labels", "20", "--aug", "S1,S9", "--data", d, "--device", "cpu",
            "--out", d + "/out"], ["S9", "S1, S2, S3, S4"]

@case("selftrain: more labels than examples")
def _(d):
    cifar_all_classes(d + "/cifar10")
    return ["selftrain", "--preset", "cifar10-selftrain", "--labels", "5000", "--aug", "S1", "--data", d, "--device", "cpu",
            "--out", d + "/out"], ["data.labeled = 5000"]

# ---- checkpoints ------------------------------------------------------------------------
def tiny_run(d):
    """A real run in d/run: 1 epoch of a narrow airbench (cifar10-94, widths 8, 16, 16, fp32) on
    d/cifar10's 40 images of each class."""
    cifar_all_classes(d + "/cifar10")
    subprocess.run([kiln, "train", "--preset", "cifar10-94", "--data", d, "--device", "cpu", "--quiet", "--out", d + "/run",
                    "--set", "model.widths=[8,16,16]", "--set", "schedule.epochs=1", "--set", "data.batch_size=50",
                    "--set", "train.precision=fp32"], check=True, capture_output=True, timeout=300)

@case("checkpoint: truncated")
def _(d):
    open(d + "/checkpoint.pt", "wb").write(b"PK\x03\x04" + b"\x00" * 40)
    return ["eval", "--checkpoint", d + "/checkpoint.pt", "--data", d, "--device", "cpu"], ["checkpoint.pt"]

@case("checkpoint: empty")
def _(d):
    open(d + "/checkpoint.pt", "wb").close()
    return ["eval", "--checkpoint", d + "/checkpoint.pt", "--data", d, "--device", "cpu"], ["checkpoint.pt"]

@case("checkpoint: missing (resume)")
def _(d):
    os.makedirs(d + "/run")
    return ["train", "--resume", d + "/run", "--data", d, "--device", "cpu"], ["checkpoint"]

@case("checkpoint: one bit changed in a weight after it was written (resume)")
def _(d):
    # A real run's checkpoint (1 epoch of a narrow airbench), then one bit of its first tensor
    # record changed, as a disk or copy error would: LibTorch alone loads it (it does not check
    # the CRC-32s); kiln refuses it, naming the record.
    import zipfile
    tiny_run(d)
    path = d + "/run/checkpoint.pt"
    rec = next(i for i in zipfile.ZipFile(path).infolist() if i.filename.endswith("/data/0"))
    with open(path, "r+b") as f:
        f.seek(rec.header_offset + 26)
        n, m = struct.unpack("<HH", f.read(4))
        f.seek(rec.header_offset + 30 + n + m + 3)
        b = f.read(1)[0]
        f.seek(-1, 1)
        f.write(bytes([b ^ 0x40]))
    return ["train", "--resume", d + "/run", "--data", d, "--device", "cpu"], \
           [f"{path}' is damaged: its record '{rec.filename}'", "does not match the CRC-32"]


# ---- .kiln models (the runtime's files: kiln web, kiln-classify, the web page) ------------
@case("model: one bit changed in a weight after it was written (kiln web)")
def _(d):
    # A real run's .kiln (1 epoch of a narrow airbench, exported), its CRC-32 first checked as
    # docs/kiln-format.md defines it (Python's zlib over the file, the 8 digits read as zeros),
    # then one bit of its last weight changed, as a disk or copy error would.
    import zlib
    tiny_run(d)
    path = d + "/run/model.kiln"
    subprocess.run([kiln, "export", "--checkpoint", d + "/run/checkpoint.pt", "--format", "kiln", "--out", path, "--data", d],
                   check=True, capture_output=True, timeout=300)
    b = bytearray(open(path, "rb").read())
    assert b[16:29] == struct.pack("<I", 5) + b"crc32" + struct.pack("<I", 8), "crc32 is not the first metadata entry"
    assert b[29:37].decode() == "%08x" % zlib.crc32(bytes(b[:29]) + b"00000000" + bytes(b[37:])), "crc32 is not the file's CRC-32"
    b[-3] ^= 0x40  # an exponent bit of the last fp32 value
    open(path, "wb").write(b)
    return ["web", "--model", path, "--out", d + "/out"], \
           [f"{path}' is damaged: its bytes give CRC-32 0x", "its metadata 'crc32' records"]


if len(sys.argv) > 2 and sys.argv[2] == "--list":
    for name, _ in cases:
        print(name)
    sys.exit(0)

failed = 0
for name, fn in cases:
    d = tempfile.mkdtemp(dir=root)
    argv, needles = fn(d)
    p = subprocess.run([kiln] + argv, capture_output=True, text=True, timeout=300)
    err = p.stderr + p.stdout
    problems = []
    if p.returncode < 0:
        problems.append(f"killed by signal {-p.returncode}")
    elif p.returncode != 2:
        problems.append(f"exit {p.returncode}, expected 2")
    for n in needles:
        if n not in err:
            problems.append(f"message lacks {n!r}")
    if os.path.exists(d + "/out"):
        problems.append("left an output directory behind")
    if problems:
        failed += 1
        print(f"FAIL {name}: {'; '.join(problems)}\n     stderr: {err.strip()[:400]}")
    else:
        print(f"ok   {name}: {err.strip().splitlines()[-1][:150]}")
shutil.rmtree(root, ignore_errors=True)
print(f"{len(cases) - failed}/{len(cases)} bad-input cases refused cleanly")
sys.exit(1 if failed else 0)
