"""The output files of a run folder, replaced as one set: the old set or the new one.

Layout of an output folder ``out``::

    out/front.csv       -> .current/front.csv     (relative symbolic links, fixed)
    out/references.csv  -> .current/references.csv
    out/front.png       -> .current/front.png
    out/knee            -> .current/knee
    out/summary.json    -> .current/summary.json
    out/.current        -> .outputs/<id>          (the one link that changes)
    out/.outputs/<id>/  the files of one complete set

A new set is built in ``.outputs/<id>.partial/`` (:func:`staged_outputs`); its
``summary.json`` is written last and lists the sha256 of every other file
(:func:`publish`). The folder is sealed (renamed to ``.outputs/<id>``), then ``.current``
is switched to it with one :func:`os.replace` of a symbolic link, which is atomic: a
reader of ``out/front.csv`` or ``out/knee/`` sees every file of the old set or every file
of the new one, never a mix, whenever the writer is killed. What the old set had and
the new one lacks (say ``knee/`` after a failed export) disappears with it; the old
set's folder is then deleted, and :func:`clean_leftovers` removes what a killed writer
left behind (partial sets, temporary links).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from moo_compress.atomic_write import fsync_dir, remove_temporaries, step, temporary_name

OUTPUT_NAMES = ("front.csv", "references.csv", "front.png", "knee", "summary.json")
"""Top-level names of a set (``summary.json`` last: it marks a set complete)."""

CURRENT = ".current"
VERSIONS = ".outputs"
PARTIAL = ".partial"


@contextlib.contextmanager
def staged_outputs(out: Path) -> Iterator[Path]:
    """An empty folder to write a new set into; removed if the block raises.

    Call :func:`publish` at the end of the block to make the set current."""
    versions = out / VERSIONS
    versions.mkdir(exist_ok=True)
    folder = versions / f"{uuid.uuid4().hex}{PARTIAL}"
    folder.mkdir()
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by path relative to it (``/``-separated),
    ``summary.json`` excluded."""
    digests = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name != "summary.json":
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def publish(out: Path, staged: Path, summary: dict) -> None:
    """Write ``summary`` (plus ``files``: the digests) into ``staged`` last, seal it and
    make it the current set of ``out``.

    Args:
        out: The run folder.
        staged: The folder of :func:`staged_outputs`, holding every other file.
        summary: JSON-serialisable content of ``summary.json``; ``files`` is added.
    """
    summary["files"] = file_digests(staged)
    for path in staged.rglob("*"):
        if path.is_file():
            with open(path, "rb+") as handle:
                os.fsync(handle.fileno())
    step("write summary.json of the new set")
    (staged / "summary.json").write_text(json.dumps(summary, indent=2))
    with open(staged / "summary.json", "rb+") as handle:
        os.fsync(handle.fileno())
    sealed = staged.with_name(staged.name.removesuffix(PARTIAL))
    step("seal the new set")
    os.rename(staged, sealed)
    fsync_dir(sealed.parent)
    names = [name for name in OUTPUT_NAMES if (sealed / name).exists()]
    for name in names:
        _link(out / name, Path(CURRENT) / name)
    _link(out / CURRENT, Path(VERSIONS) / sealed.name, what="switch to the new set")
    for name in OUTPUT_NAMES:
        if name not in names and (out / name).is_symlink():
            step(f"remove {name}, absent from the new set")
            (out / name).unlink()
    clean_leftovers(out)


def _link(path: Path, target: Path, what: str | None = None) -> None:
    """Make ``path`` a symbolic link to ``target`` (relative), atomically where it
    already is a link; a plain file or folder there (a copied run) is replaced."""
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    tmp = temporary_name(path)
    os.symlink(target, tmp)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    step(what or f"link {path.name}")
    os.replace(tmp, path)
    fsync_dir(path.parent)


def current_version(out: Path) -> Path | None:
    """The folder of the current set, or None."""
    link = out / CURRENT
    return (out / os.readlink(link)) if link.is_symlink() else None


def clean_leftovers(out: Path) -> None:
    """Remove every set but the current one (partial ones included) and temporaries."""
    current = current_version(out)
    versions = out / VERSIONS
    if versions.is_dir():
        for folder in versions.iterdir():
            if current is None or folder.name != current.name:
                step(f"remove old set {folder.name}")
                shutil.rmtree(folder, ignore_errors=True)
    remove_temporaries(out)


def verify(out: Path) -> dict | None:
    """The current set's summary if every file it lists is there with its digest, and
    no other file; None without a current set.

    Raises:
        ValueError: naming the first file that is missing, extra or changed.
    """
    if not (out / "summary.json").is_file():
        return None
    summary = json.loads((out / "summary.json").read_text())
    found = file_digests(current_version(out))
    listed = summary.get("files", {})
    for name in sorted(set(found) | set(listed)):
        if found.get(name) != listed.get(name):
            state = "missing" if name not in found else "extra" if name not in listed else "changed"
            raise ValueError(f"{out}: output {name} is {state}")
    return summary
