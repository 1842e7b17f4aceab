"""2x2 max-pooling, forward and backward, three ways, on the shapes kiln's airbench presets pool
(batch 2000, fp16, channels_last), to decide whether kiln should carry its own (issue #19).

The H200 profile of one cifar10-94-muon run (2026-12-04, docs/perf.md "GPU") put 29% of the
device's time in LibTorch's max_pool2d NHWC kernels (backward 18.3%, forward 10.8%), more than
any convolution. Before kiln grows a switch for it, this measures the candidates on the GPU:

  aten    F.max_pool2d(x, 2): the reference (the gradient to the first maximum of each window)
  amax    x viewed as (N, C, H/2, 2, W/2, 2), amax over the two window axes; autograd's amax
          backward (the gradient split equally among tied maxima)
  mask    the same forward, plus the mask of each window's maxima and their count saved; the
          backward one `where` (the gradient split equally among tied maxima, as amax's)

and checks each against the reference: forward equal to the bit; backward equal where a window
has one maximum, and on tied windows the gradient summing to the window's within the dtype's
rounding of the shares, 2 eps |g| (`tied_sum_error_of_bound` <= 1; how often ties occur
on these activations is reported: fp16 conv outputs do tie). Timing: CUDA events around
`iters` forward (and forward + backward) calls after a warm-up, the median of `repeats`; on a
CPU the host clock (there it only rehearses; the figures that count are a GPU's).

  python3 bench/pool_bench.py --device cuda --out RESULTS/pool-bench.json
  python3 bench/pool_bench.py --device cpu --tiny --out J.json        (the rehearsal; CTest)
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# (C, H, W) before each pool of the airbench presets' three groups (widths 64, 256, 256 on 32x32).
SHAPES = [(64, 32, 32), (256, 16, 16), (256, 8, 8)]


def windows(x):
    n, c, h, w = x.shape
    return x.unflatten(3, (w // 2, 2)).unflatten(2, (h // 2, 2))  # (N, C, H/2, 2, W/2, 2), a view


def pool_amax(x):
    return windows(x).amax(dim=(3, 5))


class MaskPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x6 = windows(x)
        y = x6.amax(dim=(3, 5))
        mask = x6 == y[:, :, :, None, :, None]
        ctx.save_for_backward(mask, mask.sum(dim=(3, 5), dtype=x.dtype))
        ctx.shape = x.shape
        return y

    @staticmethod
    def backward(ctx, g):
        mask, count = ctx.saved_tensors
        share = (g / count)[:, :, :, None, :, None]
        return torch.where(mask, share, torch.zeros((), dtype=g.dtype, device=g.device)).flatten(4, 5).flatten(2, 3)


WAYS = {"aten": lambda x: F.max_pool2d(x, 2), "amax": pool_amax, "mask": MaskPool.apply}


def activations(n, c, h, w, device, dtype, seed):
    """Conv-like activations: a 3x3 conv of normal noise, so neighbours correlate as real ones do,
    in fp16 (which makes ties)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    k = torch.randn(c, 1, 3, 3, generator=g) / 3
    x = F.conv2d(x, k, padding=1, groups=c)
    return x.to(device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)


def check(x, g):
    """Each way against aten: forward to the bit; backward on untied windows to the bit, on tied
    ones summing to the window's gradient."""
    out = {}
    xr = x.detach().requires_grad_()
    yr = WAYS["aten"](xr)
    yr.backward(g)
    x6 = windows(x.float())
    ties = (x6 == x6.amax(dim=(3, 5), keepdim=True)).sum(dim=(3, 5)) > 1  # (N, C, H/2, W/2)
    out["tied_windows"] = ties.float().mean().item()
    for name in ("amax", "mask"):
        xw = x.detach().requires_grad_()
        y = WAYS[name](xw)
        y.backward(g)
        gw, gr = windows(xw.grad.float()), windows(xr.grad.float())
        untied = ~ties[:, :, :, None, :, None].expand_as(gw)
        # on a tied window each of the (at most 4) shares g / k is rounded once to the dtype: the
        # sum is the window's gradient within 4 half-ulps, 2 eps |g|
        sums = (gw.sum(dim=(3, 5)) - gr.sum(dim=(3, 5))).abs() / (2 * torch.finfo(x.dtype).eps * g.float().abs()).clamp_min(1e-30)
        out[name] = dict(forward_equal=bool(torch.equal(y, yr)),
                         backward_equal_untied=bool(torch.equal(gw[untied], gr[untied])),
                         tied_sum_error_of_bound=float(sums[ties].max()) if bool(ties.any()) else 0.0,
                         layout_channels_last=bool(xw.grad.is_contiguous(memory_format=torch.channels_last)))
    return out


def timed(fn, device, iters, repeats):
    """Median over `repeats` of the seconds per call of `iters` calls of fn."""
    per = []
    for _ in range(repeats):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(iters):
                fn()
            b.record()
            torch.cuda.synchronize()
            per.append(a.elapsed_time(b) / 1000 / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            per.append((time.perf_counter() - t0) / iters)
    return statistics.median(per)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--tiny", action="store_true", help="batch 8 and 10 iterations: the CPU rehearsal")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    device = torch.device(a.device)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    batch, iters = (8, 2) if a.tiny else (a.batch, a.iters)
    rows = []
    for c, h, w in SHAPES:
        x = activations(batch, c, h, w, device, dtype, seed=c + h)
        g = torch.randn(batch, c, h // 2, w // 2, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        row = dict(shape=[batch, c, h, w], dtype=str(dtype).replace("torch.", ""), checks=check(x, g))
        for name, f in WAYS.items():
            xf = x.detach().requires_grad_()

            def fwd():
                with torch.no_grad():
                    f(x)

            def fwd_bwd():
                f(xf).backward(g)
                xf.grad = None
            fwd(), fwd_bwd()  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            row[name] = dict(forward_s=timed(fwd, device, iters, a.repeats), forward_backward_s=timed(fwd_bwd, device, iters, a.repeats))
        rows.append(row)
        print(f"{row['shape']} {row['dtype']}: tied windows {100 * row['checks']['tied_windows']:.3f}%; " +
              "; ".join(f"{n} {1e3 * row[n]['forward_s']:.3f} / {1e3 * row[n]['forward_backward_s']:.3f} ms" for n in WAYS) +
              " (forward / forward+backward)", flush=True)
    total = {n: sum(r[n]["forward_backward_s"] for r in rows) for n in WAYS}
    out = dict(what="2x2 max-pooling forward and forward+backward: LibTorch's max_pool2d (aten) against amax over a window view "
                    "(amax) and the same with a saved mask and a one-where backward (mask)",
               device=torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
               torch=torch.__version__, cuda=torch.version.cuda, iters=iters, repeats=a.repeats,
               clock="CUDA events around `iters` calls, median of `repeats`" if device.type == "cuda" else "host clock (a rehearsal)",
               rows=rows, forward_backward_s_all_three_shapes=total,
               rehearsal=None if device.type == "cuda" and not a.tiny else "not a measurement: tiny shapes or no GPU")
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("per training step, the three pools' forward+backward: " + ", ".join(f"{n} {1e3 * t:.3f} ms" for n, t in total.items()))
    bad = [(r["shape"], n) for r in rows for n in ("amax", "mask")
           if not (r["checks"][n]["forward_equal"] and r["checks"][n]["backward_equal_untied"] and r["checks"][n]["tied_sum_error_of_bound"] <= 1)]
    if bad:
        print("FAIL: a way differs from max_pool2d beyond its stated tie rule:", bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
