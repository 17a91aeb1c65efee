"""The web process's gunicorn settings (receiver/gunicorn_conf.py), each probed in a Python process of its own (what
they change lasts for the life of the process): workers freeze what the loaded app holds, and no access log is
built when none is written; the first worker says when the host's clock is off Redis's."""

from __future__ import annotations

import os
import subprocess
import sys

from devtools.processes import ROOT
from helpers import commands_during


def test_web_workers_freeze_what_the_loaded_app_holds():
    # In a child: freezing is for the life of the process.
    probe = ("import gc; from receiver import gunicorn_conf; before = gc.get_freeze_count(); "
             "from types import SimpleNamespace; gunicorn_conf.post_worker_init(SimpleNamespace(age=2)); "
             "print(before, gc.get_freeze_count())")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={"PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, timeout=30)
    before, after = map(int, proc.stdout.split())
    assert before == 0 and after > 1000, proc.stderr


def test_only_the_first_web_worker_reads_redis_s_clock_at_start(connection):
    """Its app's services' Redis (the suite's): the first worker of a host asks its TIME, beside its requests; a
    later one (a worker restarted) asks nothing."""
    url = connection.connection_pool.connection_kwargs
    for age, asked in ((1, ["TIME"]), (2, [])):
        probe = ("import threading; from types import SimpleNamespace; from redis import Redis; "
                 "from receiver import gunicorn_conf; "
                 f"svc = SimpleNamespace(redis=Redis(host='127.0.0.1', port={url['port']}, db=3)); "
                 f"gunicorn_conf.post_worker_init(SimpleNamespace(age={age}, wsgi=SimpleNamespace("
                 "extensions={'fluxhook': svc}))); "
                 "[t.join() for t in threading.enumerate() if t.name == 'clock-check']")
        def start(probe=probe):
            # The run's own deadline bounds the thread's wait: under load its start and Redis's answer take seconds.
            subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={"PATH": os.environ.get("PATH", "")},
                           capture_output=True, text=True, timeout=60, check=True)
        sent = [c["command"] for c in commands_during(connection, 3, start) if not c["command"].startswith("SELECT")]
        assert [c for c in sent if c != "HELLO 3" and not c.startswith("CLIENT")] == asked, sent


def test_gunicorn_builds_nothing_for_an_access_log_it_does_not_write():
    # logconfig_dict alone makes gunicorn's stock logger count its access log as on, and build
    # every request's log atoms for it (about 7 % of a callback's CPU time), though nothing writes them.
    # In a child: building a gunicorn logger configures the process's logging.
    probe = ("from gunicorn.config import Config; from gunicorn.glogging import Logger; "
             "from receiver import gunicorn_conf; cfg = Config(); "
             "cfg.set('logconfig_dict', gunicorn_conf.logconfig_dict); stock = Logger(cfg).access_log_enabled; "
             "cfg.set('logger_class', gunicorn_conf.logger_class); ours = cfg.logger_class(cfg); "
             "ours.access(None, None, None, None); print(stock, ours.access_log_enabled)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={"PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, timeout=30)
    # The stock access() would have failed building atoms from those Nones.
    assert proc.stdout.split() == ["True", "False"], proc.stderr
