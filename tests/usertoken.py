"""Signs Canvass user tokens (DESIGN A9) the way an app's back end would.

The byte format is specified in common/cv_auth.h and docs/OPERATIONS.md:

    token = expiry (8 bytes, unsigned big-endian Unix seconds)
            || HMAC-SHA256(secret, user_id "|" tier "|" expiry in decimal)

tier is "member", "core" or "honorary" ("member" when the vote names none).
The token goes into Vote.user_token as raw bytes (40 of them).

As a module: sign(secret_bytes, user, tier="member", expiry=None, ttl=3600).
As a command (prints the token in hex):

    python3 tests/usertoken.py --secret HEX --user U [--tier T] [--ttl SECONDS | --expiry UNIX]
"""
import argparse
import hashlib
import hmac
import struct
import sys
import time

TIERS = ("member", "core", "honorary")


def sign(secret, user, tier="member", expiry=None, ttl=3600):
    """The 40-byte token for user (str or bytes) voting with tier, good
    until expiry (Unix seconds; default now + ttl)."""
    if isinstance(secret, str):
        secret = bytes.fromhex(secret)
    if isinstance(user, str):
        user = user.encode()
    tier = tier or "member"
    if tier not in TIERS:
        raise ValueError("tier must be one of %s, not %r" % (", ".join(TIERS), tier))
    if expiry is None:
        expiry = int(time.time()) + ttl
    if not 0 <= expiry < 1 << 64:
        raise ValueError("expiry must fit in 64 unsigned bits")
    msg = user + b"|" + tier.encode() + b"|" + str(expiry).encode()
    return struct.pack(">Q", expiry) + hmac.new(secret, msg, hashlib.sha256).digest()


def main(argv):
    ap = argparse.ArgumentParser(description="Sign a Canvass user token (printed in hex).")
    ap.add_argument("--secret", required=True, help="the app's secret, hex, from the key file")
    ap.add_argument("--user", required=True, help="the user id, exactly as in Vote.user_id")
    ap.add_argument("--tier", default="member", choices=TIERS)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--ttl", type=int, default=3600, help="seconds from now (default 3600)")
    g.add_argument("--expiry", type=int, help="absolute expiry, Unix seconds")
    a = ap.parse_args(argv)
    try:
        tok = sign(a.secret, a.user, a.tier, a.expiry, a.ttl)
    except ValueError as e:
        ap.error(str(e))
    print(tok.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
