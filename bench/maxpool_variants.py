#!/usr/bin/env python3
# Micro-benchmark behind docs/perf.md's max-pool paragraph (issue #23 point 3): a 2x2 max-pool
# as LibTorch's max_pool2d (indices kept for the backward), as a 2x2 amax over a view, and as
# three elementwise maximums of strided slices; forward + backward (autograd) and forward alone,
# median of 7 after 3 warm-ups, channels_last inputs at cifar10-94's three pool shapes (batch 500),
# bf16 and fp32, 2 threads. Peer-side tool (PyTorch), not part of kiln.
#   python bench/maxpool_variants.py
import time, torch, sys
import torch.nn.functional as F
torch.set_num_threads(2)
def amax_pool(x):
    n, c, h, w = x.shape
    return x.view(n, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))
def max4(x):
    a = torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2])
    b = torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2])
    return torch.maximum(a, b)
variants = {"max_pool2d": lambda x: F.max_pool2d(x, 2), "amax": amax_pool, "max4": max4}
shapes = [(500, 64, 32, 32), (500, 256, 16, 16), (500, 256, 8, 8)]
for dt in (torch.bfloat16, torch.float32):
    for shp in shapes:
        x0 = torch.randn(shp, dtype=dt).contiguous(memory_format=torch.channels_last)
        res = {}
        for name, f in variants.items():
            x = x0.clone().requires_grad_(True)
            y = f(x); g = torch.randn_like(y)
            for _ in range(3): y = f(x); y.backward(g)
            ts = []
            for _ in range(7):
                t = time.perf_counter(); y = f(x); y.backward(g); ts.append(time.perf_counter() - t)
            ts.sort(); res[name] = ts[3] * 1e3
            tf = []
            with torch.no_grad():
                for _ in range(7):
                    t = time.perf_counter(); f(x0); tf.append(time.perf_counter() - t)
            tf.sort(); res[name + "/fwd"] = tf[3] * 1e3
            res[name + "/layout"] = "CL" if y.is_contiguous(memory_format=torch.channels_last) else "NCHW"
        print(str(dt).split('.')[-1], shp, " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()), flush=True)
