"""The source's changes in a rehearsal and the two ways they reach the cache, as processes that can be killed.

A local SQLite database (WAL) stands in for the source and its log: ``items`` holds each key's version,
``changes`` every committed change, ``outbox`` the changes written in the same transaction for the invalidator
(one of them marked as the one its crash falls on),
``published`` every change whose ``DEL`` reached the cache, and ``offsets`` how far the invalidator has read.

Run as ``python -m experiments.rehearse.change_worker ROLE DB HOST PORT PASSWORD ...``:

* ``writer DB HOST PORT PASSWORD PATH INTERVAL_S START_AT CRASH_AT KEY...`` commits a change to each KEY in turn,
  one every INTERVAL_S from the wall-clock time START_AT. With PATH ``outbox`` the change and its outbox row are
  one transaction, the change numbered CRASH_AT (0-based; -1 for none) marked in the outbox, and the writer is
  done; with PATH ``dual write`` the writer then deletes the key from the cache itself — and at the change
  numbered CRASH_AT it is killed (SIGKILL, by itself) after the commit and before the delete, the crash a dual
  write cannot recover from.
* ``invalidator DB HOST PORT PASSWORD MODE`` tails the outbox from its stored offset and deletes each key,
  recording the change as published and then its offset; with MODE ``crash`` it is killed at the marked outbox
  row, after reading it and before the delete (``-``: the marks are ignored). Restarted, it reads from its
  stored offset again and catches up (at least once: a delete may be repeated, never lost).

Both print one JSON line when ready and stop when their stdin closes (the writer also when its keys are done).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
import time

import redis

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, version INTEGER NOT NULL,
                                    committed_at REAL NOT NULL, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, crash INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS published (seq INTEGER NOT NULL, deleted_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""
POLL_S = 0.02
"""How often the invalidator reads the outbox."""


def create(path: str) -> None:
    """A fresh source database at ``path``."""
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=10, isolation_level=None)


def commit_change(db: sqlite3.Connection, key: str, path: str, *, crash: bool = False) -> int:
    """One change of ``key`` committed (with its outbox row when ``path`` is the outbox, marked when ``crash``); its
    sequence number."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO items (key, version) VALUES (?, 1) "
                   "ON CONFLICT(key) DO UPDATE SET version = version + 1", (key,))
        version = db.execute("SELECT version FROM items WHERE key = ?", (key,)).fetchone()[0]
        seq = db.execute("INSERT INTO changes (key, version, committed_at, path) VALUES (?, ?, ?, ?)",
                         (key, version, time.time(), path)).lastrowid
        if path == "outbox":
            db.execute("INSERT INTO outbox (seq, key, crash) VALUES (?, ?, ?)", (seq, key, int(crash)))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(seq)


def published(db: sqlite3.Connection, seq: int) -> None:
    """Record that change ``seq``'s delete reached the cache."""
    db.execute("INSERT INTO published (seq, deleted_at) VALUES (?, ?)", (seq, time.time()))


def _die() -> None:
    """The planned crash: SIGKILL, which no handler sees (a host lost, an OOM kill)."""
    os.kill(os.getpid(), signal.SIGKILL)


def writer(db: sqlite3.Connection, cache: redis.Redis, path: str, interval_s: float, start_at: float, crash_at: int,
           keys: list[str], stop: threading.Event) -> None:
    """The writer role (see the module)."""
    for i, key in enumerate(keys):
        if stop.wait(max(0.0, start_at + i * interval_s - time.time())):
            return
        seq = commit_change(db, key, path, crash=path == "outbox" and i == crash_at)
        if path == "dual write":
            if i == crash_at:
                _die()
            cache.delete(key)
            published(db, seq)


def invalidator(db: sqlite3.Connection, cache: redis.Redis, crash: bool, stop: threading.Event) -> None:
    """The invalidator role (see the module)."""
    db.execute("INSERT OR IGNORE INTO offsets (name, seq) VALUES ('invalidator', 0)")
    while not stop.is_set():
        offset = db.execute("SELECT seq FROM offsets WHERE name = 'invalidator'").fetchone()[0]
        for seq, key, marked in db.execute("SELECT seq, key, crash FROM outbox WHERE seq > ? ORDER BY seq",
                                           (offset,)).fetchall():
            if crash and marked:
                _die()
            cache.delete(key)
            published(db, seq)
            db.execute("UPDATE offsets SET seq = ? WHERE name = 'invalidator'", (seq,))
        stop.wait(POLL_S)


def main(argv: list[str]) -> None:
    """Run one role until its stdin closes (see the module)."""
    role, path, host, port, password, *rest = argv
    db = _connect(path)
    cache = redis.Redis(host=host, port=int(port), password=password, protocol=2, socket_timeout=2,
                        retry_on_timeout=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print('{"ready": true}', flush=True)
    if role == "writer":
        change_path, interval, start_at, crash_at, *keys = rest
        writer(db, cache, change_path, float(interval), float(start_at), int(crash_at), keys, stop)
    elif role == "invalidator":
        invalidator(db, cache, rest[0] == "crash", stop)
    else:
        raise SystemExit(f"unknown role {role!r}: writer or invalidator")


if __name__ == "__main__":
    main(sys.argv[1:])
