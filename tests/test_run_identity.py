"""A resumed run is the same run; one run per folder; a problem's own mistakes are one
line. Each test runs the runner in-process (or two of them side by side) on a folder
that holds a started run: a store with its manifest, no measurement yet."""

from __future__ import annotations

import importlib.util
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moo_compress import manifest
from moo_compress.numeric_environment import numeric_environment
from moo_compress.problem_file import fingerprint
from moo_compress.run import main
from moo_compress.run_lock import FolderInUse, RunLock
from moo_compress.search_settings import SearchSettings
from moo_compress.store import MeasurementStore, Record

TINY = Path(__file__).parent / "problems" / "tiny_fleet.py"
SUBCLASS = """import importlib.util, os
spec = importlib.util.spec_from_file_location("tiny_base", {tiny!r})
base = importlib.util.module_from_spec(spec)
spec.loader.exec_module(base)


class Variant(base.TinyFleet):
{body}
"""
REAL_WHEN_ASKED = """    def build_accuracy(self, model, example_input):
        evaluator = super().build_accuracy(model, example_input)
        if os.environ.get("TINY_ACCURACY") == "real":
            evaluator.mode = "real"  # a labelled evaluator, as far as identity goes
        return evaluator
"""


def _problem_file(tmp_path: Path, body: str, name: str = "variant.py") -> Path:
    path = tmp_path / name
    path.write_text(SUBCLASS.format(tiny=str(TINY), body=body))
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _started_run(out: Path, problem_file: Path, seed: int = 3) -> manifest.RunManifest:
    """Make ``out`` hold a run of ``problem_file`` as the runner starts one."""
    spec = importlib.util.spec_from_file_location(f"started_{problem_file.stem}", problem_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (cls,) = [
        v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
    ]
    problem = cls(seed=seed)
    settings = SearchSettings(budget=80, accuracy_budget=24, pop_size=8, generations=3, seed=seed)
    connection = {"scheduler": None, "tls_ca_file": None, "tls_cert": None, "tls_key": None}
    ident = manifest.identity(problem)
    run = manifest.new_manifest(
        problem, problem_file, settings, {**connection, "insecure": False}, 0, ident
    )
    out.mkdir(parents=True)
    key = manifest.store_key(fingerprint(problem), ident)
    with MeasurementStore(out / "measurements.sqlite", key, run.run_id) as store:
        store.write_meta(manifest.MANIFEST_KEY, run.to_json())
    return run


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, problem file) of a started tiny-variant run, seed 3."""
    root = tmp_path_factory.mktemp("started")
    problem = _problem_file(root, REAL_WHEN_ASKED)
    out = root / "run"
    _started_run(out, problem)
    return out, problem


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seed", "4"], "--seed 4 contradicts the run being resumed, which was started with "),
        (["--budget", "300"], "--budget 300 contradicts the run being resumed"),
        (["--generations", "10"], "which was started with --generations 3"),
        (["--pop-size", "40"], "which was started with --pop-size 8"),
        (["--accuracy-budget", "100"], "which was started with --accuracy-budget 24"),
        (["--no-transfer"], "--no-transfer contradicts the run being resumed"),
        (["--scheduler", "tcp://10.0.0.5:8786", "--insecure"], "measured on the embedded"),
    ],
)
def test_resume_with_other_settings_is_refused(started, option, message, capsys):
    out, _ = started
    before = (out / "measurements.sqlite").read_bytes()
    assert main(["--resume", "--out", str(out), *option]) == 2
    assert message in _one_line(capsys)
    assert (out / "measurements.sqlite").read_bytes() == before


def test_resume_with_the_same_explicit_settings_passes_the_checks(started):
    out, problem = started
    args = manifest.resolve(
        _namespace(seed=3, budget=80, generations=3, pop_size=8, accuracy_budget=24),
        manifest.read(out / "measurements.sqlite"),
    )
    assert (args.seed, args.budget, args.transfer) == (3, 80, True)


def _namespace(**given):
    from argparse import Namespace

    values = dict.fromkeys(manifest.OPTION_OF_SETTING, None)
    return Namespace(**{**values, **given, "no_transfer": False})


def test_resume_in_another_accuracy_mode_is_refused(started, capsys, monkeypatch):
    out, _ = started
    monkeypatch.setenv("TINY_ACCURACY", "real")
    assert main(["--resume", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "the problem now builds a different accuracy mode (real) than the run being " in err
    assert "resumed (fidelity)" in err


def test_resume_after_the_problem_file_changed_is_refused(tmp_path, capsys):
    problem = _problem_file(tmp_path, "    generations = 3\n")
    out = tmp_path / "run"
    run = _started_run(out, problem)
    problem.write_text(problem.read_text() + "\n# edited\n")
    assert main(["--resume", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert f"is not the one the run being resumed started with ({run.problem_file!r}" in err
    other = _problem_file(tmp_path, "    generations = 3\n", name="other.py")
    other.write_text(other.read_text() + "\n# another\n")
    assert main([str(other), "--resume", "--out", str(out)]) == 2
    assert "other.py' (sha256 " in _one_line(capsys)


def test_resume_of_another_fleet_is_refused(tmp_path, capsys):
    """Same file and seed, but the problem now builds another fleet (a changed SKU
    table or drift model would do that): the identity check refuses the store."""
    problem = _problem_file(
        tmp_path,
        "    def build_fleet(self):\n"
        "        n = int(os.environ.get('TINY_FLEET_SIZE', '40'))\n"
        "        return base.Fleet.field_aged(base.get_sku('cortex-a72'), n=n, seed=self.seed)\n",
    )
    out = tmp_path / "run"
    _started_run(out, problem)
    env = {"TINY_FLEET_SIZE": "41"}
    result = subprocess.run(
        [sys.executable, "-m", "moo_compress.run", "--resume", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: the problem now builds a different fleet (")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_store_without_measurements_is_resumed_with_a_notice(started, capsys, monkeypatch):
    """Continue the started run far enough to see the notice; stop it at the search."""
    out, _ = started

    def stop(self):
        raise KeyboardInterrupt

    monkeypatch.setattr("moo_compress.search.FleetSearch.run", stop)
    assert main(["--resume", "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert "the store holds no measurement yet; the run starts from" in captured.out
    assert f"continue with: python -m moo_compress.run --resume --out {out}" in captured.err


def _set_manifest_environment(store: Path, environment: dict | None) -> None:
    """Rewrite the stored manifest as if the run had started on ``environment``."""
    values = json.loads(manifest.read(store).to_json())
    if environment is None:
        del values["numeric_environment"]  # as written before the field existed
    else:
        values["numeric_environment"] = environment
    with sqlite3.connect(store) as con:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = ?", (json.dumps(values), manifest.MANIFEST_KEY)
        )
    con.close()


@pytest.mark.parametrize("began_on", ["other", "same", "unrecorded"])
def test_resume_on_another_numeric_environment_says_what_changed(
    tmp_path, capsys, monkeypatch, began_on
):
    """The search is repeatable only on one numeric environment: a resume elsewhere names
    each difference, once, and resumes all the same; the same environment, or a manifest
    from before the environment was recorded, gives no notice."""
    out = tmp_path / "run"
    _started_run(out, _problem_file(tmp_path, "    pass\n"))
    store = out / "measurements.sqlite"
    here = numeric_environment()
    assert manifest.read(store).numeric_environment == here
    capability = "AVX512" if here["torch_cpu_capability"] == "AVX2" else "AVX2"
    other = {**here, "cpu": "Some Other CPU", "torch_cpu_capability": capability}
    environment = {"other": other, "same": here, "unrecorded": None}[began_on]
    _set_manifest_environment(store, environment)
    assert manifest.read(store).numeric_environment == environment

    def stop(self):
        raise KeyboardInterrupt

    monkeypatch.setattr("moo_compress.search.FleetSearch.run", stop)
    assert main(["--resume", "--out", str(out)]) == 130
    printed = " ".join(capsys.readouterr().out.split())
    notices = printed.count("The run began on another numeric environment")
    assert notices == (began_on == "other")
    if began_on == "other":
        assert f"cpu: Some Other CPU -> {here['cpu']}" in printed
        assert f"torch_cpu_capability: {capability} -> {here['torch_cpu_capability']}" in printed
        assert "every measurement is kept" in printed


def test_two_runs_on_one_folder_one_is_refused_at_once(tmp_path):
    """While a run holds a folder, a second run on it (new, or --resume) is refused with
    one line before it builds anything; the first run's rows stay all of its own run."""
    out = tmp_path / "shared"
    command = [sys.executable, "-m", "moo_compress.run", str(TINY), "--out", str(out)]
    first = subprocess.Popen(
        [*command, "--seed", "3", "--generations", "500"],  # long enough to overlap
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    while not (out / "measurements.sqlite").exists() and time.time() < deadline:
        time.sleep(0.05)
    for extra in (["--seed", "4"], ["--resume"]):
        second = subprocess.run([*command, *extra], capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.startswith(f"error: {out} is in use by another run (pid {first.pid}")
        assert len(second.stderr.strip().splitlines()) == 1
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 130, stderr[-2000:]
    run_id = manifest.read(out / "measurements.sqlite").run_id
    with sqlite3.connect(out / "measurements.sqlite") as db:
        run_ids = {r for (r,) in db.execute("SELECT DISTINCT run_id FROM measurements")}
    assert run_ids <= {run_id} and len(run_id) == 32
    assert manifest.read(out / "measurements.sqlite").seed == 3


def test_lock_is_exclusive_and_released(tmp_path):
    lock = RunLock(tmp_path)
    lock.note("abc")
    with pytest.raises(FolderInUse, match=r"in use by another run \(pid \d+, run abc\)"):
        RunLock(tmp_path)
    lock.release()
    RunLock(tmp_path).release()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "    budget = '80'\n",
            "error: Variant.budget = '80' is not allowed; allowed: an integer from 1 to 1000000",
        ),
        ("    pop_size = 10**9\n", "Variant.pop_size = 1000000000 is not allowed"),
        ("    name = '../x'\n", "Variant.name = '../x' is not allowed"),
        ("    min_accuracy = 2\n", "Variant.min_accuracy = 2 is not allowed"),
        (
            "    retry_policy = {'timeout_s': 5}\n",
            "Variant.retry_policy = {'timeout_s': 5} is not allowed; allowed: None or a "
            "moo_compress.dispatch.RetryPolicy",
        ),
        (
            "    build_model = base.FleetCompressionProblem.build_model\n",
            "Variant does not define ",
        ),
        (
            "    def build_fleet(self):\n        return 42\n",
            "error: building Variant failed: TypeError: 'int' object is not iterable",
        ),
        (
            "    def build_model(self):\n        raise KeyError('weights')\n",
            "error: building Variant failed (at variant.py:9, in build_model): KeyError: 'weights'",
        ),
        (
            "    def build_model(self):\n        return None\n",
            "error: building Variant failed: TypeError: ",
        ),
    ],
)
def test_problem_class_mistakes_are_one_line(tmp_path, capsys, body, message):
    problem = _problem_file(tmp_path, body)
    out = tmp_path / "run"
    assert main([str(problem), "--out", str(out)]) == 2
    assert message in _one_line(capsys)
    assert not out.exists()  # a failed start leaves no folder behind


def test_a_folder_holding_other_files_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "front.csv").write_text("mine\n")
    assert main([str(TINY), "--out", str(out)]) == 2
    assert "is not empty and holds no run (front.csv)" in _one_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["front.csv"]
    assert (out / "front.csv").read_text() == "mine\n"


def test_corrupt_store_pages_are_one_line(tmp_path, capsys):
    """A store whose header, schema and manifest are intact but whose measurement pages
    are garbage: one line naming the file as damaged (not a full disk), exit code 2."""
    out = tmp_path / "run"
    run = _started_run(out, TINY)
    store_path = out / "measurements.sqlite"
    with sqlite3.connect(store_path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    key = dict(sqlite3.connect(store_path).execute("SELECT key, value FROM meta"))["problem"]
    with MeasurementStore(store_path, key, run.run_id) as store:
        for i in range(3000):
            store.add(Record("x", 0, json.dumps({"i": i}), "latency", (1.0, 2.0)))
    data = bytearray(store_path.read_bytes())
    first_garbage = 6 * page_size  # pages 1-5: schema, the tables' roots, meta
    data[first_garbage:] = b"\xa5" * (len(data) - first_garbage)
    store_path.write_bytes(bytes(data))
    assert manifest.read(store_path).run_id == run.run_id  # the manifest still reads
    with pytest.raises(sqlite3.DatabaseError), sqlite3.connect(store_path) as db:
        db.execute("SELECT COUNT(*), SUM(median) FROM measurements").fetchone()
    assert main(["--resume", "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"error: {store_path} is damaged (database disk image is malformed)")
    assert "room" not in err and "full" not in err
