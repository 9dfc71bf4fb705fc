"""Where report files go, safely: run names can contain anything, so a name never becomes a path.

    safe_filename("../../etc/λ run?")                 -> "etc_λ_run"
    default_output(run_dir, "x.html")                  -> <run_dir>/reports/x.html
    run_stem("msq-report", {"id": ID, "name": "a/b"})  -> "msq-report-ID-a_b"
    file_name("msq-report-ID-" + "x" * 200, ".html")   -> "msq-report-ID-xxx…x.html" (stem cut, suffix kept)

A generated file name is a stem and a suffix: only the stem is ever shortened (to ``MAX_NAME`` bytes,
whatever the suffix), so the extension survives and two formats never share a name.

Rules: a generated name is sanitized and must land inside its folder (after resolving symlinks);
an explicit output path must not contain control characters, must not be a symlink or a folder, and
its folder must exist. An existing file is replaced only when the caller says ``overwrite=True``;
nothing is ever overwritten silently.
"""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Optional

from msq.errors import MSQError
from msq.runs.disk import is_disk_full

REPORTS_DIR = "reports"
MAX_NAME = 80                                        # bytes of a stem (the readable part of a name)
MAX_SUFFIX = 48                                      # bytes of a suffix: ".html", "-allocation.png", ...
_SUFFIX = re.compile(r"[.\-][A-Za-z0-9_]+([.\-][A-Za-z0-9_]+)*")
_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)      # keep letters/digits (any script), _ . -
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class UnsafePathError(MSQError, ValueError):
    """An output path that would escape its folder, or that cannot be written safely."""


class OutputExistsError(MSQError, FileExistsError):
    """The output file exists and the caller did not ask to replace it."""


def safe_filename(text: object, fallback: str = "run", max_len: int = MAX_NAME) -> str:
    """A file-name component made from arbitrary text: no separators, no leading dots, no control or
    shell-special characters, not a Windows device name, at most ``max_len`` bytes in UTF-8."""
    name = unicodedata.normalize("NFKC", str(text or ""))
    name = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in name)  # control/format chars
    name = re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", name)).strip("._-")
    name = re.sub(r"_{2,}", "_", name)
    name = name.encode("utf-8")[:max_len].decode("utf-8", "ignore").rstrip("._-")   # bytes: file systems count them
    if not name or name.split(".")[0].lower() in _WINDOWS_RESERVED:
        name = f"{fallback}_{name}" if name else fallback
    return name


def file_name(stem: object, suffix: str) -> str:
    """``safe_filename(stem) + suffix``: the stem is sanitized and shortened to ``MAX_NAME`` bytes, the
    suffix (".html", ".msq.pt", "-figures": chosen by code, never by a user) is kept whole. Every stem
    is cut at the same length, so names that differ in their suffix stay different."""
    if not _SUFFIX.fullmatch(suffix) or len(suffix) > MAX_SUFFIX:
        raise ValueError(f"file suffix {suffix!r} is invalid: allowed '.' or '-' then letters, digits, _ . - "
                         f"(at most {MAX_SUFFIX} characters)")
    return safe_filename(stem) + suffix


def safe_join(folder: str | os.PathLike, name: object) -> Path:
    """``folder / safe_filename(name)``, refused if it would resolve outside ``folder`` (a symlinked
    entry pointing elsewhere, for instance). A name made by ``file_name`` passes through unchanged."""
    root = Path(folder).resolve()
    target = (root / safe_filename(name, max_len=MAX_NAME + MAX_SUFFIX)).resolve()
    if target.parent != root:
        raise UnsafePathError(f"refusing to write {target}: it resolves outside the folder {root} "
                              "(a symbolic link?). Remove the link or choose another --out")
    return target


def run_stem(prefix: str, run: dict) -> str:
    """``<prefix>-<run id>[-<run name>]``: the id makes it unique, the sanitized name readable."""
    name = safe_filename(run.get("name") or "", fallback="")
    return f"{prefix}-{run['id']}" + (f"-{name}" if name else "")


def default_output(run_dir: str | os.PathLike, file_name: str, folder: str = REPORTS_DIR) -> Path:
    """``<run_dir>/<folder>/<file_name>``; the folder is created, and refused if it is a link to
    somewhere outside the run folder."""
    run_dir = Path(run_dir).resolve()
    target = run_dir / folder
    if target.is_symlink() or (target.exists() and target.resolve().parent != run_dir):
        raise UnsafePathError(f"refusing to write into {target}: it is a link out of the run folder {run_dir}")
    target.mkdir(parents=True, exist_ok=True)
    return safe_join(target, file_name)


def checked_path(out: str | os.PathLike) -> Path:
    """``out`` as a Path, refused when empty or containing control characters (NUL, newlines...)."""
    text = os.fspath(out)
    if not text.strip() or any(unicodedata.category(c)[0] == "C" for c in text):
        raise UnsafePathError(f"--out {text!r} is not a usable path: it is empty or contains control characters")
    return Path(text).expanduser()


def resolve_output(out: Optional[str | os.PathLike], default_dir: str | os.PathLike, default_name: str) -> Path:
    """The path to write: ``out`` as given, or ``default_name`` inside ``out`` when it is a folder
    (or ends with a separator), or inside ``default_dir`` when ``out`` is None."""
    if out is None:
        return safe_join(default_dir, default_name)
    path, text = checked_path(out), os.fspath(out)
    if text.endswith(("/", os.sep)) or path.is_dir():
        if not path.is_dir():
            raise UnsafePathError(f"--out {text!r}: the folder {path} does not exist; create it first")
        return safe_join(path, default_name)
    if path.name in ("", ".", ".."):
        raise UnsafePathError(f"--out {text!r} does not name a file")
    if not path.parent.is_dir():
        raise UnsafePathError(f"--out {text!r}: the folder {path.parent} does not exist; create it first")
    return path.parent.resolve() / path.name


def check_writable(path: Path, overwrite: bool) -> bool:
    """Refuse links and folders; refuse an existing file unless ``overwrite``. Returns whether a file
    will be replaced (the caller says so)."""
    if path.is_symlink():
        raise UnsafePathError(f"refusing to write {path}: it is a symbolic link (it could point anywhere); "
                              "remove it or choose another --out")
    if path.is_dir():
        raise UnsafePathError(f"refusing to write {path}: it is a folder")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists: pass --force (overwrite=True) to replace it, "
                                "or choose another --out")
    return path.exists()


def write_atomic(path: Path, data: bytes | str, overwrite: bool = False) -> bool:
    """Write through a temp file and ``os.replace`` (a reader never sees half a file). Returns whether an
    existing file was replaced."""
    replaced = check_writable(path, overwrite)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        if is_disk_full(exc):   # a full disk: the caller says "disk full", naming the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        # a read-only or special folder (/proc)
        raise UnsafePathError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return replaced
