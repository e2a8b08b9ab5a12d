"""`user add`: argon2 hashes in SQLite, one clear line and exit 2 for a bad role or
password, and an existing user updated (new password, sessions ended)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from monitor.store.accounts import HASHER, add_user, main_user_add
from tests.support.brokers import ROOT
from tests.support.dashboard import PASSWORD, Client, is_error
from tests.support.db import query


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\npath = "{tmp_path / "db" / "crswatch.db"}"\n')
    return path, tmp_path / "db" / "crswatch.db"


def run(args, stdin_text="", capsys=None):
    code = main_user_add(args, io.StringIO(stdin_text))
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def test_user_add_with_password_stdin_stores_an_argon2_hash(cfg_file, capsys):
    cfg, db = cfg_file
    code, out, err = run(
        ["nina", "--role", "nurse", "--password-stdin", "--config", str(cfg)],
        "s3cret-password\n",
        capsys,
    )
    assert code == 0 and out.strip() == "created user nina (nurse)" and err == ""
    [(name, role, digest)] = query(db, "SELECT username, role, password_hash FROM users")
    assert (name, role) == ("nina", "nurse")
    assert digest.startswith("$argon2id$") and "s3cret" not in digest
    assert HASHER.verify(digest, "s3cret-password")


@pytest.mark.parametrize(
    "args, stdin_text, message",
    [
        (["x", "--role", "surgeon", "--password-stdin"], "long enough", "role must be one of"),
        (["x", "--role", "nurse", "--password-stdin"], "\n", "empty password"),
        (["x", "--role", "nurse", "--password-stdin"], "", "empty password"),
        (["x", "--role", "nurse", "--password-stdin"], "short\n", "at least 10 characters"),
        (["x", "--role", "nurse", "--password-stdin"], "password123!\n", "too common"),
        (["x", "--role", "nurse", "--password-stdin"], "1234567890\n", "too common"),
        (["x", "--role", "nurse", "--password-stdin"], " " * 12 + "\n", "one character"),
        (["nina", "--role", "nurse", "--password-stdin"], "nina-at-work\n", "user name"),
        (["bad name!", "--role", "nurse", "--password-stdin"], "long enough", "user name"),
        (["x", "--password-stdin"], "long enough", "--role"),
        (["x", "--role", "nurse", "--bogus"], "", "unrecognized arguments"),
    ],
)
def test_user_add_refuses_with_one_line_and_exit_2(cfg_file, capsys, args, stdin_text, message):
    cfg, db = cfg_file
    code, out, err = run([*args, "--config", str(cfg)], stdin_text, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("crswatch user add: ") and message in err
    assert not db.exists()  # nothing was written


def test_user_add_with_a_missing_config_is_exit_2(tmp_path, capsys):
    code, _, err = run(
        ["x", "--role", "nurse", "--password-stdin", "--config", str(tmp_path / "none.toml")],
        "long enough",
        capsys,
    )
    assert code == 2 and "no such file" in err and err.count("\n") == 1


def test_user_add_prompts_twice_without_password_stdin(cfg_file, capsys, monkeypatch):
    cfg, db = cfg_file
    answers = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run(["nina", "--role", "nurse", "--config", str(cfg)], "", capsys)
    assert code == 2 and "differ" in err
    answers = iter(["same password", "same password"])
    code, out, _ = run(["nina", "--role", "nurse", "--config", str(cfg)], "", capsys)
    assert code == 0 and "created" in out


async def test_existing_user_is_updated_and_its_sessions_end(make_daemon):
    d = await make_daemon()
    db = d.cfg["storage.path"]
    c = await Client.as_user(d, "nina", "nurse")
    try:
        assert (await c.get("/api/beds"))[0] == 200
        assert add_user(db, "nina", "physician", "a new password") == "updated"
        status, body = await c.get("/api/beds")
        assert status == 401 and is_error(body)  # the old session is gone
        assert query(db, "SELECT role FROM users WHERE username='nina'") == [("physician",)]
        async with c.session.post(
            f"http://127.0.0.1:{d.http_port}/api/login",
            json={"username": "nina", "password": PASSWORD},
        ) as r:
            assert r.status == 401
    finally:
        await c.close()


def test_user_add_beside_a_running_daemon_as_a_separate_process(cfg_file):
    cfg, db = cfg_file
    code = (
        "import sys; from monitor.store.accounts import main_user_add; "
        "sys.exit(main_user_add(sys.argv[1:], sys.stdin))"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "ada",
            "--role",
            "admin",
            "--password-stdin",
            "--config",
            str(cfg),
        ],
        input="admin password\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert query(db, "SELECT username, role FROM users") == [("ada", "admin")]
