"""A small numpy binary-network trainer and its format-1 exporter.

Training: latent float weights, sign() in the forward pass, straight-through estimators
(the gradient of sign passes where |w| <= 1 or |z| <= 1), batch-norm with batch
statistics, Adam. Every unit knows how to export itself as format-1 layers with integer
thresholds (batch-norm and the quantiser folded in), and `integer_forward` evaluates
format-1 layers exactly as the spec defines them, independently of the training code.
"""

import json
import math
import re
import struct

import numpy as np

F = np.float32


# ---------------------------------------------------------------- primitives


class Param:
    def __init__(self, value, clip=None):
        self.v = np.asarray(value, dtype=F)
        self.g = np.zeros_like(self.v)
        self.m = np.zeros_like(self.v)
        self.s = np.zeros_like(self.v)
        self.clip = clip


class Adam:
    def __init__(self, params, lr):
        self.params, self.lr, self.t = params, lr, 0

    def step(self, lr):
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for p in self.params:
            p.m = b1 * p.m + (1 - b1) * p.g
            p.s = b2 * p.s + (1 - b2) * p.g * p.g
            mh = p.m / (1 - b1**self.t)
            sh = p.s / (1 - b2**self.t)
            p.v -= (lr * mh / (np.sqrt(sh) + eps)).astype(F)
            if p.clip is not None:
                np.clip(p.v, -p.clip, p.clip, out=p.v)
            p.g[...] = 0


def sign(x):
    """+1 for x >= 0, -1 otherwise (the format's threshold at 0)."""
    return np.where(x >= 0, F(1), F(-1))


def im2col(x, k, pad):
    """[N, C, H, W] -> [N*H'*W', C*k*k] patches (stride 1), C-major then ky, kx."""
    n, c, h, w = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    ho, wo = win.shape[2], win.shape[3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    return cols, ho, wo


def col2im(dcols, shape, k, pad):
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    d = dcols.reshape(n, ho, wo, c, k, k)
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i : i + ho, j : j + wo] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, pad : pad + h, pad : pad + w] if pad else dx


class Conv:
    """Binary-weight conv, stride 1, zero padding; y = sum sign(w) * x (an integer)."""

    def __init__(self, rng, cin, cout, k, pad):
        self.k, self.pad = k, pad
        self.w = Param(rng.uniform(-0.1, 0.1, (cout, cin, k, k)), clip=1.0)

    def params(self):
        return [self.w]

    def forward(self, x, train):
        cols, ho, wo = im2col(x, self.k, self.pad)
        wb = sign(self.w.v).reshape(len(self.w.v), -1)
        y = cols @ wb.T
        if train:
            self.cache = (cols, x.shape, wb)
        return y.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)

    def backward(self, dy, need_dx=True):
        cols, xshape, wb = self.cache
        dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, dy.shape[1])
        dw = (dy2.T @ cols).reshape(self.w.v.shape)
        self.w.g += dw * (np.abs(self.w.v) <= 1)
        if need_dx:
            return col2im(dy2 @ wb, xshape, self.k, self.pad)


class BatchNorm:
    """Per-channel z = gamma * (y - mean) / std + beta over axis 1."""

    def __init__(self, c, gamma=1.0, beta=0.0):
        self.gamma = Param(np.full(c, gamma))
        self.beta = Param(np.full(c, beta))
        self.rm, self.rv = np.zeros(c, F), np.ones(c, F)
        self.batches = None  # a list while recalibrating: the batch statistics

    def params(self):
        return [self.gamma, self.beta]

    def _shape(self, x):
        return (1, -1) + (1,) * (x.ndim - 2)

    def forward(self, y, train):
        s = self._shape(y)
        axes = tuple(i for i in range(y.ndim) if i != 1)
        if train:
            mu, var = y.mean(axes), y.var(axes)
            self.rm = 0.9 * self.rm + 0.1 * mu
            self.rv = 0.9 * self.rv + 0.1 * var
            if self.batches is not None:
                self.batches.append((mu, var))
        else:
            mu, var = self.rm, self.rv
        inv = 1 / np.sqrt(var + 1e-5)
        yh = (y - mu.reshape(s)) * inv.reshape(s)
        if train:
            self.cache = (yh, inv, axes)
        return self.gamma.v.reshape(s) * yh + self.beta.v.reshape(s)

    def backward(self, dz):
        yh, inv, axes = self.cache
        s = self._shape(dz)
        self.gamma.g += (dz * yh).sum(axes)
        self.beta.g += dz.sum(axes)
        dyh = dz * self.gamma.v.reshape(s)
        m = dz.size / dz.shape[1]
        return (
            inv.reshape(s)
            / m
            * (m * dyh - dyh.sum(axes).reshape(s) - yh * (dyh * yh).sum(axes).reshape(s))
        )

    def fold(self):
        """(a, b) with z = a * y + b at inference."""
        inv = 1 / np.sqrt(self.rv.astype(np.float64) + 1e-5)
        a = self.gamma.v * inv
        return a, self.beta.v - a * self.rm


def maxpool_fwd(z, k):
    n, c, h, w = z.shape
    ho, wo = h // k, w // k
    zc = z[:, :, : ho * k, : wo * k].reshape(n, c, ho, k, wo, k)
    m = zc.max(axis=(3, 5))
    # the gradient goes to the first maximum of each window
    flat = zc.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho, wo, k * k)
    arg = flat.argmax(-1)
    return m, (z.shape, arg, k)


def maxpool_bwd(dm, cache):
    shape, arg, k = cache
    n, c, ho, wo = dm.shape
    d = np.zeros((n, c, ho, wo, k * k), dtype=dm.dtype)
    np.put_along_axis(d, arg[..., None], dm[..., None], axis=-1)
    d = d.reshape(n, c, ho, wo, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, ho * k, wo * k)
    dz = np.zeros(shape, dtype=dm.dtype)
    dz[:, :, : ho * k, : wo * k] = d
    return dz


def quant_fwd(z, bits):
    """1 bit: sign(z); b bits: the count of k in 1..2^b-1 with z >= k - 1/2."""
    if bits == 1:
        return sign(z)
    return np.clip(np.floor(z + 0.5), 0, 2**bits - 1).astype(F)


def quant_bwd(dq, z, bits):
    if bits == 1:
        return dq * (np.abs(z) <= 1)
    return dq * ((z >= -0.5) & (z <= 2**bits - 0.5))


def fold_thresholds(a, b, bits, bound):
    """Integer thresholds (and flips) for q = quant(a*y + b) over integers |y| <= bound.

    The cut points are z >= 0 (1 bit) or z >= k - 1/2 (k = 1 .. 2^b - 1). A positive gain
    gives y >= ceil((cut - b) / a); a negative one y <= floor(...) with flip; a zero gain a
    constant. Thresholds are clamped to [-bound-1, bound+1], which keeps every comparison.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    cuts = np.array([0.0]) if bits == 1 else np.arange(1, 2**bits) - 0.5
    t = np.zeros((len(a), len(cuts)), np.int64)
    flip = (a < 0).astype(np.uint8)
    for c in range(len(a)):
        for i, cut in enumerate(cuts):
            if a[c] > 0:
                v = math.ceil((cut - b[c]) / a[c]) if abs((cut - b[c]) / a[c]) < 1e12 else None
            elif a[c] < 0:
                v = math.floor((cut - b[c]) / a[c]) if abs((cut - b[c]) / a[c]) < 1e12 else None
            else:
                v = None
            if v is None:  # constant output: always or never
                always = b[c] >= cut
                v = -bound - 1 if always else bound + 1
            t[c, i] = min(max(v, -bound - 1), bound + 1)
    return t, flip


# ---------------------------------------------------------------- units


class Export:
    """Collects format-1 layers and tensors; names are unique by construction."""

    def __init__(self):
        self.layers, self.tensors = [], {}

    def add(self, layer, **tensors):
        for key, value in tensors.items():
            name = f"{layer['name']}.{key}"
            layer[{"w": "weight", "t": "thresholds", "f": "flip", "b": "bias"}[key]] = name
            self.tensors[name] = value
        self.layers.append(layer)
        return layer["name"]


def conv_layer(name, src, conv):
    w = sign(conv.w.v).astype(np.int8)
    layer = {"name": name, "op": "conv", "input": src, "out": int(w.shape[0]), "kernel": conv.k}
    if conv.pad:
        layer["padding"] = conv.pad
    return layer, w


def threshold_layer(ex, name, src, a, b, bits, bound):
    t, flip = fold_thresholds(a, b, bits, bound)
    layer = {"name": name, "op": "threshold", "input": src, "bits": bits}
    if flip.any():
        return ex.add(layer, t=t, f=flip)
    return ex.add(layer, t=t)


class ConvBnSign:
    """conv -> batch-norm -> [maxpool] -> sign: the stem (on 8-bit pixels) and plain units.

    Pooling before the sign is exact: sign is monotone, so pooling the signs (the
    format's threshold then maxpool) equals the sign of the pooled values.
    """

    def __init__(self, rng, cin, cout, k, pad, pool, in_bound):
        self.conv, self.bn, self.pool = Conv(rng, cin, cout, k, pad), BatchNorm(cout), pool
        self.bound = in_bound * cin * k * k

    def params(self):
        return self.conv.params() + self.bn.params()

    def forward(self, x, train):
        z = self.bn.forward(self.conv.forward(x, train), train)
        if self.pool:
            z, self.pc = maxpool_fwd(z, self.pool)
        self.z = z
        return sign(z)

    def backward(self, d, need_dx=True):
        dz = quant_bwd(d, self.z, 1)
        if self.pool:
            dz = maxpool_bwd(dz, self.pc)
        return self.conv.backward(self.bn.backward(dz), need_dx)

    def export(self, ex, src, name):
        layer, w = conv_layer(name, src, self.conv)
        y = ex.add(layer, w=w)
        a, b = self.bn.fold()
        t = threshold_layer(ex, name + "_t", y, a, b, 1, self.bound)
        if self.pool:
            t = ex.add({"name": name + "_pool", "op": "maxpool", "input": t, "kernel": self.pool})
        return t

    def onnx(self, g, x):
        y = g.batchnorm(g.conv(x, self.conv), self.bn)
        return g.maxpool(g.bipolar(y), self.pool)


class ResUnit:
    """[conv3x3 -> 4-bit] + [conv1x1 shortcut -> 4-bit] -> integer add -> 1-bit threshold.

    post: 'fixed' (s >= 2^b - 1, the midpoint: no parameters), 'fb' (feature binarizer:
    s >= tau_c, learned per channel), 'fn' (feature normalisation: batch-norm of s, then
    sign; folds to a threshold with flip).
    """

    BITS = 4

    def __init__(self, rng, cin, cout, post, pool):
        q = 2**self.BITS - 1
        self.main, self.sc = Conv(rng, cin, cout, 3, 1), Conv(rng, cin, cout, 1, 0)
        self.bn_main = BatchNorm(cout, gamma=q / 6, beta=q / 2)
        self.bn_sc = BatchNorm(cout, gamma=q / 6, beta=q / 2)
        self.post, self.pool, self.cin = post, pool, cin
        self.mid, self.half = float(q), q / 2  # s in 0 .. 2q
        if post == "fb":
            self.tau = Param(np.full(cout, self.mid))
        if post == "fn":
            self.bn_post = BatchNorm(cout)

    def params(self):
        p = self.main.params() + self.sc.params() + self.bn_main.params() + self.bn_sc.params()
        if self.post == "fb":
            p.append(self.tau)
        if self.post == "fn":
            p += self.bn_post.params()
        return p

    def forward(self, x, train):
        self.zm = self.bn_main.forward(self.main.forward(x, train), train)
        self.zs = self.bn_sc.forward(self.sc.forward(x, train), train)
        s = quant_fwd(self.zm, self.BITS) + quant_fwd(self.zs, self.BITS)
        if self.post == "fixed":
            z = (s - self.mid) / self.half
        elif self.post == "fb":
            z = (s - self.tau.v.reshape(1, -1, 1, 1)) / self.half
        else:
            z = self.bn_post.forward(s, train)
        if self.pool:
            z, self.pc = maxpool_fwd(z, self.pool)
        self.z = z
        return sign(z)

    def backward(self, d, need_dx=True):
        dz = quant_bwd(d, self.z, 1)
        if self.pool:
            dz = maxpool_bwd(dz, self.pc)
        if self.post == "fn":
            ds = self.bn_post.backward(dz)
        else:
            ds = dz / self.half
            if self.post == "fb":
                self.tau.g -= ds.sum((0, 2, 3))
        dm = self.bn_main.backward(quant_bwd(ds, self.zm, self.BITS))
        dsc = self.bn_sc.backward(quant_bwd(ds, self.zs, self.BITS))
        dx = self.main.backward(dm, need_dx)
        dx2 = self.sc.backward(dsc, need_dx)
        return dx + dx2 if need_dx else None

    def export(self, ex, src, name):
        b = self.BITS
        layer, w = conv_layer(name + "_conv", src, self.main)
        y = ex.add(layer, w=w)
        qm = threshold_layer(ex, name + "_q", y, *self.bn_main.fold(), b, self.cin * 9)
        layer, w = conv_layer(name + "_sc", src, self.sc)
        y = ex.add(layer, w=w)
        qs = threshold_layer(ex, name + "_qs", y, *self.bn_sc.fold(), b, self.cin)
        s = ex.add({"name": name + "_add", "op": "add", "inputs": [qm, qs]})
        c = len(self.bn_main.gamma.v)
        if self.post == "fixed":
            a, bb = np.full(c, 1 / self.half), np.full(c, -self.mid / self.half)
        elif self.post == "fb":
            a, bb = np.full(c, 1 / self.half), -self.tau.v.astype(np.float64) / self.half
        else:
            a, bb = self.bn_post.fold()
        t = threshold_layer(ex, name + "_t", s, a, bb, 1, 2 * (2**b - 1))
        if self.pool:
            t = ex.add({"name": name + "_pool", "op": "maxpool", "input": t, "kernel": self.pool})
        return t

    def onnx(self, g, x):
        cuts = np.arange(1, 2**self.BITS) - 0.5
        qm = g.multithreshold(g.batchnorm(g.conv(x, self.main), self.bn_main), cuts)
        qs = g.multithreshold(g.batchnorm(g.conv(x, self.sc), self.bn_sc), cuts)
        s = g.op("Add", qm, qs)
        if self.post == "fn":
            z = g.batchnorm(s, self.bn_post)
        else:
            tau = self.tau.v.reshape(1, -1, 1, 1) if self.post == "fb" else np.float32(self.mid)
            z = g.op("Div", g.op("Sub", s, g.init(tau)), g.init(np.float32(self.half)))
        return g.maxpool(g.bipolar(z), self.pool)


class Classifier:
    """dense on the flattened binary map; logits = scale * (sum sign(w) x + bias)."""

    def __init__(self, rng, fin, classes):
        self.w = Param(rng.uniform(-0.1, 0.1, (classes, fin)), clip=1.0)
        self.b = Param(np.zeros(classes))
        self.log_scale = Param(np.array(math.log(1 / math.sqrt(fin))))

    def params(self):
        return [self.w, self.b, self.log_scale]

    def forward(self, x, train):
        self.shape = x.shape
        self.x = x.reshape(len(x), -1)
        self.wb = sign(self.w.v)
        self.y = self.x @ self.wb.T + self.b.v
        self.scale = F(self.scale_value())
        return self.scale * self.y

    def backward(self, d, need_dx=True):
        self.log_scale.g += (d * self.y).sum() * self.scale
        dy = d * self.scale
        self.b.g += dy.sum(0)
        self.w.g += (dy.T @ self.x) * (np.abs(self.w.v) <= 1)
        return (dy @ self.wb).reshape(self.shape)

    def export(self, ex, src, name):
        layer = {"name": name, "op": "dense", "input": src, "out": int(self.w.v.shape[0])}
        return ex.add(layer, w=sign(self.w.v).astype(np.int8), b=self.int_bias())

    def int_bias(self):
        return np.round(self.b.v.astype(np.float64)).astype(np.int64)

    def onnx(self, g, x):
        f = g.op("Flatten", x, axis=1)
        w = g.op("BipolarQuant", g.init(self.w.v.T), g.init(np.float32(1)))
        y = g.op("Add", g.op("MatMul", f, w), g.init(self.int_bias().astype(np.float32)))
        return g.op("Mul", y, g.init(np.float32(self.scale_value())))

    def scale_value(self):
        return math.exp(float(self.log_scale.v))


class Network:
    def __init__(self, units):
        self.units = units

    def batchnorms(self):
        return [v for u in self.units for v in vars(u).values() if isinstance(v, BatchNorm)]

    def recalibrate(self, x, batch=500):
        """Sets every batch-norm's statistics to their average over x (no update of the
        parameters): the running averages of the last training steps are noisy, and the
        quantisers after them turn small shifts into different integers."""
        bns = self.batchnorms()
        for bn in bns:
            bn.batches = []
        for i in range(0, len(x), batch):
            self.forward(x[i : i + batch].astype(F), train=True)
        for bn in bns:
            mus = np.array([m for m, _ in bn.batches])
            vs = np.array([v for _, v in bn.batches])
            bn.rm, bn.rv = mus.mean(0).astype(F), (vs.mean(0) + mus.var(0)).astype(F)
            bn.batches = None

    def params(self):
        return [p for u in self.units for p in u.params()]

    def forward(self, x, train):
        for u in self.units:
            x = u.forward(x, train)
        return x

    def backward(self, d):
        for i, u in reversed(list(enumerate(self.units))):
            d = u.backward(d, need_dx=i > 0)

    def export(self):
        ex, src = Export(), "input"
        for i, u in enumerate(self.units):
            name = "fc" if isinstance(u, Classifier) else ("stem" if i == 0 else f"b{i}")
            src = u.export(ex, src, name)
        return ex

    def onnx(self, name, input_shape):
        """The trained float network at inference as a QONNX graph (bytes): the latent
        weights through BipolarQuant, batch-norms with their statistics, the 4-bit
        quantisers as MultiThreshold (z >= k - 1/2), the classifier's bias rounded as
        in `export`. Each max-pool comes after its sign (equal: the sign is monotone)."""
        g, x = OnnxGraph(), "x"
        for u in self.units:
            x = u.onnx(g, x)
        return g.model(name, [1] + list(input_shape), x)


# ---------------------------------------------------------------- ONNX (QONNX dialect)


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num, value):
    """One protobuf field: int (varint; negative as 64-bit two's complement), float
    (fixed32), str/bytes (length-delimited; messages are passed as their bytes)."""
    if isinstance(value, float):
        return _varint(num << 3 | 5) + struct.pack("<f", value)
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value & (2**64 - 1))
    if isinstance(value, str):
        value = value.encode()
    return _varint(num << 3 | 2) + _varint(len(value)) + value


class OnnxGraph:
    """Writes ONNX protobuf with the field numbers of onnx.proto (no onnx package)."""

    QONNX = "qonnx.custom_op.general"

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def _name(self, stem):
        self.n += 1
        return f"{stem}_{self.n}"

    def init(self, value):
        a = np.ascontiguousarray(value, dtype="<f4")
        name = self._name("p")
        msg = b"".join(_field(1, int(d)) for d in a.shape) + _field(2, 1) + _field(8, name)
        self.inits.append(msg + _field(9, a.tobytes()))
        return name

    def op(self, op_type, *inputs, **attrs):
        out = self._name(op_type.lower())
        msg = b"".join(_field(1, i) for i in inputs) + _field(2, out) + _field(3, out) + _field(4, op_type)
        for key, v in attrs.items():
            if isinstance(v, (list, tuple)):
                a = _field(1, key) + b"".join(_field(8, int(i)) for i in v) + _field(20, 7)
            elif isinstance(v, float):
                a = _field(1, key) + _field(2, v) + _field(20, 1)
            elif isinstance(v, str):
                a = _field(1, key) + _field(4, v) + _field(20, 3)
            else:
                a = _field(1, key) + _field(3, int(v)) + _field(20, 2)
            msg += _field(5, a)
        if op_type in ("MultiThreshold", "BipolarQuant", "Quant"):
            msg += _field(7, self.QONNX)
        self.nodes.append(msg)
        return out

    def conv(self, x, conv):
        w = self.op("BipolarQuant", self.init(conv.w.v), self.init(np.float32(1)))
        k, p = conv.k, conv.pad
        return self.op("Conv", x, w, kernel_shape=[k, k], strides=[1, 1], pads=[p] * 4, group=1)

    def batchnorm(self, x, bn):
        ins = [self.init(v) for v in (bn.gamma.v, bn.beta.v, bn.rm, bn.rv)]
        return self.op("BatchNormalization", x, *ins, epsilon=1e-5)

    def bipolar(self, x):
        return self.op("BipolarQuant", x, self.init(np.float32(1)))

    def multithreshold(self, x, cuts):
        return self.op("MultiThreshold", x, self.init(np.asarray(cuts, np.float32).reshape(1, -1)),
                       out_scale=1.0, out_bias=0.0)

    def maxpool(self, x, k):
        return self.op("MaxPool", x, kernel_shape=[k, k], strides=[k, k]) if k else x

    @staticmethod
    def _value_info(name, dims):
        shape = b"".join(_field(1, _field(1, int(d))) for d in dims)
        tensor = _field(1, 1) + _field(2, shape)
        return _field(1, name) + _field(2, _field(1, tensor))

    def model(self, name, input_dims, output):
        graph = b"".join(_field(1, n) for n in self.nodes) + _field(2, name)
        graph += b"".join(_field(5, t) for t in self.inits)
        graph += _field(11, self._value_info("x", input_dims)) + _field(12, self._value_info(output, []))
        opsets = _field(8, _field(1, "") + _field(2, 13)) + _field(8, _field(1, self.QONNX) + _field(2, 1))
        return _field(1, 8) + _field(2, "bnnforge scripts/train") + _field(7, graph) + opsets


# ---------------------------------------------------------------- format 1


def integer_forward(layers, tensors, x):
    """Format 1 evaluated from the spec, in int64 (float64 matmuls, exact below 2^53).

    x: [N, C, H, W] integers. Returns the output layer's values flattened, [N, K].
    """
    vals = {"input": x.astype(np.int64)}
    last = "input"
    for ly in layers:
        src = ly.get("input", last)
        op = ly["op"]
        if op == "conv":
            w = tensors[ly["weight"]].astype(np.float64)
            v = vals[src].astype(np.float64)
            cols, ho, wo = im2col(v, ly["kernel"], ly.get("padding", 0))
            y = cols @ w.reshape(len(w), -1).T
            out = np.rint(y).astype(np.int64).reshape(len(v), ho, wo, -1).transpose(0, 3, 1, 2)
        elif op == "dense":
            w = tensors[ly["weight"]].astype(np.float64)
            v = vals[src].reshape(len(vals[src]), -1).astype(np.float64)
            out = np.rint(v @ w.T).astype(np.int64)
            if "bias" in ly:
                out = out + tensors[ly["bias"]]
        elif op == "threshold":
            y = vals[src]
            t = tensors[ly["thresholds"]]
            flip = tensors[ly["flip"]] if "flip" in ly else np.zeros(len(t), np.uint8)
            mid = (1,) * (y.ndim - 2)
            tt = t.reshape((1, t.shape[0]) + mid + (t.shape[1],))
            ff = flip.reshape((1, t.shape[0]) + mid + (1,)).astype(bool)
            n = np.where(ff, y[..., None] <= tt, y[..., None] >= tt).sum(-1)
            out = np.where(n == 1, 1, -1) if ly["bits"] == 1 else n
        elif op == "add":
            out = sum(vals[i] for i in ly["inputs"])
        elif op == "maxpool":
            k = ly["kernel"]
            v = vals[src]
            n_, c, h, w_ = v.shape
            ho, wo = (h - k) // k + 1, (w_ - k) // k + 1
            out = v[:, :, : ho * k, : wo * k].reshape(n_, c, ho, k, wo, k).max(axis=(3, 5))
        else:
            raise ValueError(f"op {op} not evaluated here")
        vals[ly["name"]] = out.astype(np.int64)
        last = ly["name"]
    out = vals[last]
    return out.reshape(len(out), -1)


DTYPES = {np.int8: "I8", np.uint8: "U8", np.int32: "I32", np.int64: "I64"}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": DTYPES[a.dtype.type],
            "shape": list(a.shape),
            "data_offsets": [off, off + len(raw)],
        }
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def yaml_value(v):
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return str(v)


def write_yaml(path, comments, name, tensors_file, input_shape, layers, output):
    lines = [f"# {c}" for c in comments]
    lines += [
        "format: 1",
        f"name: {name}",
        f"tensors: {tensors_file}",
        f"input: {{ shape: {yaml_value(input_shape)}, bits: 8, signed: false }}",
        "layers:",
    ]
    for ly in layers:
        lines.append("  - { " + ", ".join(f"{k}: {yaml_value(v)}" for k, v in ly.items()) + " }")
    lines.append(f"output: {output}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def read_safetensors(path):
    inv = {v: k for k, v in DTYPES.items()}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        s, e = h["data_offsets"]
        dt = np.dtype(inv[h["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(raw[8 + n + s : 8 + n + e], dt).reshape(h["shape"]).astype(inv[h["dtype"]])
    return out


def read_yaml(path):
    """The layers and tensor file of a YAML written by `write_yaml` (not general YAML)."""

    def value(v):
        v = v.strip()
        if v.startswith("["):
            return [value(x) for x in v[1:-1].split(",")]
        return int(v) if v.lstrip("-").isdigit() else v

    layers, tensors = [], None
    for line in open(path):
        if line.startswith("tensors:"):
            tensors = line.split(":", 1)[1].strip()
        elif line.startswith("  - {"):
            body = line.strip()[3:-1].strip()
            parts = re.findall(r"(\w+): (\[[^\]]*\]|[^,]+)", body)
            layers.append({k: value(v) for k, v in parts})
    return layers, tensors
