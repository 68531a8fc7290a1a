"""The local card token key: created once, private from its first byte, in a private home."""

from __future__ import annotations

import os
import stat
import threading

from txguard import app as app_module
from txguard.app import App, create_private_file
from txguard.settings import Settings


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_made_once_0600_in_a_home_made_0700(tmp_path, monkeypatch):
    opened = []
    real_open = os.open
    monkeypatch.setattr(
        app_module.os, "open", lambda p, flags, m=0o777: opened.append((flags, m)) or real_open(p, flags, m)
    )
    old_umask = os.umask(0)  # the mode must not depend on the umask
    try:
        home = tmp_path / "home"
        key = App(Settings(home=home)).card_key()
    finally:
        os.umask(old_umask)
    assert len(key) == 64 and bytes.fromhex(key.decode())
    assert mode(home) == 0o700 and mode(home / "card_token.key") == 0o600
    ((flags, created_mode),) = opened
    assert flags & os.O_CREAT and flags & os.O_EXCL and created_mode == 0o600  # private as it is created
    assert App(Settings(home=home)).card_key() == key
    assert sorted(p.name for p in home.iterdir()) == ["card_token.key"]  # no temporary file left


def test_a_key_made_by_another_process_meanwhile_is_kept(tmp_path):
    path = tmp_path / "card_token.key"
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait()
        create_private_file(path, f"{i:064x}")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(path.read_text(), 16) in range(8) and len(list(tmp_path.iterdir())) == 1
    create_private_file(path, "f" * 64)
    assert path.read_text() != "f" * 64


def test_a_key_readable_by_others_is_made_private(tmp_path):
    path = tmp_path / "card_token.key"
    path.write_text("ab" * 32)
    path.chmod(0o644)
    assert App(Settings(home=tmp_path)).card_key() == b"ab" * 32
    assert mode(path) == 0o600
