"""The run manifest: what makes a run this run, kept in its measurement store.

A run folder's store (``measurements.sqlite``, table ``meta``, key ``manifest``) holds
one JSON manifest, written when the run starts:

* the problem: name, problem file (absolute path) and the sha256 of its text;
* the seed and every search setting (:class:`~moo_compress.search.SearchSettings`);
* the accuracy mode (``real`` or ``fidelity``) and the evaluator's class;
* the sha256 of the model's initial weights (before any compression);
* the fleet: device ids and drift factors (as sha256 digests), the cluster
  representatives and sizes;
* where it measured (``embedded`` or ``scheduler``) and how to reach the scheduler
  (address, TLS files, ``--insecure``), the fine-tune steps;
* the package version and the store's schema version;
* the numeric environment it started on (:mod:`moo_compress.numeric_environment`: CPU,
  torch's kernel set, numeric package versions); manifests written before it was
  recorded have none;
* ``run_id``: a uuid4, the same for every resume of the run.

``--resume`` reads the manifest and continues with its settings, so
``python -m moo_compress.run --resume --out DIR`` is the whole command. An option given
explicitly that contradicts the manifest is refused (:func:`resolve`); so is a problem
whose model, fleet or accuracy mode no longer match it (:func:`check_identity`). The
store itself is keyed by :func:`store_key`, which includes the same identity, so that no
row of another model, fleet or accuracy mode can ever be read as one of this run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moo_compress.numeric_environment import numeric_environment
from moo_compress.problem import FleetCompressionProblem, FleetProblem
from moo_compress.search_settings import SearchSettings
from moo_compress.store import SCHEMA_VERSION

MANIFEST_KEY = "manifest"
"""Key of the manifest in the store's ``meta`` table."""

EMBEDDED = "embedded"

OPTION_OF_SETTING = {
    "seed": "--seed",
    "budget": "--budget",
    "accuracy_budget": "--accuracy-budget",
    "generations": "--generations",
    "pop_size": "--pop-size",
}
"""Search settings that have a command-line option, and the option."""


class ManifestError(Exception):
    """A run cannot continue as asked (one line for the user, exit code 2)."""


@dataclass(frozen=True)
class RunManifest:
    """See the module docstring. ``settings`` is ``vars(SearchSettings)``."""

    run_id: str
    problem: str
    problem_file: str
    problem_sha256: str
    seed: int
    settings: dict
    accuracy_mode: str
    evaluator: str
    model_sha256: str | None
    fleet: dict
    measured_on: str
    connection: dict
    finetune_steps: int
    package_version: str
    schema_version: int
    created: str
    numeric_environment: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str) -> RunManifest:
        """Raises ManifestError naming ``source`` if ``text`` is not a manifest."""
        try:
            values = json.loads(text)
            return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        except (ValueError, TypeError, KeyError) as exc:
            raise ManifestError(f"{source}: the run manifest is damaged ({exc})") from None

    def search_settings(self) -> SearchSettings:
        return SearchSettings(**self.settings)


# ---------------------------------------------------------------------- identity
def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_sha256(model: nn.Module) -> str:
    """sha256 over every tensor of ``model``'s state dict: name, dtype, shape, bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def fleet_identity(problem: FleetProblem) -> dict:
    """Device ids and drift of the problem's fleet (digests), and its clusters."""
    clusters = problem.clusters
    fleet = clusters.fleet
    if fleet is not None:
        ids = [fleet.device(i).device_id for i in range(len(fleet))]
        drift_sha256 = hashlib.sha256()
        for name in ("compute", "bandwidth", "overhead", "noise"):
            values = getattr(fleet, name, None)
            if values is not None:
                drift_sha256.update(name.encode())
                drift_sha256.update(np.ascontiguousarray(values, np.float64).tobytes())
        drift_digest = drift_sha256.hexdigest()
    else:
        ids = [d.device_id for d in clusters.representatives]
        drift_digest = None
    return {
        "n_devices": len(ids),
        "device_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "drift_sha256": drift_digest,
        "representatives": [d.device_id for d in clusters.representatives],
        "sizes": [int(s) for s in clusters.sizes],
    }


def _reference_model(problem: FleetProblem) -> nn.Module | None:
    """The compression problem's uncompressed model; None for other problems."""
    return problem.reference if isinstance(problem, FleetCompressionProblem) else None


def identity(problem: FleetProblem) -> dict:
    """What the problem builds: model weights, fleet, accuracy mode and evaluator."""
    model = _reference_model(problem)
    return {
        "model_sha256": model_sha256(model) if model is not None else None,
        "fleet": fleet_identity(problem),
        "accuracy_mode": problem.accuracy_mode,
        "evaluator": type(problem.evaluator).__name__,
    }


def store_key(space_fingerprint: str, ident: dict) -> str:
    """The store's ``problem`` key: the search space's fingerprint and 16 hex chars of
    the identity's sha256 (a store of another model, fleet or accuracy mode is refused
    when it is opened)."""
    text = json.dumps(ident, sort_keys=True)
    return f"{space_fingerprint}/{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def package_version() -> str:
    try:
        return metadata.version("moo_compress")
    except metadata.PackageNotFoundError:
        return "unknown"


def new_manifest(
    problem: FleetProblem,
    problem_file: Path,
    settings: SearchSettings,
    connection: dict,
    finetune_steps: int,
    ident: dict,
) -> RunManifest:
    """The manifest of a run that starts now (a fresh uuid4 ``run_id``)."""
    return RunManifest(
        run_id=uuid.uuid4().hex,
        problem=problem.name,
        problem_file=str(problem_file.resolve()),
        problem_sha256=file_sha256(problem_file),
        seed=settings.seed,
        settings=vars(settings).copy(),
        measured_on=EMBEDDED if connection["scheduler"] is None else "scheduler",
        connection=connection,
        finetune_steps=finetune_steps,
        package_version=package_version(),
        schema_version=SCHEMA_VERSION,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        numeric_environment=numeric_environment(),
        **ident,
    )


# ---------------------------------------------------------------------- resume
def read(store_path: Path) -> RunManifest:
    """The manifest of the store at ``store_path``, read without writing to it.

    Raises:
        ManifestError: the store is missing, not a readable SQLite file, or has no
            manifest (made by an older version, or killed before it was written).
    """
    if not store_path.is_file():
        raise ManifestError(f"--resume: {store_path} does not exist")
    try:
        con = sqlite3.connect(f"{store_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (MANIFEST_KEY,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ManifestError(
            f"{store_path} is not a readable measurement store ({exc}); "
            "start a new run in another --out"
        ) from None
    if row is None:
        raise ManifestError(
            f"{store_path} has no run manifest (an older version of moo_compress wrote "
            "it, or the run was stopped before it began); it cannot be resumed safely; "
            "start a new run in another --out"
        )
    return RunManifest.from_json(row[0], str(store_path))


def resolve(args: argparse.Namespace, manifest: RunManifest) -> SearchSettings:
    """The manifest's search settings; an option in ``args`` that was given (not None)
    and differs from the manifest raises ManifestError naming both values.

    ``args`` holds the runner's options: ``seed``, ``budget``, ``accuracy_budget``,
    ``generations``, ``pop_size`` (None: not given) and ``no_transfer`` (True: given).
    """
    settings = manifest.search_settings()
    for name, option in OPTION_OF_SETTING.items():
        given = getattr(args, name)
        if given is not None and given != getattr(settings, name):
            raise ManifestError(
                f"{option} {given} contradicts the run being resumed, which was started "
                f"with {option} {getattr(settings, name)}; drop the option to continue that "
                "run, or start a new one in another --out"
            )
    if args.no_transfer and settings.transfer:
        raise ManifestError(
            "--no-transfer contradicts the run being resumed, which was started with "
            "transfer (a multi-task GP); drop the option, or start a new run in another --out"
        )
    return settings


def check_problem_file(manifest: RunManifest, given: str | None) -> Path:
    """The problem file to resume with: ``given``, else the manifest's; its text must
    still hash to the manifest's sha256.

    Raises:
        ManifestError: the file is missing or differs, naming both files or hashes.
    """
    path = Path(given) if given else Path(manifest.problem_file)
    if not path.is_file():
        raise ManifestError(f"problem file {str(path)!r} of the run being resumed does not exist")
    digest = file_sha256(path)
    if digest != manifest.problem_sha256:
        raise ManifestError(
            f"problem file {str(path)!r} (sha256 {digest[:12]}) is not the one the run being "
            f"resumed started with ({manifest.problem_file!r}, sha256 "
            f"{manifest.problem_sha256[:12]}); start a new run in another --out"
        )
    return path


def check_identity(manifest: RunManifest, ident: dict) -> None:
    """Raise ManifestError unless the problem as built now matches the manifest:
    model weights, fleet, accuracy mode and evaluator (naming the first that differs)."""
    stored = {key: getattr(manifest, key) for key in ident}
    for key, value in ident.items():
        if stored[key] != value:
            raise ManifestError(
                f"the problem now builds a different {key.replace('_', ' ')} "
                f"({_short(value)}) than the run being resumed ({_short(stored[key])}); "
                "its measurements cannot be reused; start a new run in another --out"
            )


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else f"{text[:37]}..."


def connection_of(args: argparse.Namespace) -> dict:
    """Where ``args`` measure: scheduler address (None: embedded), TLS files (absolute
    paths), ``insecure``."""
    files = {
        key: str(Path(getattr(args, key)).resolve()) if getattr(args, key) else None
        for key in ("tls_ca_file", "tls_cert", "tls_key")
    }
    return {"scheduler": args.scheduler, **files, "insecure": bool(args.insecure)}


def resume_connection(args: argparse.Namespace, manifest: RunManifest) -> dict:
    """The manifest's connection, or the one ``args`` give (a scheduler may move); an
    embedded run cannot continue on a scheduler, nor the reverse.

    Raises:
        ManifestError: ``--scheduler`` given for a run that measured embedded devices.
    """
    if args.scheduler is None:
        return manifest.connection
    if manifest.measured_on == EMBEDDED:
        raise ManifestError(
            f"--scheduler {args.scheduler} contradicts the run being resumed, which measured "
            "on the embedded cluster; drop the option, or start a new run in another --out"
        )
    return connection_of(args)
