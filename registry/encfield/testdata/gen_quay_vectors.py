#!/usr/bin/env python3
"""Generates quay_vectors.json with CPython + pyca/cryptography.

derive() follows Quay's util/security/secret.py convert_secret_key step by
step (int -> "{:02x}" -> bytearray.fromhex; uuid.UUID(...).bytes; ord() of
each character; cycle to 32 bytes). encrypt() follows data/encryption.py
_encrypt_ccm / FieldEncrypter.encrypt_value, with the nonce passed in so
that the output is reproducible. Requires: python3 >= 3.11, cryptography.
Run: python3 gen_quay_vectors.py > quay_vectors.json
"""
import base64, itertools, json, os, random, sys, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESCCM


def derive(k):
    seed = None
    try:
        seed = bytearray.fromhex("{:02x}".format(int(k)))
    except ValueError:
        pass
    if seed is None:
        try:
            seed = uuid.UUID(k).bytes
        except ValueError:
            pass
    if seed is None:
        seed = bytearray(list(map(ord, k)))  # ValueError if ord > 255
    assert len(seed) > 0
    return b"".join(itertools.islice(itertools.cycle([bytes([b]) for b in seed]), 32))


def encrypt(key, value, nonce):
    ct = AESCCM(key).encrypt(nonce, value.encode("utf-8"), None)
    return "v0$$" + base64.b64encode(nonce + ct).decode("utf-8")


def decrypt(key, stored):
    prefix, data = stored.split("$$", 1)
    assert prefix == "v0"
    raw = base64.b64decode(data)
    return AESCCM(key).decrypt(raw[:13], raw[13:], None).decode("utf-8")


keys = [
    "", "0", "00", "-0", "+0", "5", "15", "16", "255", "256", "4096", "65535", "65536",
    "123456789", "1234567890", "12345678901234567890", "-1", "-255", "+255", " 255 ",
    "\t255\n", "1_000", "1__000", "_1000", "1000_", "0x10", "1e3", "3.0", "007",
    "\u0663\u0664", "\u00a0255\u3000", "\u200b255", "\x1c255", "1" * 4300, "1" * 4301,
    "1_" * 4300 + "1",
    "340282366920938463463374607431768211455",  # 2**128-1: 32 hex digits
    "12345678901234567890123456789012",  # decimal, hex form odd -> UUID
    "11111111111111111111111111111111",
    "123e4567-e89b-12d3-a456-426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
    "urn:uuid:123E4567-E89B-12D3-A456-426614174000", "123e4567e89b12d3a456426614174000",
    "123e4567-e89b-12d3-a456-42661417400", "{{123e4567e89b12d3a456426614174000}}}",
    "0x" + "ab" * 15, "+" + "f" * 31, "-" + "0" * 31, " " + "a" * 31, "a" * 31 + "_",
    "abcdef0123456789abcdef012345678g", "a-b-c-d" + "e" * 28,
    "secret", "a", "ab", "x" * 31, "x" * 32, "y" * 33, "k" * 100,
    "caf\u00e9", "\u00ff\u00fe", "snowman\u2603", "\U0001F600",
    "K3y_With-Symbols!@#$%^&*()", "  spaced key  ",
]
rng = random.Random(1234)
alphabet = "0123456789abcdefABCDEF_-+ {}xX:urnid\t\u00a0\u0663\u00e9\u2603z"
for _ in range(400):
    n = rng.choice([1, 2, 3, 4, 5, 8, 31, 32, 33, 36, 38, 40])
    keys.append("".join(rng.choice(alphabet) for _ in range(n)))
for _ in range(100):
    keys.append(str(rng.randrange(0, 1 << rng.choice([8, 16, 64, 128, 200, 256]))))
for _ in range(50):
    keys.append(str(uuid.UUID(int=rng.getrandbits(128))))

derivations = []
for k in keys:
    try:
        d = derive(k).hex()
    except (ValueError, AssertionError) as e:
        d = "ERROR"
    derivations.append({"secret": k, "key": d})

samples = []
plain = ["", "a", "robot-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
         "p\u00e4ssw\u00f6rd \u2603 \U0001F600", "x" * 1000]
for i, (k, p) in enumerate(itertools.product(["DATABASE_SECRET_KEY_0123", "123456789012",
                                              "5a7c9e2b-1f3d-4b6a-8c0e-2d4f6a8b0c1e"], plain)):
    key = derive(k)
    nonce = bytes(rng.getrandbits(8) for _ in range(13))
    s = encrypt(key, p, nonce)
    assert decrypt(key, s) == p
    samples.append({"secret": k, "plaintext": p, "stored": s})

json.dump({"generator": "CPython %s, cryptography %s" % (
    sys.version.split()[0], __import__("cryptography").__version__),
    "derivations": derivations, "samples": samples},
    sys.stdout, indent=1, ensure_ascii=True)
sys.stdout.write("\n")
