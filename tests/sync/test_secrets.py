"""The local key and authenticated encryption of secrets and the token cache (pure, temp files, subprocesses)."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync.errors import SecretError
from sync.secrets import KEY_FILE_ENV, KEY_FILE_NAME, KeyStore, looks_encrypted

SECRET = "Vx8~Q.q-client-secret-value_ÄÖ"


def test_round_trip_text_and_bytes(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "state", env={})
    token = keys.encrypt(SECRET)
    assert token.startswith("ps1:") and looks_encrypted(token)
    assert SECRET not in token
    assert "=" not in token and "+" not in token and "/" not in token  # URL-safe, unpadded
    assert keys.decrypt(token) == SECRET
    assert keys.decrypt(f"  {token}\n") == SECRET  # pasted with surrounding whitespace
    assert keys.encrypt(SECRET) != token  # a fresh nonce each time
    blob = keys.encrypt_bytes(b'{"AccessToken": {}}')
    assert blob.startswith(b"PSB1")
    assert keys.decrypt_bytes(blob) == b'{"AccessToken": {}}'
    # A second KeyStore on the same state directory reads the same key.
    assert KeyStore(tmp_path / "state", env={}).decrypt(token) == SECRET


def test_key_file_created_private(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    keys = KeyStore(state, env={})
    assert not keys.exists()
    keys.encrypt("x")
    path = state / KEY_FILE_NAME
    assert keys.path == path and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    assert len(base64.urlsafe_b64decode(path.read_bytes().strip())) == 32
    assert [p.name for p in state.iterdir()] == [KEY_FILE_NAME]  # no temporary file left behind


def test_wrong_key_fails_clearly(tmp_path: Path) -> None:
    token = KeyStore(tmp_path / "a", env={}).encrypt(SECRET)
    other = KeyStore(tmp_path / "b", env={})
    other.encrypt("make the key")
    with pytest.raises(SecretError) as err:
        other.decrypt(token)
    assert err.value.kind == "wrong_key"
    assert str(tmp_path / "b" / KEY_FILE_NAME) in str(err.value)
    assert "encrypt-secret" in str(err.value)
    assert SECRET not in str(err.value) and token not in str(err.value)


def test_tampered_values_fail(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path, env={})
    token = keys.encrypt(SECRET)
    middle = len(token) // 2 + 6
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    with pytest.raises(SecretError) as err:
        keys.decrypt(tampered)
    assert err.value.kind == "corrupted" and tampered not in str(err.value)
    with pytest.raises(SecretError) as err:
        keys.decrypt(token[:20])
    assert err.value.kind == "corrupted"
    blob = bytearray(keys.encrypt_bytes(b"cache"))
    blob[-1] ^= 1
    with pytest.raises(SecretError) as err:
        keys.decrypt_bytes(bytes(blob))
    assert err.value.kind == "corrupted"


def test_a_token_cache_blob_is_not_a_secret(tmp_path: Path) -> None:
    """Values are bound to their purpose: a blob re-labelled as a text token does not decrypt."""
    keys = KeyStore(tmp_path, env={})
    blob = keys.encrypt_bytes(b"secret")
    relabelled = "ps1:" + base64.urlsafe_b64encode(blob[4:]).rstrip(b"=").decode()
    with pytest.raises(SecretError) as err:
        keys.decrypt(relabelled)
    assert err.value.kind == "corrupted"


def test_plain_value_is_recognised_and_not_echoed(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path, env={})
    with pytest.raises(SecretError) as err:
        keys.decrypt(SECRET)
    assert err.value.kind == "not_encrypted"
    assert SECRET not in str(err.value)
    assert "encrypt-secret" in str(err.value)
    with pytest.raises(SecretError) as err:
        keys.decrypt_bytes(b'{"plain": "json"}')
    assert err.value.kind == "not_encrypted"


def test_decrypt_never_creates_a_key(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "state", env={})
    with pytest.raises(SecretError) as err:
        keys.decrypt("ps1:" + "A" * 60)
    assert err.value.kind == "no_key"
    assert not (tmp_path / "state" / KEY_FILE_NAME).exists()


def test_key_file_env_is_honoured(tmp_path: Path) -> None:
    mounted = KeyStore(tmp_path / "elsewhere", env={})
    token = mounted.encrypt(SECRET)
    keys = KeyStore(tmp_path / "state", env={KEY_FILE_ENV: str(mounted.path)})
    assert keys.path == mounted.path
    assert keys.decrypt(token) == SECRET
    assert keys.decrypt(keys.encrypt("again")) == "again"
    assert not (tmp_path / "state").exists()  # the state directory's default key was never made


def test_missing_explicit_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    named = tmp_path / "typo.key"
    keys = KeyStore(tmp_path / "state", env={KEY_FILE_ENV: str(named)})
    with pytest.raises(SecretError) as err:
        keys.encrypt("x")
    assert err.value.kind == "no_key" and KEY_FILE_ENV in str(err.value)
    assert not named.exists()


def test_unsafe_or_malformed_key_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    keys = KeyStore(tmp_path, env={})
    token = keys.encrypt(SECRET)
    os.chmod(keys.path, 0o640)
    with caplog.at_level(logging.WARNING, logger="sync.secrets"):
        assert KeyStore(tmp_path, env={}).decrypt(token) == SECRET
    assert "readable by group or others" in caplog.text
    os.chmod(keys.path, 0o620)
    with pytest.raises(SecretError) as err:
        KeyStore(tmp_path, env={}).decrypt(token)
    assert err.value.kind == "bad_key" and "chmod 600" in str(err.value)
    os.chmod(keys.path, 0o600)
    keys.path.write_text("not a key\n")
    with pytest.raises(SecretError) as err:
        KeyStore(tmp_path, env={}).decrypt(token)
    assert err.value.kind == "bad_key"


_RACERS = 6
_RACER = """
import sys
from pathlib import Path
from sync.secrets import KeyStore
state, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
keys = KeyStore(state, env={})
ready.touch()
while not go.exists():  # spin, so that every process starts within microseconds of the others
    pass
print(keys.encrypt("from " + sys.argv[2]))
"""


def _race(tmp_path: Path) -> None:
    state = tmp_path / "state"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop(KEY_FILE_ENV, None)
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(state), str(tmp_path / f"ready{i}"), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i in range(_RACERS)
    ]
    deadline = time.monotonic() + 15
    while not all((tmp_path / f"ready{i}").exists() for i in range(_RACERS)):
        assert time.monotonic() < deadline, "the racing processes did not start"
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=15) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    keys = KeyStore(state, env={})
    # Every process encrypted with the one key that is on disk.
    assert sorted(keys.decrypt(out.strip()) for out, _ in outputs) == [f"from {tmp_path / f'ready{i}'}"
                                                                        for i in range(_RACERS)]
    assert [p.name for p in state.iterdir()] == [KEY_FILE_NAME]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_first_use_yields_one_key(tmp_path: Path, round_: int) -> None:
    """Processes released together (spinning on a file) all end up with the key that is on disk."""
    _race(tmp_path)


def test_key_creation_never_replaces_a_published_key(tmp_path: Path) -> None:
    """The losing side of a race: creating when a key already exists keeps the existing key."""
    first = KeyStore(tmp_path, env={})
    token = first.encrypt(SECRET)
    before = first.path.read_bytes()
    late = KeyStore(tmp_path, env={})
    late._create()  # what a process that lost the race does after its existence check
    assert first.path.read_bytes() == before
    assert late.decrypt(token) == SECRET
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]
