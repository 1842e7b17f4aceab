"""The PyTorch-eager peers of `kiln bench --preset cifar10-94`, `cifar10-94-muon`, `cifar10-95` and
`cifar10-96`: the recipes of KellerJordan/cifar10-airbench's legacy/airbench94.py (94.01% in
3.83 s on an A100, n = 1000), airbench94_muon.py (94.01% in 2.59 s, n = 200; compiled),
legacy/airbench95.py (95.01% in 10.4 s, n = 200) and legacy/airbench96.py (96.03% in 34.7 s,
n = 400) written out in plain PyTorch from
the scripts' published facts, so the same machine can time the same recipes without kiln. This
is kiln's transcription, not the peers' files (which cannot be fetched on the offline GPU
machine): the values and formulas are the scripts', the code is kiln's own; docs/perf.md says
which figures came from it.

Timed as the script times itself and as `kiln bench` does: the clock (CUDA events on a GPU, the
host clock around synchronisation on the CPU) covers fitting the whitening layer, the training
steps and the final evaluation with level-2 TTA; data loading, model construction, the
warm-up runs and per-epoch evaluation (skipped here) are outside it.

Usage:
  python3 bench/airbench_peer.py --data ROOT [--recipe airbench94|airbench94_muon|airbench95|airbench96]
         [--runs 25] [--warmup 1] [--device cuda|cpu] [--out peer.json] [--widths W1,W2,W3]
         [--epochs E] [--batch B] [--train-subset N] [--test-subset N] [--compile]
(--widths, --epochs and --batch default to the recipe's: 64,256,256 for 9.9 x 1024 in airbench94,
8 x 2000 in airbench94_muon, 128,384,384 for 15 x 1024 in airbench95, 128,384,512 for 37 x 1024
in airbench96.)
ROOT holds cifar10/ (the binary version: data_batch_1..5.bin, test_batch.bin). Needs only torch
(no numpy, no torchvision: the GPU machine's Python has PyTorch and little else).
"""
import argparse, contextlib, json, math, os, platform, subprocess, sys, time

import torch
import torch.nn.functional as F
from torch import nn

from kiln_stats import summary

# The script's hyperparameters (its units: LR and weight decay per 1024 examples, decoupled;
# bn_momentum is how much of the running average a step keeps: PyTorch's momentum is 1 - it).
HYP = dict(epochs=9.9, batch=1024, lr=11.5, momentum=0.85, wd=0.0153, bias_scaler=64.0,
           label_smoothing=0.2, whiten_bias_epochs=3, translate=2, cutout=0, bn_momentum=0.6,
           widths=(64, 256, 256), convs=2, scale=1 / 9, whiten_eps=5e-4, whiten_images=5000,
           warmup_frac=0.23, lr_start=0.2, lr_end=0.07, lookahead_every=5,
           lookahead_base=0.95 ** 5, lookahead_power=3)
# airbench95: wider and 15 epochs at a lower LR, otherwise airbench94.
HYP95 = dict(HYP, epochs=15.0, lr=10.0, widths=(128, 384, 384))
# airbench96: a third conv per group with a residual around the last two, wider, 37 epochs,
# lower LR and decay, translate 4 and a 12x12 cutout, warm-up over 10% then down to 0, and
# PyTorch's default BN momentum (0.1, so the average keeps 0.9).
HYP96 = dict(HYP, epochs=37.0, lr=9.0, wd=0.012, widths=(128, 384, 512), convs=3, translate=4, cutout=12,
             bn_momentum=0.9, warmup_frac=0.1, lr_end=0.0)
RECIPES = {"airbench94": HYP, "airbench95": HYP95, "airbench96": HYP96}
# airbench94_muon's (its SGD learning rates are plain PyTorch ones, not per 1024 examples).
MUON_HYP = dict(epochs=8.0, batch=2000, bias_lr=0.053, head_lr=0.67, wd_per_example=2e-6, momentum=0.85,
                muon_lr=0.24, muon_momentum=0.6, ns_steps=3, ns_coeffs=(3.4445, -4.7750, 2.0315),
                whiten_bias_epochs=3, label_smoothing=0.2)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def read_cifar10(root, train):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
    xs, ys = [], []
    for n in names:
        p = os.path.join(root, "cifar10", n)
        with open(p, "rb") as f:
            b = bytearray(f.read())
        if len(b) % 3073:
            raise SystemExit(f"{p}: {len(b)} bytes is not a whole number of 3073-byte records")
        r = torch.frombuffer(b, dtype=torch.uint8).view(-1, 3073)
        ys.append(r[:, 0].long())
        xs.append(r[:, 1:].reshape(-1, 3, 32, 32).clone())
    return torch.cat(xs), torch.cat(ys)


class Setup:
    """The data on the device, normalised, in the run's precision and layout."""

    def __init__(self, args, dev):
        self.dev = dev
        self.compiled = None  # --compile: (the network, its compiled forward), kept across runs
        # default: fp16 (the whole net, BN fp32) and channels_last on CUDA, as the scripts run;
        # fp32 NCHW on the CPU. --precision bf16: bf16 data under torch.autocast with fp32
        # weights (kiln's train.precision = bf16); --channels-last: that layout on the CPU too.
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}.get(
            args.precision, torch.float16 if dev.type == "cuda" else torch.float32)
        self.autocast = args.precision == "bf16"
        self.layout = torch.channels_last if dev.type == "cuda" or args.channels_last else torch.contiguous_format
        x, y = read_cifar10(args.data, True)
        tx, ty = read_cifar10(args.data, False)
        if args.train_subset:
            x, y = x[: args.train_subset], y[: args.train_subset]
        if args.test_subset:
            tx, ty = tx[: args.test_subset], ty[: args.test_subset]
        mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
        norm = lambda u8: ((u8.to(dev).float() / 255 - mean) / std).to(self.dtype).contiguous(memory_format=self.layout)
        self.train_x, self.train_y = norm(x), y.to(dev)
        self.test_x, self.test_y = norm(tx), ty.to(dev)


def dirac_conv(c_in, c_out, k=3, padding="same", bias=False):
    conv = nn.Conv2d(c_in, c_out, k, padding=padding, bias=bias)
    with torch.no_grad():
        if bias:
            conv.bias.zero_()
        nn.init.dirac_(conv.weight[:c_in])  # the first c_in filters pass their input through
    return conv


def frozen_scale_bn(c, momentum):
    # eps 1e-12; the scale stays 1 (not trained); airbench's momentum 0.6 is PyTorch's 0.4
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=1 - momentum)
    bn.weight.requires_grad_(False)
    return bn


class Net(nn.Module):
    """scale > 0: logits x scale (airbench94); scale = 0: head weights rescaled to unit std at
    init and logits divided by the feature width (airbench94_muon). convs = 3: each group's third
    conv, with the sum of the group's first activation and its BN output (airbench96)."""

    def __init__(self, widths, bn_momentum, scale, convs=2):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)  # fitted, frozen weight; bias trained early
        self.whiten.weight.requires_grad_(False)
        if scale:  # airbench94's conv class zeroes the bias; airbench94_muon's plain nn.Conv2d keeps PyTorch's init
            with torch.no_grad():
                self.whiten.bias.zero_()
        self.convs, self.bns = nn.ModuleList(), nn.ModuleList()
        c = 24
        for w in widths:
            for i in range(convs):
                self.convs.append(dirac_conv(c if i == 0 else w, w))
                self.bns.append(frozen_scale_bn(w, bn_momentum))
            c = w
        self.per_group = convs
        self.head = nn.Linear(c, 10, bias=False)
        self.scale = scale
        if scale == 0:
            with torch.no_grad():
                self.head.weight.div_(self.head.weight.std())
        self.whiten_bias_live = True  # False: the bias enters detached (airbench94_muon's freeze)

    def forward(self, x):
        b = self.whiten.bias if self.whiten_bias_live else self.whiten.bias.detach()
        x = F.gelu(F.conv2d(x, self.whiten.weight, b))
        k = self.per_group
        for g in range(3):
            x = self.convs[k * g](x)
            x = F.max_pool2d(x, 2)
            x = F.gelu(self.bns[k * g](x))
            y = F.gelu(self.bns[k * g + 1](self.convs[k * g + 1](x)))
            # the third conv -> BN, plus the group's first activation, -> GELU
            x = y if k == 2 else F.gelu(self.bns[k * g + 2](self.convs[k * g + 2](y)) + x)
        x = F.max_pool2d(x, 3).flatten(1)
        return self.head(x) * self.scale if self.scale else self.head(x) / x.size(1)

    @torch.no_grad()
    def fit_whitening(self, images, eps):
        # eigenvectors of the 2x2 patches' uncentred second moment, scaled by 1/sqrt(lambda + eps),
        # and their negations
        p = images.float().unfold(2, 2, 1).unfold(3, 2, 1)            # N C H' W' 2 2
        p = p.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)                  # patches x (C 2 2)
        lam, vec = torch.linalg.eigh(p.T @ p / p.size(0))
        lam, vec = lam.flip(0), vec.flip(1)                              # descending
        filters = (vec.T / torch.sqrt(lam + eps).view(-1, 1)).reshape(12, 3, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight.dtype))


def newton_schulz(g, steps, coeffs, eps=1e-7):
    """An approximately orthogonal matrix with g's singular vectors: the quintic iteration
    X <- aX + (bA + cA^2)X, A = XX^T, in bf16, from X = g / ||g|| (on the wide orientation)."""
    a, b, c = coeffs
    x = g.bfloat16()
    x = x / (x.norm() + eps)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        m = x @ x.T
        x = a * x + (b * m + c * (m @ m)) @ x
    return x.T if tall else x


class MuonPeer:
    """airbench94_muon's filter optimiser: Nesterov momentum on the gradient, each filter tensor
    rescaled to norm sqrt(out_channels), then a step of lr along the Newton-Schulz
    orthogonalisation of the (momentum) update; no weight decay."""

    def __init__(self, params, momentum, steps, coeffs):
        self.params, self.m, self.steps, self.coeffs = list(params), momentum, steps, coeffs
        self.bufs = [None] * len(self.params)

    @torch.no_grad()
    def step(self, lr):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if self.bufs[i] is None:
                self.bufs[i] = torch.zeros_like(p.grad)
            buf = self.bufs[i].mul_(self.m).add_(p.grad)
            u = p.grad.add(buf, alpha=self.m)
            p.mul_(p.size(0) ** 0.5 / p.norm())
            p.add_(newton_schulz(u.reshape(u.size(0), -1), self.steps, self.coeffs).view(u.shape).to(p.dtype), alpha=-lr)


def compute(s):
    """The forward passes' precision: autocast to bf16 with --precision bf16, else as the data is."""
    return torch.autocast(s.dev.type, dtype=torch.bfloat16) if s.autocast else contextlib.nullcontext()


def to_run_precision(net, s):
    net = net.to(s.dev)
    if s.dtype == torch.float16:
        net = net.half()
        for bn in net.bns:
            bn.float()
    return net.to(memory_format=s.layout)


def tta_logits(net, x):
    def mirror(v):
        return 0.5 * net(v) + 0.5 * net(v.flip(-1))
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * (mirror(padded[:, :, :-2, :-2]) + mirror(padded[:, :, 2:, 2:]))
    return 0.5 * mirror(x) + 0.5 * shifted


class Clock:
    """Seconds of device work: CUDA events on a GPU, the host clock around synchronisation on the CPU."""

    def __init__(self, dev):
        self.dev, self.total = dev, 0.0

    def __enter__(self):
        if self.dev.type == "cuda":
            self.a, self.b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.a.record()
        else:
            self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.dev.type == "cuda":
            self.b.record()
            self.b.synchronize()
            self.total += 1e-3 * self.a.elapsed_time(self.b)
        else:
            self.total += time.perf_counter() - self.t


def one_run(s, args, seed, labels_override=None):
    torch.manual_seed(seed)
    dev = s.dev
    muon = args.recipe == "airbench94_muon"
    h = HYP if muon else RECIPES[args.recipe]  # the muon recipe shares airbench94's whitening and data
    n, bs = s.train_x.size(0), args.batch
    steps_per_epoch = n // bs
    total = math.ceil(steps_per_epoch * args.epochs)
    net = to_run_precision(Net(args.widths, h["bn_momentum"], 0 if muon else h["scale"], h["convs"]), s)
    fwd = net
    if args.compile:
        # As airbench94_compiled: the network is compiled once per process and each run starts
        # from a fresh initialisation copied into it, so that only the warm-up run compiles (a
        # new module each run recompiled inside the timed runs: 87.8 s, then 30.7 s, 2026-12-01).
        if s.compiled is None:
            s.compiled = (net, torch.compile(net))
        else:
            with torch.no_grad():
                for kept, new in zip(s.compiled[0].state_dict().values(), net.state_dict().values()):
                    kept.copy_(new)
            s.compiled[0].whiten_bias_live = True
        net, fwd = s.compiled
    bn_biases = [bn.bias for bn in net.bns]
    if muon:
        mh = MUON_HYP
        wd = mh["wd_per_example"] * bs
        whiten_steps = math.ceil(mh["whiten_bias_epochs"] * steps_per_epoch)
        opt = torch.optim.SGD([dict(params=[net.whiten.bias], lr=mh["bias_lr"], weight_decay=wd / mh["bias_lr"]),
                               dict(params=bn_biases, lr=mh["bias_lr"], weight_decay=wd / mh["bias_lr"]),
                               dict(params=[net.head.weight], lr=mh["head_lr"], weight_decay=wd / mh["head_lr"])],
                              momentum=mh["momentum"], nesterov=True)
        filters = [p for p in net.parameters() if p.dim() == 4 and p.requires_grad]
        muon_opt = MuonPeer(filters, mh["muon_momentum"], mh["ns_steps"], mh["ns_coeffs"])  # its LR comes each step
        smoothing = mh["label_smoothing"]
    else:
        kilostep = 1024 * (1 + 1 / (1 - h["momentum"]))
        lr = h["lr"] / kilostep
        wd = h["wd"] * bs / kilostep
        lr_bias = lr * h["bias_scaler"]
        others = [p for name, p in net.named_parameters() if p.requires_grad and not name.startswith("bns.")]
        opt = torch.optim.SGD([dict(params=bn_biases, lr=lr_bias, weight_decay=wd / lr_bias),
                               dict(params=others, lr=lr, weight_decay=wd / lr)],
                              momentum=h["momentum"], nesterov=True)
        smoothing = h["label_smoothing"]
    warm = int(total * h["warmup_frac"])

    def multiplier(step):  # airbench94: 0.2 -> 1 over 23% of the steps, then -> 0.07
        if step < warm:
            f = step / warm
            return h["lr_start"] * (1 - f) + f
        f = (step - warm) / (total - warm)
        return (1 - f) + h["lr_end"] * f

    base_lrs = [g["lr"] for g in opt.param_groups]
    slow = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def lookahead(decay):
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.dtype in (torch.float16, torch.float32):
                    slow[k].lerp_(v, 1 - decay)
                    v.copy_(slow[k])

    def set_lrs(step):
        if muon:  # the whitening bias's LR falls to 0 over its steps; the rest (and Muon's) to 0 over the run
            opt.param_groups[0]["lr"] = base_lrs[0] * (1 - step / whiten_steps)
            for g, b in zip(opt.param_groups[1:], base_lrs[1:]):
                g["lr"] = b * (1 - step / total)
            return MUON_HYP["muon_lr"] * (1 - step / total)
        for g, b in zip(opt.param_groups, base_lrs):
            g["lr"] = b * multiplier(step)
        return None

    y_all = s.train_y if labels_override is None else labels_override
    clock = Clock(dev)
    with clock:
        net.fit_whitening(s.train_x[: h["whiten_images"]], h["whiten_eps"])
    # the epoch pipeline's first stage (in the clock, as the scripts' first epoch pays for it):
    # each image mirrored at random once; reflect-padded for the translations
    step = 0
    pad = h["translate"]
    for epoch in range(math.ceil(total / steps_per_epoch)):
        with clock:
            if epoch == 0:
                coin = torch.rand(n, device=dev) < 0.5
                base = torch.where(coin.view(-1, 1, 1, 1), s.train_x.flip(-1), s.train_x)
                padded = F.pad(base, (pad,) * 4, mode="reflect")
            # a random translation per image (crop of the padded image), the whole set mirrored on odd epochs
            sh = torch.randint(0, 2 * pad + 1, (n, 2), device=dev)
            rows = (sh[:, 0].view(-1, 1) + torch.arange(32, device=dev)).view(n, 1, 32, 1).expand(n, 3, 32, 32 + 2 * pad)
            x = padded.gather(2, rows)
            cols = (sh[:, 1].view(-1, 1) + torch.arange(32, device=dev)).view(n, 1, 1, 32).expand(n, 3, 32, 32)
            x = x.gather(3, cols)
            if epoch % 2 == 1:
                x = x.flip(-1)
            if h["cutout"]:  # a size x size square of zeros (the mean), wholly inside each image
                size = h["cutout"]
                top = torch.randint(0, 32 - size + 1, (n, 1, 1, 1), device=dev)
                left = torch.randint(0, 32 - size + 1, (n, 1, 1, 1), device=dev)
                r = torch.arange(32, device=dev)
                inside = ((r.view(1, 1, 32, 1) >= top) & (r.view(1, 1, 32, 1) < top + size) &
                          (r.view(1, 1, 1, 32) >= left) & (r.view(1, 1, 1, 32) < left + size))
                x = x.masked_fill(inside, 0)
            x = x.contiguous(memory_format=s.layout)
            if not muon:
                net.whiten.bias.requires_grad_(epoch < h["whiten_bias_epochs"])
            net.train()
            order = torch.randperm(n, device=dev)
            for k in range(steps_per_epoch):
                if step >= total:
                    break
                idx = order[k * bs:(k + 1) * bs]
                if muon:
                    net.whiten_bias_live = step < whiten_steps
                with compute(s):
                    out = fwd(x[idx])
                loss = F.cross_entropy(out.float(), y_all[idx], label_smoothing=smoothing, reduction="sum")
                loss.backward()
                muon_lr = set_lrs(step)
                opt.step()
                if muon:
                    muon_opt.step(muon_lr)
                net.zero_grad(set_to_none=True)
                step += 1
                if not muon and step % h["lookahead_every"] == 0:
                    lookahead(h["lookahead_base"] * (step / total) ** h["lookahead_power"])
            if not muon and step >= total:
                lookahead(1.0)
    with clock:
        net.eval()
        with torch.no_grad(), compute(s):
            logits = torch.cat([tta_logits(fwd, xb) for xb in s.test_x.split(2000)])
        correct = (logits.argmax(1) == s.test_y).sum()
    acc = correct.item() / s.test_y.numel()
    flops = forward_flops(args.widths, h["convs"])
    return dict(test_acc=acc, seconds=clock.total,
                flops=3 * flops * total * bs + 6 * flops * s.test_y.numel())


def forward_flops(widths, convs=2, h=32, w=32):
    # 2 x multiply-adds of the convolutions and the head, as kiln and the peer count them
    h, w = h - 1, w - 1
    f = 2.0 * 24 * 3 * 4 * h * w
    c = 24
    for width in widths:
        f += 2.0 * c * 9 * width * h * w
        h, w = h // 2, w // 2
        f += (convs - 1) * 2.0 * width * 9 * width * h * w
        c = width
    return f + 2.0 * c * 10


def kiln_commit():
    """The kiln commit this peer script belongs to: $KILN_COMMIT (the GPU machine's copy has no
    .git), else git describe, else "unknown"."""
    if os.environ.get("KILN_COMMIT"):
        return os.environ["KILN_COMMIT"]
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--recipe", default="airbench94", choices=["airbench94", "airbench94_muon", "airbench95", "airbench96"])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0, help="timed run k is seeded first_seed + k")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="")
    ap.add_argument("--widths", default="", help="W1,W2,W3 (default: the recipe's)")
    ap.add_argument("--epochs", type=float, default=0, help="0: the recipe's")
    ap.add_argument("--batch", type=int, default=0, help="0: the recipe's")
    ap.add_argument("--train-subset", type=int, default=0)
    ap.add_argument("--test-subset", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network (airbench94_compiled's variant)")
    ap.add_argument("--precision", default="default", choices=["default", "fp32", "bf16"],
                    help="default: fp16 on CUDA (as the scripts), fp32 on the CPU; bf16: autocast with fp32 weights")
    ap.add_argument("--channels-last", action="store_true", help="channels_last on the CPU too (CUDA always uses it)")
    args = ap.parse_args()
    recipe_hyp = MUON_HYP if args.recipe == "airbench94_muon" else RECIPES[args.recipe]
    args.widths = tuple(int(w) for w in args.widths.split(",")) if args.widths else recipe_hyp.get("widths", HYP["widths"])
    args.epochs = args.epochs or recipe_hyp["epochs"]
    args.batch = args.batch or recipe_hyp["batch"]
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    warm = range(10_000, 10_000 + args.warmup)  # the warm-up runs' seeds (random labels)
    if any(args.first_seed + k in warm for k in range(args.runs)):
        raise SystemExit(f"--first-seed {args.first_seed} with --runs {args.runs} meets the warm-up seeds "
                         f"{warm.start}..{warm.stop - 1}: take timed seeds outside them")
    s = Setup(args, dev)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"{args.recipe} peer (PyTorch {torch.__version__} eager{' + compile' if args.compile else ''}) on {name}: "
          f"{args.warmup} warm-up run(s) (random labels) then {args.runs} timed", file=sys.stderr)
    for i in range(args.warmup):
        one_run(s, args, warm[i], labels_override=torch.randint(0, 10, s.train_y.shape, device=dev))
    runs = []
    commit = kiln_commit()

    def report(complete):
        acc = summary([r["test_acc"] for r in runs])
        sec = summary([r["seconds"] for r in runs])
        flops = runs[0]["flops"]
        out = dict(peer=f"{args.recipe} recipe in PyTorch eager (kiln's transcription, bench/airbench_peer.py)",
                   recipe=args.recipe, kiln_commit=commit,
                   device=name, device_type=dev.type, torch_version=torch.__version__,
                   cuda_version=torch.version.cuda, compiled=args.compile, runs=len(runs), runs_asked=args.runs,
                   complete=complete, warmup_runs=args.warmup,
                   precision=("bf16 autocast, fp32 weights" if s.autocast else
                              "fp16, BN fp32" if s.dtype == torch.float16 else "fp32")
                             + (", channels_last" if s.layout == torch.channels_last else ""),
                   settings=dict(widths=list(args.widths), epochs=args.epochs, batch=args.batch,
                                 train_subset=args.train_subset, test_subset=args.test_subset,
                                 first_seed=args.first_seed),
                   test_acc=acc, seconds=sec, flops_per_run=flops,
                   tflops=summary([flops / r["seconds"] / 1e12 for r in runs]),
                   per_run=dict(test_acc=[r["test_acc"] for r in runs], seconds=[r["seconds"] for r in runs]),
                   clock_includes="whitening fit + the epochs' augmentation and training steps + final level-2 TTA evaluation",
                   clock_excludes="data loading, model construction, per-epoch evaluation (not run), the warm-up runs")
        if args.out:  # after every run, so a run cut short keeps the ones done ("complete": false)
            tmp = args.out + ".tmp"
            with open(tmp, "w") as f:
                json.dump(out, f, indent=2)
            os.replace(tmp, args.out)
        return acc, sec

    for i in range(args.runs):
        r = one_run(s, args, args.first_seed + i)
        runs.append(r)
        print(f"run {i + 1}/{args.runs}: {100 * r['test_acc']:.2f}%  {r['seconds']:.3f} s", file=sys.stderr)
        acc, sec = report(i + 1 == args.runs)
    print(f"accuracy {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} % (n={acc['n']}, 95% CI "
          f"{100 * acc['ci95_low']:.2f}–{100 * acc['ci95_high']:.2f}); time {sec['mean']:.3f} ± {sec['std']:.3f} s")

if __name__ == "__main__":
    main()
