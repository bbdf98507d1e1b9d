"""A resumable pipeline of stages in one output directory (the demo's, and any later runner's).

Each stage writes a marker with a fingerprint of everything it depends on (its settings,
chained with the fingerprint of the stage before). A stage is reused only if its marker
matches and every earlier stage was reused; otherwise its outputs are wiped and it runs again,
and so does every later stage. So an interrupted run resumes at the unfinished stage, a
changed setting redoes the stages it affects, and one directory never mixes results of two
configurations. A directory that is not the runner's own is never touched; one run per
directory at a time. Commands run with their output in a log and a progress line every few
seconds; Ctrl-C stops their whole process group.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

STAGE_DIR = ".stages"


class StageError(RuntimeError):
    """A stage failed or the output directory cannot be used; the message says which and why."""


def digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_PROGRESS_RE = re.compile(r"(Train|Infer|Map|Evaluat|Scor|\d+%\|)")
_REWARD_RE = re.compile(r"'reward': '([-0-9.e]+)'")


def progress_line(log_tail: str) -> str:
    """The latest progress-bar fragment of a log (tqdm writes \\r-separated updates), plus the
    latest GRPO reward when there is one."""
    pieces = [p.strip() for p in re.split(r"[\r\n]", log_tail) if p.strip()]
    status = next((p for p in reversed(pieces) if _PROGRESS_RE.search(p)), pieces[-1] if pieces else "")
    rewards = _REWARD_RE.findall(log_tail)
    if rewards:
        status += f"  reward={float(rewards[-1]):.3f}"
    return status[-160:]


def _tail(path: Path, size: int = 8192) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, label: str, heartbeat: float, cwd: Path | None = None) -> None:
    """Run `cmd` with its output in `log_path`, printing a progress line every `heartbeat` s.

    On Ctrl-C / SIGTERM the whole process group is stopped before the exception propagates,
    so no swift worker outlives the demo."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
        last = ""
        try:
            while True:
                try:
                    returncode = proc.wait(timeout=heartbeat)
                    break
                except subprocess.TimeoutExpired:
                    line = progress_line(_tail(log_path))
                    if line and line != last:
                        print(f"    [{label}] {line}", flush=True)
                        last = line
        except BaseException:
            _stop(proc)
            raise
    if returncode != 0:
        tail = "\n".join(_tail(log_path, 3000).splitlines()[-15:])
        raise StageError(f"{label} failed (exit {returncode}); full log: {log_path}\n{tail}")


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass(frozen=True)
class Stage:
    name: str
    outputs: tuple[str, ...]  # paths under the output dir, removed before the stage (re)runs
    run: Callable[[Any], None]  # called with the runner's context
    settings: tuple[str, ...] = ()  # config fields the stage's result depends on
    # settings added after outputs existed, with the value that reproduces them: left out of the
    # fingerprint at that value, so those outputs stay valid (and resumable)
    added: Mapping[str, Any] = field(default_factory=dict)

    def fingerprint(self, config: Any, version: int, previous: str) -> str:
        values = {name: getattr(config, name) for name in self.settings}
        values = {name: v for name, v in values.items() if not (name in self.added and self.added[name] == v)}
        return digest({"version": version, "stage": self.name, "after": previous, **values})


@contextmanager
def locked(out: Path, kind: str) -> Iterator[None]:
    """One run of a `kind` per output directory at a time."""
    if out.exists() and not out.is_dir():
        raise StageError(f"{out} exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StageError(f"{out} is in use by another {kind} run") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def run_file(kind: str) -> str:
    """The file that marks a directory as a `kind` run's own (e.g. demo_run.json)."""
    return f"{kind}_run.json"


def prepare_output(out: Path, kind: str, config: Any, version: int, restart: bool) -> None:
    """Claim `out` for a `kind` run. A directory with other content is never touched; with
    `restart`, everything the run wrote is removed first."""
    marker = out / run_file(kind)
    entries = [p for p in out.iterdir() if p.name != ".lock"] if out.exists() else []
    if entries and not marker.exists():
        raise StageError(f"{out} exists and is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} output directory ({marker.name} missing); "
                         "choose another --out or remove it")
    if restart and entries:
        print(f"==> {out}: --restart; starting over", flush=True)
        for entry in entries:
            remove(entry)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": digest({"version": version, **asdict(config)}), "version": version,
                                  "config": asdict(config)}, indent=2) + "\n")


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children: unlike wall time,
    it does not grow when other jobs share the cores."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_stages(out: Path, kind: str, config: Any, version: int, stages: Sequence[Stage], context: Any,
               restart: bool = False, title: str | None = None) -> dict[str, dict[str, float]]:
    """Run the stages not finished yet in `out` (all of them after a restart or config change);
    each gets `context`; returns every stage's recorded {"seconds": wall, "cpu_seconds": cpu}."""
    with locked(out, kind):
        prepare_output(out, kind, config, version, restart)
        ctx = context
        markers = out / STAGE_DIR
        markers.mkdir(exist_ok=True)
        timings: dict[str, dict[str, float]] = {}
        reusing, fingerprint = True, ""
        print(f"==> {title or kind} in {out} (config {digest({'version': version, **asdict(config)})})", flush=True)
        for number, stage in enumerate(stages, start=1):
            marker = markers / f"{stage.name}.json"
            fingerprint = stage.fingerprint(config, version, fingerprint)
            recorded = json.loads(marker.read_text()) if marker.exists() else {}
            if reusing and recorded.get("fingerprint") == fingerprint:
                timings[stage.name] = {k: recorded[k] for k in ("seconds", "cpu_seconds")}
                print(f"[{number}/{len(stages)}] {stage.name}: done earlier ({recorded['seconds']:.0f} s)", flush=True)
                continue
            if recorded:
                print(f"    {stage.name}: {'settings changed' if reusing else 'an earlier stage was redone'}; "
                      "redoing it", flush=True)
            reusing = False  # everything after a (re)run stage is redone too
            remove(marker)
            for output in stage.outputs:
                remove(out / output)
            print(f"[{number}/{len(stages)}] {stage.name} ...", flush=True)
            start, cpu_start = time.monotonic(), cpu_seconds()
            stage.run(ctx)
            timings[stage.name] = {"seconds": time.monotonic() - start, "cpu_seconds": cpu_seconds() - cpu_start}
            marker.write_text(json.dumps({**timings[stage.name], "fingerprint": fingerprint}) + "\n")
            print(f"[{number}/{len(stages)}] {stage.name}: {timings[stage.name]['seconds']:.0f} s "
                  f"(cpu {timings[stage.name]['cpu_seconds']:.0f} s)", flush=True)
    return timings
