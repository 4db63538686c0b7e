"""Minimal safetensors reader and writer (numpy only).

Written from the format description (8-byte little-endian header length, a JSON
header mapping names to {dtype, shape, data_offsets} plus an optional
"__metadata__" map of strings, then the data) so that the fixtures and oracles
do not depend on the safetensors implementation that the Rust crate uses.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

# Bytes per element of every dtype the format names.
DTYPE_SIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}

HEADER_CAP = 100 * 1024 * 1024


class Tensor:
    """One tensor: name, dtype string, shape and its raw little-endian bytes."""

    __slots__ = ("name", "dtype", "shape", "data")

    def __init__(self, name: str, dtype: str, shape: list[int], data: bytes):
        n = 1
        for d in shape:
            n *= d
        if dtype not in DTYPE_SIZE:
            raise ValueError(f"{name}: unknown dtype {dtype}")
        if len(data) != n * DTYPE_SIZE[dtype]:
            raise ValueError(f"{name}: {len(data)} bytes for {dtype}{shape}")
        self.name, self.dtype, self.shape, self.data = name, dtype, list(shape), data

    def values_f64(self) -> np.ndarray:
        """Element values as float64 (floating dtypes only; bf16 is exact)."""
        if self.dtype == "F32":
            return np.frombuffer(self.data, "<f4").astype(np.float64)
        if self.dtype == "F16":
            return np.frombuffer(self.data, "<f2").astype(np.float64)
        if self.dtype == "BF16":
            return bf16_bits_to_f32(np.frombuffer(self.data, "<u2")).astype(np.float64)
        if self.dtype == "F64":
            return np.frombuffer(self.data, "<f8").copy()
        raise ValueError(f"{self.name}: dtype {self.dtype} is not floating point")


def read(path: str) -> tuple[list[Tensor], dict | None]:
    """Read a file; tensors are returned in data-offset order."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (hlen,) = struct.unpack("<Q", buf[:8])
    if hlen > HEADER_CAP or 8 + hlen > len(buf):
        raise ValueError(f"{path}: header length {hlen} out of range")
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    base = 8 + hlen
    items = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))

    # Offsets must tile the data section exactly, in order.
    tensors, pos = [], 0
    for name, info in items:
        start, end = info["data_offsets"]
        if start != pos or end < start:
            raise ValueError(f"{path}: {name}: offsets {start}..{end}, expected start {pos}")
        tensors.append(Tensor(name, info["dtype"], info["shape"], buf[base + start:base + end]))
        pos = end
    if base + pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - base - pos} trailing bytes")
    return tensors, meta


def write(path: str, tensors: list[Tensor], meta: dict | None = None) -> None:
    """Write tensors in the given order; the header is space-padded to 8 bytes."""
    header: dict = {}
    if meta is not None:
        header["__metadata__"] = meta
    pos = 0
    for t in tensors:
        if t.name in header:
            raise ValueError(f"duplicate tensor name {t.name}")
        header[t.name] = {"dtype": t.dtype, "shape": t.shape,
                          "data_offsets": [pos, pos + len(t.data)]}
        pos += len(t.data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)

    # Write to a temporary name and rename, so a crash leaves no half file.
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for t in tensors:
            f.write(t.data)
    os.replace(tmp, path)


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """bf16 bit patterns (uint16) to float32, exactly (shift left by 16)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 to bf16 bit patterns, round to nearest, ties to even.

    Overflow rounds to +/-Inf as IEEE rounding does; NaN stays NaN (the top
    16 bits with the quiet bit set, so a payload living only in the low bits
    cannot turn into Inf).
    """
    bits = np.ascontiguousarray(x, dtype="<f4").view(np.uint32).astype(np.uint64)
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    quiet = ((bits >> 16) | 0x0040).astype(np.uint16)
    return np.where(nan, quiet, rounded)


def read_checkpoint(path: str) -> list[tuple[str, Tensor]]:
    """A .safetensors file, a *.safetensors.index.json, or a directory holding
    one of them; returns (file, tensor) pairs, shards in index order."""
    if os.path.isdir(path):
        idx = [f for f in sorted(os.listdir(path)) if f.endswith(".safetensors.index.json")]
        single = [f for f in sorted(os.listdir(path)) if f.endswith(".safetensors")]
        if idx:
            path = os.path.join(path, idx[0])
        elif len(single) == 1:
            path = os.path.join(path, single[0])
        else:
            raise ValueError(f"{path}: no index and not exactly one .safetensors file")
    if path.endswith(".json"):
        with open(path) as f:
            index = json.load(f)
        root = os.path.dirname(path)
        shards = list(dict.fromkeys(index["weight_map"].values()))
        out = []
        for shard in shards:
            tensors, _ = read(os.path.join(root, shard))
            out.extend((shard, t) for t in tensors)
        names = {t.name for _, t in out}
        if names != set(index["weight_map"]):
            raise ValueError(f"{path}: index and shards disagree on tensor names")
        return out
    tensors, _ = read(path)
    return [(os.path.basename(path), t) for t in tensors]
