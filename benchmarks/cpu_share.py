"""Run a command with a fraction of the CPU time it could use, to time it as on a busy machine
without loading anyone else: its process group is stopped and continued (SIGSTOP / SIGCONT)
so that it runs ``share`` of every 100 ms. A quarter is the share one process gets on 2 cores
at load average 8.

    python benchmarks/cpu_share.py 0.25 python -m bytelm demo

stdout and stderr of the command go to ./out.txt and ./err.txt; the wall time is printed.
Stopping is coarser than real contention (no cache or OpenMP-spin interference), so a real
busy machine can be slower than this.
"""
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    share, cmd = float(sys.argv[1]), sys.argv[2:]
    if not 0 < share <= 1 or not cmd:
        raise SystemExit("usage: cpu_share.py SHARE(0-1] COMMAND...")
    period = 0.1
    t0 = time.perf_counter()
    with open("out.txt", "w") as out, open("err.txt", "w") as err:
        p = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=err)
        try:
            while p.poll() is None and share < 1:
                time.sleep(period * share)
                os.killpg(p.pid, signal.SIGSTOP)
                time.sleep(period * (1 - share))
                os.killpg(p.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        finally:
            try:
                os.killpg(p.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        rc = p.wait()
    print(f"rc {rc} wall {time.perf_counter() - t0:.1f} s (cpu share {share})")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
