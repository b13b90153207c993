"""The bubblewrap sandbox of one model worker: what it sees and what it may use.

A worker process gets

- no network (``--unshare-net``: only a loopback with nothing behind it), its own PID,
  IPC, UTS and cgroup namespaces, a new session (no terminal injection);
- a read-only root built from the Python runtime only (``/usr``, the interpreter's
  prefix, the virtual environment, Bastion's own source), a private, size-bounded ``/tmp`` (tmpfs),
  a minimal ``/dev`` and ``/proc``, and its verified artifact folder at ``/model``
  (read-only) — never the workspace, the keyring or the database;
- an empty environment (``--clearenv``: no secrets; a few thread-count variables only);
- resource limits set before ``bwrap`` runs (``prlimit``, inherited by the worker):
  address space (``RLIMIT_AS``), processes (``RLIMIT_NPROC``), CPU seconds
  (``RLIMIT_CPU``), file size (``RLIMIT_FSIZE``), no core dumps;
- ``--die-with-parent``: the worker never outlives the gateway.

Running as root (containers, CI): bubblewrap runs privileged, without a user namespace,
and the worker drops to its own unprivileged uid with ``setpriv`` (no capabilities, an
empty bounding set, ``no_new_privs``).  The drop matters: the kernel never applies
``RLIMIT_NPROC`` to uid 0, so a fork bomb inside a user namespace mapped to root would
not be contained.  Each worker gets its own uid, so one worker's processes never count
against (or can signal) another's.  Running as an ordinary user, bubblewrap creates an
unprivileged user namespace instead (``--unshare-user``).

Example::

    box = Sandbox(SandboxLimits(memory_bytes=1 << 30))
    argv = box.command(Path("/srv/run/model-1"), uid=61001, program=[sys.executable, "-c", "1"])
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.core.errors import ConfigurationError

MIB = 1024 * 1024
#: where the artifact folder appears inside the sandbox
MODEL_MOUNT = "/model"
_UID_BASE = 61000
_UID_SPAN = 4000
_uids = itertools.count()


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one worker process (rlimits)."""

    memory_bytes: int = 2048 * MIB  # RLIMIT_AS: address space, not resident memory
    max_processes: int = 16  # RLIMIT_NPROC, per worker uid (threads count too)
    cpu_seconds: int = 3600  # RLIMIT_CPU: a backstop; request deadlines act first
    max_file_bytes: int = 16 * MIB  # RLIMIT_FSIZE: largest file it may write in /tmp
    max_open_files: int = 256  # RLIMIT_NOFILE
    tmp_bytes: int = 64 * MIB  # size of the private /tmp (tmpfs)


def next_worker_uid() -> int:
    """A fresh unprivileged uid for the next worker of this gateway process."""
    return _UID_BASE + (os.getpid() * 97 + next(_uids)) % _UID_SPAN


def _which(tool: str) -> str:
    found = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if found is None:
        raise ConfigurationError(
            f"{tool} is not installed: model workers run in a bubblewrap sandbox",
            hint="install it: apt-get install bubblewrap util-linux",
        )
    return found


def _runtime_paths() -> list[Path]:
    """The read-only paths the Python runtime and Bastion's code need."""
    import bastion

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    source_root = Path(bastion.__file__).resolve().parent.parent
    if not any(source_root.is_relative_to(p) for p in paths):
        paths.add(source_root)
    return sorted(paths)


def _parents(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


class Sandbox:
    """Builds the command that runs a program inside a worker sandbox."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._bwrap = _which("bwrap")
        self._prlimit = _which("prlimit")
        self._setpriv = _which("setpriv")
        self._root = os.geteuid() == 0

    def _rlimits(self) -> list[str]:
        lim = self.limits
        return [
            self._prlimit,
            f"--as={lim.memory_bytes}",
            f"--nproc={lim.max_processes}",
            f"--cpu={lim.cpu_seconds}",
            f"--fsize={lim.max_file_bytes}",
            f"--nofile={lim.max_open_files}",
            "--core=0",
            "--",
        ]

    def _filesystem(self, artifact_dir: Path) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
            p = Path(top)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), top]
            elif p.is_dir():
                args += ["--ro-bind", top, top]
        if Path("/etc/ld.so.cache").exists():
            args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        made: set[Path] = set()
        for path in _runtime_paths():
            # bwrap copies the modes of the host's parent folders (/root is 0700), which
            # the unprivileged worker could not traverse: create them 0755 first.
            for parent in _parents(path):
                if parent not in made and not str(parent).startswith(("/usr", "/lib")):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(parent)
            args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind", str(artifact_dir), MODEL_MOUNT]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777",
                 "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]  # noqa: S108
        return args

    def command(self, artifact_dir: Path, *, uid: int, program: Sequence[str]) -> list[str]:
        """The full argv: rlimits, then bwrap, then (as root) the uid drop, then ``program``."""
        args = [*self._rlimits(), self._bwrap, *self._filesystem(artifact_dir)]
        args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            args += ["--setenv", var, "1"]
        args += ["--setenv", "PATH", "/usr/bin:/bin", "--chdir", "/tmp"]  # noqa: S108
        if not self._root:
            return [*args, "--unshare-user", "--cap-drop", "ALL", "--", *program]
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            args += ["--cap-add", cap]
        drop = [self._setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return [*args, "--", *drop, *program]


__all__ = ["MODEL_MOUNT", "Sandbox", "SandboxLimits", "next_worker_uid"]
