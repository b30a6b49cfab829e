#!/usr/bin/env python3
"""What fresh memory costs on this machine (docs/performance.md, issue 13, fifth round).

Maps MB megabytes of anonymous memory and writes one byte into every 4 KiB page, three
times: once, at once again (the pages the first pass freed are still backed by the host),
and after PAUSE seconds (a virtual machine whose balloon reports free pages hands them
back to the host, which must back and zero them again). Prints the kernel time and the
page faults of each pass.

    python3 Benchmarks/large/fresh_pages.py [MB] [PAUSE]     (defaults: 3000 10)
"""
import mmap
import resource
import sys
import time


def touch(megabytes):
    size = megabytes << 20
    before = resource.getrusage(resource.RUSAGE_SELF)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for offset in range(0, size, 4096):
        memory[offset] = 1
    after = resource.getrusage(resource.RUSAGE_SELF)
    memory.close()
    return after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt


def main():
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    pause = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    for label in ("first", "at once again", "after %g s" % pause):
        if label.startswith("after"):
            time.sleep(pause)
        system, faults = touch(megabytes)
        print("%-14s %d MB: %.2f s in the kernel, %d page faults, %.2f us a page"
              % (label, megabytes, system, faults, system * 1e6 / max(faults, 1)))


if __name__ == "__main__":
    main()
