"""How the fuzz targets make hostile inputs out of good ones: byte-level edits that insert the
tokens which broke a parser before (issue 12) or which a format treats specially."""

from __future__ import annotations

import random

#: tokens that broke readers before (issue 12) or that a format treats specially
HOSTILE = [
    b"\x00",
    b"\x01",
    b"\x1b",
    b"\r",
    b"\n",
    b'"',
    b",",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"9" * 5000,
    b"[" * 3000,
    b"{" * 3000,
    b'{"a":1,"a":2}',
    b"\\u0000",
    b"\\ud800",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x80\x81",
    b"\\C2842\\",
    b"\\M2441\\",
    b"\\X00\\",
    b"\\XFF\\",
    b"\\.sp999999999\\",
    b"\\",
    b"^~\\&",
    b"|",
    b"~",
    b"MSH|^~\\&|",
    b"99991231235959-1200",
    b"00000000000000+9999",
    b"<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
    b"&e;",
    b"<![CDATA[",
    b"]]>",
    b"<",
    b">",
    "张三".encode(),
    "张三".encode("gb18030"),
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random edits of ``data``: flip, insert a hostile token, delete, duplicate, cut."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        position = rng.randint(0, len(buffer)) if buffer else 0
        choice = rng.random()
        if choice < 0.25 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            buffer[position:position] = rng.choice(HOSTILE) * rng.choice((1, 1, 1, 2, 50))
        elif choice < 0.75:
            del buffer[position : position + rng.randint(1, 64)]
        elif choice < 0.9:
            end = min(len(buffer), position + rng.randint(1, 256))
            buffer[position:position] = buffer[position:end] * rng.randint(1, 20)
        else:
            del buffer[position:]
    return bytes(buffer)
