"""`python -m pipeline.demo`: serve the simulated cloud in the foreground until signalled or orphaned."""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
from pathlib import Path

from pipeline.demo.config import KNOBS, DemoCloudConfig
from pipeline.demo.server import DemoCloud

WATCH_INTERVAL_S = 1.0


def process_exists(pid: int) -> bool:
    """Tell whether process pid is still running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: signal 0 is all there is to go on
    # The state letter follows the command name, which may itself hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def write_url_file(path: Path, url: str) -> None:
    """Write url (no trailing newline) to path atomically, so a reader never sees a partial file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(url)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _pid(text: str) -> int:
    pid = int(text)
    if pid < 1:
        # kill(0 or negative) addresses process groups, which would always look alive.
        raise argparse.ArgumentTypeError(f"{text} is not a process id")
    return pid


def _parser(base: DemoCloudConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.demo",
        description="Serve a simulated OnApp API. Defaults come from DEMO_CLOUD_* variables.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--url-file", type=Path, metavar="PATH",
                        help="once listening, write the base URL to PATH (atomically, no trailing newline)")
    parser.add_argument("--exit-with-pid", type=_pid, metavar="PID",
                        help="exit once process PID is gone, so a parent that dies leaves no orphan")
    for name, var, flag, parse in KNOBS:
        default = getattr(base, name)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"env {var}")
        else:
            parser.add_argument(flag, dest=name, type=parse, default=default, help=f"env {var}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo cloud in the foreground until SIGINT, SIGTERM or the end of the watched process."""
    parser = _parser(DemoCloudConfig.from_env())
    args = parser.parse_args(argv)
    try:
        config = DemoCloudConfig(**{name: getattr(args, name) for name, *_ in KNOBS})
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with DemoCloud(config, host=args.host, port=args.port) as cloud:
        if args.url_file is not None:
            write_url_file(args.url_file, cloud.url)
        fleet = cloud.fleet
        print(f"Demo OnApp cloud serving {cloud.url}", flush=True)
        print(f"  login: {config.user}   API key: {config.api_key}   (demo credentials)")
        print(f"  {len(fleet.vms)} VMs, {len(fleet.backups)} backups, {len(fleet.users)} users, "
              f"{len(fleet.backup_servers)} backup servers. Ctrl-C to stop.", flush=True)
        while not stop.wait(WATCH_INTERVAL_S):
            # No farewell line: a parent that died may have taken the read end of stdout with it.
            if args.exit_with_pid is not None and not process_exists(args.exit_with_pid):
                break
    return 0
