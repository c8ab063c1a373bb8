"""The model file: a zip archive of ``.npy`` members, written atomically, read strictly.

``write_model_file`` writes to a temporary file in the destination folder,
flushes and fsyncs it, then renames it over the destination (and fsyncs the
folder where the OS allows), so that a crash or a kill at any moment leaves
either the old file or the new one, never a mixture.

``read_model_file`` accepts only what ``write_model_file`` could have written
and refuses everything else with a ``ValueError`` naming the path and the
problem, before allocating more than the file's size justifies:

- the path must be a regular file (checked with ``os.stat`` before opening
  and again on the open descriptor: devices, FIFOs and sockets are refused
  without being read);
- a zip archive (its first bytes) of at most ``MAX_MEMBERS`` members with
  unique names of the form ``__meta__.npy``, ``base.<name>.npy`` or
  ``model.<name>.npy`` (no folders), not encrypted, stored or deflated; the
  members' compressed sizes must fit in the file together (no overlapping
  members), a deflated member may expand at most ``MAX_DEFLATE_RATIO`` times;
- each member an ``.npy`` array of a plain numeric, bool or unicode dtype (no
  object, structured or sub-array dtypes, so nothing is ever unpickled) whose
  declared shape times item size equals the member's real uncompressed size;
  the data are read with that cap and the zip CRC checked;
- the metadata member (UTF-8 JSON, at most ``MAX_META_BYTES``) must follow the
  fixed schema of ``validate_meta``: an object of known keys whose values are
  scalars, and parameters that are scalars or flat lists of scalars.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

MAX_MEMBERS = 64
MAX_META_BYTES = 1 << 20
MAX_NPY_HEADER = 4096
# deflate cannot expand more than ~1032x; fastrec itself writes stored members,
# so any larger ratio than a well-compressible float/int array reaches is refused
MAX_DEFLATE_RATIO = 64
MAX_NDIM = 4
_ALLOWED_KINDS = "biufU"
_MEMBER = re.compile(r"(__meta__|base\.[a-z_]{1,64}|model\.[a-z0-9_]{1,64})\.npy")
_READ_CHUNK = 1 << 22

# top-level metadata keys and their JSON types
META_SCHEMA: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "layout_version": (int,),
    "library_version": (str,),
    "class": (str,),
    "params": (dict,),
    "implicit_data": (bool,),
}
_MAX_STRING = 1024
_MAX_LIST = 1024
_MAX_PARAMS = 256
# errors the zip and npy parsers raise on malformed input
_PARSE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    UnicodeError,
    KeyError,
    IndexError,
    SyntaxError,
    TypeError,
    zlib.error,
)


class ModelFileError(ValueError):
    """A model file that fastrec refuses to read (always a ``ValueError``)."""


# ------------------------------------------------------------------- writing
def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on this OS (e.g. Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_model_file(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to ``path``, atomically.

    A symlink at ``path`` is followed (its target is replaced). On any error,
    or an interrupt, the temporary file is removed and ``path`` is untouched.
    """
    target = os.path.realpath(os.fspath(path))
    folder = os.path.dirname(target) or "."
    if os.path.isdir(target):
        raise ValueError(f"cannot save the model to {os.fspath(path)!r}: it is a folder")
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(target) + ".", suffix=".tmp", dir=folder
    )
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    _fsync_dir(folder)


# ------------------------------------------------------------------- reading
def _open_regular(path: str) -> tuple[Any, int]:
    """Open ``path`` for reading if it is a regular file; returns (file, size)."""

    def refuse(problem: str) -> ModelFileError:
        return ModelFileError(f"{path!r} is not a fastrec model file: {problem}")

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"model file {path!r} does not exist") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise refuse("it is a folder")
    if not stat.S_ISREG(st.st_mode):
        raise refuse("it is not a regular file (a device, FIFO or socket)")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path!r}: {exc.strerror or exc}") from None
    st = os.fstat(fd)  # the path may have been replaced since the first look
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise refuse("it is not a regular file (a device, FIFO or socket)")
    return os.fdopen(fd, "rb"), int(st.st_size)


def _describe_start(head: bytes) -> str:
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array, not a model archive"
    text = head[:40].decode("utf-8", "replace")
    if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"it is not a zip archive (it starts with {text[:30]!r}: a text or CSV file?)"
    return "it is not a zip archive"


def _check_members(path: str, infos: list[zipfile.ZipInfo], size: int) -> None:
    def refuse(problem: str) -> ModelFileError:
        return ModelFileError(f"{path!r} is not a fastrec model file: {problem}")

    if not infos:
        raise refuse("the archive is empty")
    if len(infos) > MAX_MEMBERS:
        raise refuse(f"the archive has {len(infos)} members (at most {MAX_MEMBERS} expected)")
    names = set()
    total_packed = 0
    for info in infos:
        name = info.filename
        if not _MEMBER.fullmatch(name):
            raise refuse(f"unexpected archive member {name[:80]!r} (only .npy arrays are expected)")
        if name in names:
            raise refuse(f"the archive member {name!r} appears twice")
        names.add(name)
        if info.flag_bits & 0x1:
            raise refuse(f"the archive member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(
                f"the archive member {name!r} uses compression method {info.compress_type} "
                "(only stored or deflated members are read)"
            )
        packed, unpacked = int(info.compress_size), int(info.file_size)
        if info.compress_type == zipfile.ZIP_STORED and packed != unpacked:
            raise refuse(f"the stored member {name!r} declares {unpacked} bytes in {packed}")
        if unpacked > MAX_DEFLATE_RATIO * packed + 1024:
            raise refuse(
                f"the member {name!r} declares {unpacked} bytes compressed into {packed} "
                f"(more than {MAX_DEFLATE_RATIO}x: a decompression bomb?)"
            )
        if info.header_offset + packed > size:
            raise refuse(f"the member {name!r} extends past the end of the file (truncated?)")
        total_packed += packed
    if total_packed > size:
        raise refuse("the archive members overlap (their sizes add up to more than the file)")
    if "__meta__.npy" not in names:
        raise refuse("it has no metadata member")


def _read_member(path: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    name = info.filename

    def refuse(problem: str) -> ModelFileError:
        return ModelFileError(f"{path!r}: the array {name[:-4]!r} {problem}")

    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_NPY_HEADER)
        else:
            raise refuse(f"has an unsupported .npy format version {version}")
        shape, fortran, dtype = header
        if (
            dtype.hasobject
            or dtype.fields is not None
            or dtype.subdtype is not None
            or dtype.kind not in _ALLOWED_KINDS
        ):
            raise refuse(f"has dtype {dtype.str!r} (only plain numeric, bool or str dtypes)")
        if not isinstance(shape, tuple) or len(shape) > MAX_NDIM:
            raise refuse(f"has shape {shape!r} (at most {MAX_NDIM} dimensions expected)")
        count = 1
        for s in shape:
            if not isinstance(s, int) or s < 0:
                raise refuse(f"has an invalid shape {shape!r}")
            count *= s
        nbytes = count * dtype.itemsize
        header_len = fh.tell()
        if header_len + nbytes != info.file_size:
            raise refuse(
                f"declares shape {shape} of {dtype.str} ({nbytes} bytes) but the member holds "
                f"{info.file_size - header_len} bytes of data"
            )
        if name == "__meta__.npy" and (
            dtype.kind != "u" or dtype.itemsize != 1 or len(shape) != 1 or nbytes > MAX_META_BYTES
        ):
            raise refuse(
                f"must be at most {MAX_META_BYTES} bytes of uint8, got shape {shape} of {dtype.str}"
            )
        arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
        buf = memoryview(arr.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
        pos = 0
        while pos < nbytes:
            chunk = fh.read(min(_READ_CHUNK, nbytes - pos))
            if not chunk:
                raise refuse("is truncated")
            buf[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        if fh.read(1):  # also makes zipfile check the CRC at the end of the member
            raise refuse("has trailing data")
    if fortran:
        arr = arr.T
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _check_value(path: str, where: str, value: Any, allow_list: bool) -> None:
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise ModelFileError(f"{path!r} has corrupt metadata: {where} is a string too long")
        return
    if allow_list and isinstance(value, list):
        if len(value) > _MAX_LIST:
            raise ModelFileError(f"{path!r} has corrupt metadata: {where} is a list too long")
        for pos, v in enumerate(value):
            _check_value(path, f"{where}[{pos}]", v, allow_list=False)
        return
    raise ModelFileError(
        f"{path!r} has corrupt metadata: {where} is a {type(value).__name__}, "
        "expected a number, string, bool or null" + (" or a flat list" if allow_list else "")
    )


def validate_meta(path: str, raw: np.ndarray) -> dict[str, Any]:
    """Decode and schema-check the metadata JSON (see the module docstring)."""
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path!r} has corrupt metadata: {str(exc)[:200]}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path!r} is not a fastrec model file (metadata is not an object)")
    if meta.get("format") != "fastrec-model":
        raise ModelFileError(f"{path!r} is not a fastrec model file (wrong format tag)")
    for key in meta:
        if key not in META_SCHEMA:
            raise ModelFileError(f"{path!r} has corrupt metadata: unexpected key {key[:80]!r}")
    for key, types in META_SCHEMA.items():
        if key not in meta:
            raise ModelFileError(f"{path!r} has corrupt metadata: the key {key!r} is missing")
        value = meta[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ModelFileError(
                f"{path!r} has corrupt metadata: {key!r} is a {type(value).__name__}"
            )
        if isinstance(value, str):
            _check_value(path, key, value, allow_list=False)
    params = meta["params"]
    if len(params) > _MAX_PARAMS:
        raise ModelFileError(f"{path!r} has corrupt metadata: too many parameters")
    for name, value in params.items():
        _check_value(path, f"params[{name[:80]!r}]", value, allow_list=True)
    return meta


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays (member name without ``.npy``) and metadata of a model file."""
    path = os.fspath(path)
    fh, size = _open_regular(path)
    with fh:
        try:
            head = fh.read(64)
        except OSError as exc:
            raise ModelFileError(f"cannot read model file {path!r}: {exc}") from None
        if not head.startswith(b"PK\x03\x04"):
            if not head:
                raise ModelFileError(f"{path!r} is not a fastrec model file: it is empty")
            raise ModelFileError(f"{path!r} is not a fastrec model file: {_describe_start(head)}")
        fh.seek(0)
        arrays: dict[str, np.ndarray] = {}
        try:
            with zipfile.ZipFile(fh) as zf:
                infos = zf.infolist()
                _check_members(path, infos, size)
                # the metadata first: a file of another kind is named as such
                infos.sort(key=lambda i: i.filename != "__meta__.npy")
                for info in infos:
                    arrays[info.filename[:-4]] = _read_member(path, zf, info)
                    if info.filename == "__meta__.npy":
                        meta = validate_meta(path, arrays.pop("__meta__"))
        except ModelFileError:
            raise
        except OSError as exc:
            raise ModelFileError(f"cannot read model file {path!r}: {exc}") from None
        except _PARSE_ERRORS as exc:
            raise ModelFileError(
                f"{path!r} is not a readable fastrec model file: {str(exc)[:200]}"
            ) from None
    return arrays, meta
