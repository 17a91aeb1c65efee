"""The recorder devtools/module_trace.py puts in each of the service's processes: copied as ``sitecustomize.py`` into
a directory on their PYTHONPATH, so Python runs it at start and the service's code is unchanged. Standard library only.

With ``MODULE_TRACE_DIR`` set, it notes the file of every Python frame that runs (calls, returns, calls C), with
its thread, in every thread (``sys.setprofile`` for this one, ``threading.setprofile`` for those started later; a gunicorn
worker forked from its master keeps both). A thread of its own reads ``MODULE_TRACE_DIR/control`` a few times a
second: a new ``<n> reset`` line empties the record, a new ``<n> dump`` writes it to ``<pid>.json``; either is
acknowledged in ``<pid>.ack``, which also tells the tool, from the process's start, that the process records."""

import json
import os
import sys
import threading
import time

_DIR = os.environ.get("MODULE_TRACE_DIR", "")
# The control file is read this often: the tool waits for each process's acknowledgement, so at most this long.
_LOOK_EVERY = 0.05
_seen: set = set()
# Each thread's name, taken as it first runs: one that has ended by the dump is named still.
_names: dict = {}


def _profile(frame, event, arg, _add=_seen.add, _ident=threading.get_ident):
    # Every event, not only "call": a frame that began before the reset (a thread's loop, a module's main) runs code
    # in the window yet starts no call there; its calls of C functions (c_call, c_return) name it as they happen.
    # The module is the one whose globals the code runs in: a dataclass's __init__, made by exec, is its class's.
    ident = _ident()
    _add((ident, frame.f_globals.get("__file__") or frame.f_code.co_filename))
    if ident not in _names:
        _names[ident] = threading.current_thread().name


def _write(name: str, text: str) -> None:
    path = os.path.join(_DIR, name)
    with open(path + ".part", "w") as out:
        out.write(text)
    os.replace(path + ".part", path)  # whole or absent: the tool reads it while this process runs on


def _dump(line: str) -> None:
    files: dict = {}
    for ident, filename in list(_seen):
        files.setdefault(str(ident), []).append(filename)
    names = {str(ident): name for ident, name in list(_names.items())}
    _write(f"{os.getpid()}.json", json.dumps({"control": line, "pid": os.getpid(), "argv": sys.argv,
                                              "files": files, "names": names}))


def _watch() -> None:
    control, done = os.path.join(_DIR, "control"), ""
    _write(f"{os.getpid()}.ack", done)
    while True:
        time.sleep(_LOOK_EVERY)
        try:
            with open(control) as given:
                line = given.read().strip()
        except FileNotFoundError:
            continue
        if line == done:
            continue
        if line.endswith(" reset"):
            _seen.clear()
            _names.clear()
        elif line.endswith(" dump"):
            _dump(line)
        done = line
        _write(f"{os.getpid()}.ack", done)


def _start_watching() -> None:
    threading.Thread(target=_watch, name="module-trace", daemon=True).start()


if _DIR:
    _start_watching()
    os.register_at_fork(after_in_child=_start_watching)  # a fork keeps only the forking thread
    threading.setprofile(_profile)
    sys.setprofile(_profile)
