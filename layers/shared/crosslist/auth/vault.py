"""Envelope encryption of OAuth tokens: each credential has a data key of its own, generated and
encrypted by KMS; its tokens are sealed with AES-256-GCM under that key. A token is bound to its
credential and field (the associated data), so a ciphertext moved to another row or field does not
open. The plaintext key lives only in the invocation that seals or opens a token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12  # AES-GCM's standard nonce


class VaultError(Exception):
    """A sealed token could not be opened (tampered with, or sealed for another credential)."""


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    encrypted: bytes  # what is stored beside the tokens


class KeyService(Protocol):
    def new_key(self, credential_id: str) -> DataKey: ...

    def key(self, credential_id: str, encrypted: bytes) -> bytes:
        """The plaintext of a stored data key; VaultError if it is not this credential's."""


class KmsKeys:
    """Data keys from AWS KMS, bound to their credential by the encryption context (`{context: id}`:
    credential_id for OAuth tokens, webhook_endpoint_id for webhook signing secrets)."""

    def __init__(self, kms: Any, key_id: str, *, context: str = "credential_id") -> None:
        self._kms = kms
        self._key_id = key_id
        self._context = context

    def new_key(self, credential_id: str) -> DataKey:
        generated = self._kms.generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={self._context: credential_id}
        )
        return DataKey(plaintext=generated["Plaintext"], encrypted=generated["CiphertextBlob"])

    def key(self, credential_id: str, encrypted: bytes) -> bytes:
        try:
            plaintext: bytes = self._kms.decrypt(
                CiphertextBlob=encrypted, EncryptionContext={self._context: credential_id}
            )["Plaintext"]
        except self._kms.exceptions.InvalidCiphertextException as error:
            raise VaultError(f"the data key of credential {credential_id} does not open") from error
        return plaintext


def seal(key: bytes, credential_id: str, field: str, token: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, token.encode(), _bound(credential_id, field))


def open_sealed(key: bytes, credential_id: str, field: str, sealed: bytes) -> str:
    from cryptography.exceptions import InvalidTag

    try:
        plaintext = AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _bound(credential_id, field))
    except InvalidTag as error:
        raise VaultError(f"the {field} of credential {credential_id} does not open") from error
    return plaintext.decode()


def _bound(credential_id: str, field: str) -> bytes:
    return f"{credential_id}:{field}".encode()
