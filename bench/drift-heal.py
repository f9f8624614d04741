#!/usr/bin/env python3
# One heal time: run MONITOR (a command printing one line per kernel
# event, in Dom0's namespace), then TAMPER; report the milliseconds from
# the first line matching START to the first later line matching END
# (both stamped by this reader, so the tamper's own process start does not
# count). Several END patterns: the last of them to arrive.
#   drift-heal.py NETNS "MONITOR" "TAMPER" START END [END...]
import re, subprocess, sys, threading, time

ns, monitor, tamper, start, ends = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
mon = subprocess.Popen(["ip", "netns", "exec", ns, "stdbuf", "-oL"] + monitor.split(),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
lines = []

def read():
    for line in mon.stdout:
        lines.append((time.monotonic(), line.rstrip("\n")))

threading.Thread(target=read, daemon=True).start()
time.sleep(0.3)
subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", tamper], check=True)
deadline = time.monotonic() + 10
result = None
while time.monotonic() < deadline and result is None:
    time.sleep(0.02)
    t0 = next((t for t, l in lines if re.search(start, l)), None)
    if t0 is None:
        continue
    seen = []
    for e in ends:
        t = next((t for t, l in lines if t >= t0 and re.search(e, l) and not re.search(start, l)), None)
        seen.append(t)
    if all(t is not None for t in seen):
        result = (max(seen) - t0) * 1000
mon.terminate()
if result is None:
    print("timeout", file=sys.stderr)
    for t, l in lines[:40]:
        print(l, file=sys.stderr)
    sys.exit(1)
print("%.1f" % result)
