"""The module trace's recorder in a real Python process: what runs after a reset, on every thread, narrowed to the
service's modules."""

from __future__ import annotations

import shutil
import subprocess
import sys

from devtools.module_trace import HOOK, Recorders, by_package, over_limit, service_modules
from devtools.processes import wait_until

MODULES = {
    "fluxhook/__init__.py": "",
    "fluxhook/early.py": "def run():\n    return 1\n",
    "fluxhook/store/later.py": "def run():\n    return 2\n",
    "fluxhook/store/never.py": "def run():\n    return 3\n",
    "worker/__init__.py": "",
    "worker/threaded.py": "def run():\n    return 4\n",
    # Runs early's function before the reset, then later's on its main thread and threaded's on a thread started after.
    "worker/__main__.py": (
        "import threading\n"
        "from fluxhook import early\n"
        "from fluxhook.store import later, never\n"
        "from worker import threaded\n"
        "early.run()\n"
        "print('ready', flush=True)\n"
        "input()\n"
        "later.run()\n"
        "thread = threading.Thread(target=threaded.run, name='started-later')\n"
        "thread.start()\n"
        "thread.join()\n"
        "print('ran', flush=True)\n"
        "input()\n"
    ),
}


def test_a_process_records_what_ran_after_the_reset_on_each_thread(tmp_path):
    root, hooks = tmp_path / "root", tmp_path / "hooks"
    for name, text in MODULES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    hooks.mkdir()
    shutil.copy(HOOK, hooks / "sitecustomize.py")
    env = {"PYTHONPATH": f"{hooks}:{root}", "MODULE_TRACE_DIR": str(hooks)}
    process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=root, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        recorders = Recorders(hooks, root)
        wait_until(recorders.live, message="the process to record")
        # Its imports and early's run done: a reset told before them (a loaded machine) would record them as after it.
        assert process.stdout.readline() == "ready\n"
        assert recorders.tell("reset") == [process.pid]
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.stdout.readline() == "ran\n"
        modules = service_modules(root)
        [record] = recorders.read(web_master=0, modules=modules)
    finally:
        process.kill()
        process.wait()
    assert record.role == "worker"
    assert record.modules == {"fluxhook/store/later.py", "worker/threaded.py", "worker/__main__.py"}
    assert sorted(thread.split(":")[1] for thread in record.threads) == ["MainThread", "started-later"]
    assert by_package(record.modules) == {"fluxhook/store": ["later"], "worker": ["__main__", "threaded"]}
    assert len(modules) == len(MODULES)


def test_a_job_over_the_limit_is_said_with_its_count_and_one_within_is_not():
    assert over_limit(81, 80) == ("one job ran 81 modules, more than the 80 allowed: merge what holds one thing, "
                                  "or skip what finds nothing to do")
    assert over_limit(80, 80) is None
    assert over_limit(500, None) is None
