"""Development keys under var/: generated once, and the same for every process that starts at once (`make run`
starts web and worker together; a fresh clone's first commands may race)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from portal import devkeys


def _load(var_dir: str, start: object, out: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        out.put(json.dumps(devkeys.load_or_create(Path(var_dir))))  # type: ignore[attr-defined]
    except Exception as exc:  # the failure is the finding
        out.put(f"error: {exc!r}")  # type: ignore[attr-defined]


def test_processes_starting_together_all_get_the_one_set_of_keys(tmp_path: Path):
    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        var_dir = tmp_path / f"var{attempt}"
        start, out = context.Event(), context.Queue()
        workers = [context.Process(target=_load, args=(str(var_dir), start, out)) for _ in range(8)]
        for worker in workers:
            worker.start()
        start.set()
        answers = [out.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)

        assert not [answer for answer in answers if answer.startswith("error")]
        assert len(set(answers)) == 1
        assert json.loads(answers[0]) == json.loads((var_dir / "dev-keys.json").read_text())


def test_keys_once_written_are_kept(tmp_path: Path):
    first = devkeys.load_or_create(tmp_path)

    assert devkeys.load_or_create(tmp_path) == first
    assert (tmp_path / "dev-keys.json").stat().st_mode & 0o777 == 0o600
