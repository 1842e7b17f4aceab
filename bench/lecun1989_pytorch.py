"""The peer for `kiln lecun1989`: the same 1989 reproduction in PyTorch eager (the torch==2.11.0
kiln builds against), timed the same way: 23 passes of batch-1 SGD plus the evaluation of both
splits after every pass, data preparation excluded.

Usage: .venv/bin/python bench/lecun1989_pytorch.py DATA_ROOT [--passes 23] [--threads 1]
Prints one JSON line: wall seconds, final train/test error. The digits are drawn exactly as kiln
draws them (torch.randperm with a CPU generator seeded 1337), so both train on the same data.
"""
import argparse, gzip, json, os, time

import numpy as np
import torch
import torch.nn.functional as F


def read_idx(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:2] == b"\x1f\x8b":
        b = gzip.decompress(b)
    magic = int.from_bytes(b[0:4], "big")
    n = int.from_bytes(b[4:8], "big")
    if magic == 2051:
        h, w = int.from_bytes(b[8:12], "big"), int.from_bytes(b[12:16], "big")
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, 1, h, w)
    return np.frombuffer(b, np.uint8, offset=8)


def find(d, *names):
    for n in names:
        for suffix in ("", ".gz"):
            p = os.path.join(d, n + suffix)
            if os.path.exists(p):
                return p
    raise SystemExit(f"missing {names} under {d}")


def digits(images, labels, idx):
    x = torch.from_numpy(images[idx.numpy()].astype(np.float32)) / 127.5 - 1.0
    x = F.interpolate(x, (16, 16), mode="bilinear", align_corners=False)
    y = torch.full((len(idx), 10), -1.0)
    y[torch.arange(len(idx)), torch.from_numpy(labels[idx.numpy()].astype(np.int64))] = 1.0
    return x, y


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        winit = lambda fan_in, *shape: (torch.rand(*shape) - 0.5) * 2 * 2.4 / fan_in**0.5
        self.H1w = torch.nn.Parameter(winit(5 * 5 * 1, 12, 1, 5, 5))
        self.H1b = torch.nn.Parameter(torch.zeros(12, 8, 8))
        self.H2w = torch.nn.Parameter(winit(5 * 5 * 8, 12, 8, 5, 5))
        self.H2b = torch.nn.Parameter(torch.zeros(12, 4, 4))
        self.H3w = torch.nn.Parameter(winit(4 * 4 * 12, 4 * 4 * 12, 30))
        self.H3b = torch.nn.Parameter(torch.zeros(30))
        self.outw = torch.nn.Parameter(winit(30, 30, 10))
        self.outb = torch.nn.Parameter(-torch.ones(10))

    def forward(self, x):
        x = F.pad(x, (2, 2, 2, 2), "constant", -1.0)
        x = torch.tanh(F.conv2d(x, self.H1w, stride=2) + self.H1b)
        x = F.pad(x, (2, 2, 2, 2), "constant", -1.0)
        s1 = F.conv2d(x[:, 0:8], self.H2w[0:4], stride=2)
        s2 = F.conv2d(x[:, 4:12], self.H2w[4:8], stride=2)
        s3 = F.conv2d(torch.cat((x[:, 0:4], x[:, 8:12]), dim=1), self.H2w[8:12], stride=2)
        x = torch.tanh(torch.cat((s1, s2, s3), dim=1) + self.H2b).flatten(1)
        x = torch.tanh(x @ self.H3w + self.H3b)
        return torch.tanh(x @ self.outw + self.outb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--passes", type=int, default=23)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = os.path.join(a.data, "mnist")
    tri = read_idx(find(d, "train-images-idx3-ubyte", "train10k-images-idx3-ubyte"))
    trl = read_idx(find(d, "train-labels-idx1-ubyte", "train10k-labels-idx1-ubyte"))[: len(tri)]
    tei, tel = read_idx(find(d, "t10k-images-idx3-ubyte")), read_idx(find(d, "t10k-labels-idx1-ubyte"))
    g = torch.Generator().manual_seed(1337)
    Xtr, Ytr = digits(tri, trl, torch.randperm(len(tri), generator=g)[:7291])
    Xte, Yte = digits(tei, tel, torch.randperm(len(tei), generator=g)[:2007])
    torch.manual_seed(a.seed)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.03)

    def error(X, Y):
        with torch.no_grad():
            return (model(X).argmax(1) != Y.argmax(1)).float().mean().item()

    t0 = time.perf_counter()
    for _ in range(a.passes):
        for i in range(Xtr.size(0)):
            x, y = Xtr[[i]], Ytr[[i]]
            loss = torch.mean((model(x) - y) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        # Per-pass evaluation of both splits, one example at a time as the reference does.
        with torch.no_grad():
            tr_err = sum(int(model(Xtr[[i]]).argmax(1) != Ytr[i].argmax()) for i in range(Xtr.size(0))) / Xtr.size(0)
            te_err = sum(int(model(Xte[[i]]).argmax(1) != Yte[i].argmax()) for i in range(Xte.size(0))) / Xte.size(0)
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch-eager", "torch": torch.__version__, "threads": a.threads, "passes": a.passes,
                      "seconds": secs, "train_error": tr_err, "test_error": te_err}))


if __name__ == "__main__":
    main()
