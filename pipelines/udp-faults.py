#!/usr/bin/env python3
"""A network that misbehaves on purpose, between a mat (or replay.sh) and a receiver.

Forwards UDP datagrams from LISTEN_PORT to TARGET_HOST:TARGET_PORT and spoils chosen ones,
counted from 0 in the order they arrive:

  --drop I,...       never forwarded (a lost datagram)
  --truncate I,...   forwarded without its last 100 bytes (a short datagram)
  --extend I,...     forwarded with 100 bytes more (a long datagram)
  --swap I,...       forwarded after datagram I + 1 (reordered)
  --duplicate I,...  forwarded twice
  --garbage I,...    a 64-byte datagram of noise forwarded after it (not a packet at all)
  --odd-size I,...   replaced by a valid 1x1 frame with its RTP header (a frame of another size)
  --forged-end I,... followed by an end-of-stream mark of another sender (SSRC), next in sequence
  --second-sender I,... followed by a copy from another sender (SSRC)

Ends after --idle seconds without a datagram (once one came), and prints what it did.
Python's standard library only: it runs wherever the pipelines do.
"""
import argparse
import os
import socket
import sys


def indices(text):
    return {int(i) for i in text.split(",") if i.strip()} if text else set()


def other_sender(data, seq_ahead, payload):
    """`data`'s RTP header with another SSRC and its sequence number `seq_ahead` further."""
    header = bytearray(data[:12])
    seq = (int.from_bytes(header[2:4], "big") + seq_ahead) % 65536
    header[2:4] = seq.to_bytes(2, "big")
    header[8:12] = bytes(b ^ 0x5A for b in header[8:12])
    return bytes(header) + payload


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("listen_port", type=int)
    p.add_argument("target_host")
    p.add_argument("target_port", type=int)
    for fault in ("drop", "truncate", "extend", "swap", "duplicate", "garbage", "odd_size",
                  "forged_end", "second_sender"):
        p.add_argument(f"--{fault.replace('_', '-')}", dest=fault, type=indices, default=set(),
                       metavar="I,...")
    p.add_argument("--idle", type=float, default=3.0, help="seconds without data to end")
    a = p.parse_args()

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", a.listen_port))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = (a.target_host, a.target_port)
    done = {k: 0 for k in ("forwarded", "dropped", "truncated", "extended", "swapped",
                           "duplicated", "garbage", "odd-sized", "forged ends", "second sender")}
    held = None  # a datagram waiting to be sent after the next one
    n = 0
    while True:
        rx.settimeout(a.idle if n else None)
        try:
            data = rx.recv(65535)
        except socket.timeout:
            break
        i, n = n, n + 1
        out = []
        if i in a.drop:
            done["dropped"] += 1
        elif i in a.truncate:
            out.append(data[:-100])
            done["truncated"] += 1
        elif i in a.extend:
            out.append(data + bytes(100))
            done["extended"] += 1
        elif i in a.odd_size:
            # The RTP header as it came (12 bytes, as rtppmatpay sends it), then a 1x1 frame.
            out.append(data[:12] + bytes([1, 0, 16, 0, 0, 1, 0, 1, 7, 0]))
            done["odd-sized"] += 1
        elif i in a.swap:
            held = data
            done["swapped"] += 1
            continue
        else:
            out.append(data)
        if i in a.duplicate:
            out.append(data)
            done["duplicated"] += 1
        if held is not None:
            out.append(held)
            held = None
        if i in a.garbage:
            out.append(os.urandom(64))
            done["garbage"] += 1
        if i in a.forged_end:
            out.append(other_sender(data, 1, bytes([1, 1, 0, 0, 0, 0, 0, 0])))
            done["forged ends"] += 1
        if i in a.second_sender:
            out.append(other_sender(data, 0, data[12:]))
            done["second sender"] += 1
        for d in out:
            tx.sendto(d, target)
        done["forwarded"] += len(out)
    if held is not None:
        tx.sendto(held, target)
    print("udp-faults: " + ", ".join(f"{k} {v}" for k, v in done.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
