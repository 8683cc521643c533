"""Encrypt client secrets, passwords and the token cache with one local key (``encrypt-secret`` and friends).

Cipher: AES-256-GCM (``cryptography``'s AEAD). Chosen over Fernet because it binds *associated data*: every value
is sealed together with its format version, the key id and its purpose, so a token-cache blob cannot be pasted in as
an ``EncryptedSecret`` (or the reverse) and still decrypt; it carries no plaintext creation timestamp; and its tokens
are shorter. Nonces are 96 random bits per value (safe far beyond the few values a config holds).

Text token (``encrypt``/``decrypt``): ``ps1:`` + base64url (no padding) of ``key id (4) | nonce (12) | ciphertext+tag``.
The ``ps1:`` prefix makes a pasted plain secret or a foreign value recognisable; the key id (first 4 bytes of a
SHA-256 of the key, which reveals nothing usable about it) lets decryption tell "made with another key" from
"damaged". Bytes (``encrypt_bytes``/``decrypt_bytes``, for the token cache): ``PSB1`` + the same binary layout.

The key: ``PRESENCE_SYNC_KEY_FILE`` names a key file (which must exist: a typo must not silently mint a new key), or
``<state_dir>/secret.key`` is created on first use. Creation is race-free: the key is written to a private temporary
file (``O_CREAT|O_EXCL``, mode 0600, fsynced) and published with ``os.link``, which fails if another process got there
first; the loser then reads the winner's key, so two processes starting together agree on one key. The file holds the
32-byte key in base64url. Permissions (POSIX): a key file writable by group or others is refused (someone could swap
the key and read what is encrypted next); one readable by group or others is used with a warning (a read-only mount
of a secret, e.g. a container secret volume, may not allow 0600), telling to ``chmod 600`` it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretError

__all__ = ["KEY_FILE_ENV", "KEY_FILE_NAME", "TEXT_PREFIX", "KeyStore", "looks_encrypted"]

log = logging.getLogger(__name__)

KEY_FILE_ENV = "PRESENCE_SYNC_KEY_FILE"
KEY_FILE_NAME = "secret.key"
TEXT_PREFIX = "ps1:"
_BYTES_MAGIC = b"PSB1"
_KEY_LEN = 32
_KID_LEN = 4
_NONCE_LEN = 12
_TAG_LEN = 16
_REENCRYPT = "Re-run `presence-sync encrypt-secret` with the same --state-dir (or PRESENCE_SYNC_KEY_FILE)."


def looks_encrypted(value: str) -> bool:
    """True when ``value`` has the shape of an ``encrypt`` token (says nothing about the key)."""
    return value.strip().startswith(TEXT_PREFIX)


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"presence-sync key id\0" + key).digest()[:_KID_LEN]


class KeyStore:
    """The one local key: where it lives, loading or creating it, and the four seal/open operations."""

    def __init__(self, state_dir: Path, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        named = env.get(KEY_FILE_ENV, "").strip()
        self.explicit = bool(named)
        self.path = Path(named).expanduser() if named else Path(state_dir).expanduser() / KEY_FILE_NAME
        self._key: bytes | None = None

    @classmethod
    def for_paths(cls, state_dir: Path, key_file: Path | None) -> KeyStore:
        """The key a run uses: ``key_file`` when set (environment or .env), else ``<state_dir>/secret.key``."""
        return cls(state_dir, {KEY_FILE_ENV: str(key_file)} if key_file else {})

    def __repr__(self) -> str:
        return f"KeyStore(path={str(self.path)!r})"

    # --- the key -------------------------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.is_file()

    def key(self, *, create: bool = True) -> bytes:
        """The key, created on first use in the state directory when ``create`` (never for an explicit key file)."""
        if self._key is None:
            if not self.path.exists():
                if self.explicit or not create:
                    how = (
                        f"{KEY_FILE_ENV} names it: fix the path or unset the variable."
                        if self.explicit
                        else "Use the --state-dir that `presence-sync encrypt-secret` used (it creates the key), "
                        "or encrypt the values again with this one."
                    )
                    raise SecretError(f"no key file at {self.path}", kind="no_key", hint=how)
                self._create()
            self._key = self._read()
        return self._key

    def key_id(self) -> str:
        return _key_id(self.key(create=False)).hex()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        encoded = base64.urlsafe_b64encode(os.urandom(_KEY_LEN)) + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, encoded)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)  # atomic publish: fails if another process published first
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links: exclusive create in place
            self._create_in_place(encoded)
        finally:
            tmp.unlink(missing_ok=True)

    def _create_in_place(self, encoded: bytes) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            os.write(fd, encoded)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self) -> bytes:
        self._check_permissions()
        try:
            raw = self.path.read_bytes().strip()
        except OSError as exc:
            raise SecretError(
                f"cannot read the key file {self.path}: {exc.strerror}", kind="bad_key"
            ) from exc
        try:
            key = base64.urlsafe_b64decode(raw)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != _KEY_LEN:
            raise SecretError(
                f"the key file {self.path} does not hold a presence-sync key (32 bytes, base64url)",
                kind="bad_key",
                hint="Restore the original file; a new key cannot decrypt values made with the old one.",
            )
        return key

    def _check_permissions(self) -> None:
        if os.name != "posix":
            return
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return
        if mode & 0o022:
            raise SecretError(
                f"the key file {self.path} is writable by group or others (mode {mode:04o})",
                kind="bad_key",
                hint=f"Run `chmod 600 {self.path}`.",
            )
        if mode & 0o044:
            log.warning("key file %s is readable by group or others (mode %04o); run `chmod 600` on it",
                        self.path, mode)

    # --- sealing -------------------------------------------------------------------------------------------------

    def _seal(self, data: bytes, aad: bytes) -> bytes:
        key = self.key(create=True)
        kid = _key_id(key)
        nonce = os.urandom(_NONCE_LEN)
        return kid + nonce + AESGCM(key).encrypt(nonce, data, aad + kid)

    def _open(self, blob: bytes, aad: bytes, what: str) -> bytes:
        if len(blob) < _KID_LEN + _NONCE_LEN + _TAG_LEN:
            raise SecretError(f"the {what} is truncated or damaged", kind="corrupted", hint=_REENCRYPT)
        key = self.key(create=False)
        kid, nonce, body = blob[:_KID_LEN], blob[_KID_LEN:_KID_LEN + _NONCE_LEN], blob[_KID_LEN + _NONCE_LEN:]
        if kid != _key_id(key):
            raise SecretError(
                f"the {what} does not decrypt with the key in {self.path} (it was made with another key)",
                kind="wrong_key",
                hint=_REENCRYPT,
            )
        try:
            return AESGCM(key).decrypt(nonce, body, aad + kid)
        except InvalidTag:
            raise SecretError(
                f"the {what} does not decrypt with the key in {self.path}: it is damaged or was altered",
                kind="corrupted",
                hint=_REENCRYPT,
            ) from None

    def encrypt(self, plaintext: str) -> str:
        """A ``ps1:`` token for config.xml (``EncryptedSecret`` / ``EncryptedPassword``)."""
        blob = self._seal(plaintext.encode("utf-8"), b"presence-sync/ps1/text/")
        return TEXT_PREFIX + base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of an ``encrypt`` token; ``SecretError`` (never echoing the value) when it cannot be."""
        token = token.strip()
        if not token.startswith(TEXT_PREFIX):
            raise SecretError(
                f"the value is not an encrypted value (it does not start with {TEXT_PREFIX!r})",
                kind="not_encrypted",
                hint="Paste the output of `presence-sync encrypt-secret`, not the secret itself.",
            )
        body = token[len(TEXT_PREFIX):]
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise SecretError(
                "the encrypted value is damaged (not base64url)", kind="corrupted", hint=_REENCRYPT
            ) from None
        data = self._open(blob, b"presence-sync/ps1/text/", "encrypted value")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError("the encrypted value is damaged", kind="corrupted", hint=_REENCRYPT) from None

    def encrypt_bytes(self, data: bytes) -> bytes:
        """Seal a blob (the MSAL token cache) for a file in the state directory."""
        return _BYTES_MAGIC + self._seal(data, b"presence-sync/psb1/bytes/")

    def decrypt_bytes(self, blob: bytes) -> bytes:
        """Open an ``encrypt_bytes`` blob; ``SecretError`` when it is foreign, damaged or made with another key."""
        if not blob.startswith(_BYTES_MAGIC):
            raise SecretError("the file is not a presence-sync encrypted file", kind="not_encrypted")
        return self._open(blob[len(_BYTES_MAGIC):], b"presence-sync/psb1/bytes/", "encrypted file")
