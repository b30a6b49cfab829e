#!/usr/bin/env python3
"""A loopback LDAP proxy that answers like Active Directory's ranged retrieval.

Test support only (takeover-bridge's Tests): it sits in front of the test slapd and
rewrites search replies the way Windows does with MaxValRange = N:

- an attribute with more than N values in a SearchResultEntry is sent as
  `type;range=0-(N-1)` holding the first N values (and no plain `type`);
- a search asking for `type;range=a-*` is forwarded asking for `type`, and the reply
  holds `type;range=a-(a+N-1)`, or `type;range=a-*` for the last slice.

Hostile modes (--mode) for the client's checks:
  never-ends  every slice claims more: `a-(a+N-1)` even past the end, values cycling
  overlap     a follow-up slice starts 1 before where it was asked to
  wrong-name  a follow-up slice comes back as `members;range=...`
  decoy       a follow-up reply carries a decoy `description;range=a-*` first and names
              the type in upper case (the client must pick the one asked for)
  gap         a follow-up slice starts N/2 after where it was asked to

Usage: range-proxy.py --upstream HOST:PORT --max N [--mode MODE] --port-file FILE
Listens on 127.0.0.1, on a free port written to FILE. Only the standard library.
Stops when its parent process is gone (polls every second) or on SIGTERM.
"""

import argparse
import os
import socket
import sys
import threading
import time


def read_tlv(data, pos):
    """One BER TLV at pos: (tag, value_start, value_end)."""
    tag = data[pos]
    pos += 1
    length = data[pos]
    pos += 1
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def children(data, start, end):
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = read_tlv(data, pos)
        out.append((tag, data[vs:ve]))
        pos = ve
    return out


def encode_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, value):
    return bytes([tag]) + encode_length(len(value)) + value


def seq(tag, items):
    return tlv(tag, b"".join(tlv(t, v) for t, v in items))


def recv_message(sock, buffer):
    """Reads one whole LDAPMessage; returns (message, rest) or (None, rest) at EOF."""
    while True:
        if len(buffer) >= 2:
            length = buffer[1]
            header = 2
            total = None
            if length & 0x80:
                n = length & 0x7F
                if len(buffer) >= 2 + n:
                    total = 2 + n + int.from_bytes(buffer[2:2 + n], "big")
            else:
                total = header + length
            if total is not None and len(buffer) >= total:
                return buffer[:total], buffer[total:]
        chunk = sock.recv(65536)
        if not chunk:
            return None, buffer
        buffer += chunk


def parse_range_request(name):
    """'member;range=1500-*' -> ('member', 1500); else None."""
    parts = name.split(";")
    for i, part in enumerate(parts[1:], 1):
        if part.lower().startswith("range="):
            low = part[6:].split("-")[0]
            if low.isdigit():
                return ";".join(parts[:i] + parts[i + 1:]), int(low)
    return None


class Connection:
    def __init__(self, client, upstream, limit, mode):
        self.client = client
        self.server = socket.create_connection(upstream)
        self.limit = limit
        self.mode = mode
        self.ranges = {}  # messageID -> (type, low)
        self.lock = threading.Lock()

    def run(self):
        threading.Thread(target=self.pump_up, daemon=True).start()
        self.pump_down()

    def close(self):
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def pump_up(self):
        buffer = b""
        try:
            while True:
                message, buffer = recv_message(self.client, buffer)
                if message is None:
                    break
                self.server.sendall(self.rewrite_request(message))
        except OSError:
            pass
        self.close()

    def pump_down(self):
        buffer = b""
        try:
            while True:
                message, buffer = recv_message(self.server, buffer)
                if message is None:
                    break
                self.client.sendall(self.rewrite_reply(message))
        except OSError:
            pass
        self.close()

    def rewrite_request(self, message):
        _, vs, ve = read_tlv(message, 0)
        parts = children(message, vs, ve)
        if len(parts) < 2 or parts[1][0] != 0x63:  # SearchRequest
            return message
        msgid = parts[0][1]
        fields = children(parts[1][1], 0, len(parts[1][1]))
        attributes = children(fields[7][1], 0, len(fields[7][1]))
        asked = None
        names = []
        for _, name in attributes:
            r = parse_range_request(name.decode("utf-8", "replace"))
            if r is not None:
                asked = r
                names.append(r[0].encode())
            else:
                names.append(name)
        if asked is None:
            return message
        with self.lock:
            self.ranges[msgid] = asked
        fields[7] = (0x30, b"".join(tlv(0x04, n) for n in names))
        op = seq(0x63, fields)
        return tlv(0x30, b"".join([tlv(0x02, msgid), op] + [tlv(t, v) for t, v in parts[2:]]))

    def rewrite_reply(self, message):
        _, vs, ve = read_tlv(message, 0)
        parts = children(message, vs, ve)
        if len(parts) < 2:
            return message
        msgid = parts[0][1]
        if parts[1][0] == 0x65:  # SearchResultDone
            with self.lock:
                self.ranges.pop(msgid, None)
            return message
        if parts[1][0] != 0x64:  # SearchResultEntry
            return message
        with self.lock:
            asked = self.ranges.get(msgid)
        body = parts[1][1]
        fields = children(body, 0, len(body))
        attributes = children(fields[1][1], 0, len(fields[1][1]))
        out = []
        for _, attribute in attributes:
            (_, name), (_, valueset) = children(attribute, 0, len(attribute))
            values = [v for _, v in children(valueset, 0, len(valueset))]
            text = name.decode("utf-8", "replace")
            if asked is not None and text.lower() == asked[0].lower():
                out.extend(self.slice(text, values, asked[1]))
            elif asked is None and len(values) > self.limit:
                out.append((f"{text};range=0-{self.limit - 1}", values[:self.limit]))
            else:
                out.append((text, values))
        encoded = b"".join(
            tlv(0x30, tlv(0x04, n.encode()) + tlv(0x31, b"".join(tlv(0x04, v) for v in vs))) for n, vs in out)
        entry = seq(0x64, [fields[0], (0x30, encoded)])
        return tlv(0x30, b"".join([tlv(0x02, msgid), entry] + [tlv(t, v) for t, v in parts[2:]]))

    def slice(self, name, values, low):
        n = self.limit
        mode = self.mode
        if mode == "overlap":
            low = max(0, low - 1)
        if mode == "gap":
            low = low + n // 2
        if mode == "never-ends":
            cyc = [values[(low + i) % len(values)] for i in range(n)] if values else []
            return [(f"{name};range={low}-{low + n - 1}", cyc)]
        part = values[low:low + n]
        last = low + n >= len(values)
        label = f"{low}-*" if last else f"{low}-{low + n - 1}"
        if mode == "wrong-name":
            return [(f"{name}s;range={label}", part)]
        if mode == "decoy":
            return [("description;range=%d-*" % low, [b"decoy"]), (f"{name.upper()};Range={label}", part)]
        return [(f"{name};range={label}", part)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--max", type=int, default=1500)
    parser.add_argument("--mode", default="windows")
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    upstream = (host, int(port))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.rename(tmp, args.port_file)
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    while True:
        client, _ = listener.accept()
        try:
            connection = Connection(client, upstream, args.max, args.mode)
        except OSError:
            client.close()
            continue
        threading.Thread(target=connection.run, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
