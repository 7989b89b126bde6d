#!/usr/bin/env python3
"""Alternating boots on the engine: ember --accel soft with the translator off /
on (EMBER_JIT), and BASELINE (another ember binary) if set; the default
command line and cryptomgr.notests: time to the init line and to power-off,
instructions retired, MIPS over wall and over CPU time, load average.
Usage: bench/engine_ab.py [RUNS] [default,notests]; ARMS=off,on picks arms.
"""
import base64, os, re, resource, subprocess, sys, statistics
HERE = os.path.dirname(os.path.abspath(__file__))
B = os.environ.get("BUILD", os.path.join(HERE, "..", "build"))
G = B + "/guest"
RW = B + "/tools/runwatch"
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["default", "notests"]
arms = [("base", os.environ.get("BASELINE", ""), {}), ("off", B + "/ember", {"EMBER_JIT": "off"}),
        ("on", B + "/ember", {"EMBER_JIT": "on"})]
if not arms[0][1]:
    arms = arms[1:]
if os.environ.get("ARMS"):
    arms = [a for a in arms if a[0] in os.environ["ARMS"].split(",")]
cmd64 = base64.b64encode(b"poweroff -f").decode()
res = {}
for r in range(runs):
    for v in variants:
        for name, ember, env in arms:
            cl = f"console=ttyS0 reboot=k panic=1 quiet ember_cmd={cmd64}"
            if v == "notests":
                cl += " cryptomgr.notests"
            cmd = (f"{ember} run --kernel {G}/vmlinuz --initrd {G}/initramfs.cpio --mem 256M "
                   f"--cpus 1 --accel soft -v --cmdline '{cl}'")
            load = os.getloadavg()[0]
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            p = subprocess.run([RW, "--stamp", "ember-guest: init started", "--", "sh", "-c",
                                cmd + " < /dev/null"], capture_output=True, text=True,
                               env=dict(os.environ, **env), timeout=300)
            out = p.stdout + p.stderr
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            st = re.search(r"runwatch: stamp ([\d.]+) ember-guest", out)
            ex = re.search(r"runwatch: exited ([\d.]+) status (\d+)", out)
            ins = re.search(r"instructions (\d+)", out)
            jit = re.search(r"jit_insns[ =:]+(\d+)", out)
            if not (st and ex and ins) or ex.group(2) != "0":
                print(f"{v} {name}: FAILED\n{out[-2000:]}", flush=True)
                continue
            t_init, t_off, n = float(st.group(1)), float(ex.group(1)), int(ins.group(1))
            mips = n / t_off / 1000.0
            cmips = n / cpu / 1e6
            res.setdefault((v, name), []).append((t_init, t_off, mips, cpu * 1000, cmips))
            print(f"run {r} {v:8} {name:4} init {t_init:7.0f} ms  off {t_off:7.0f} ms  "
                  f"insns {n/1e9:.3f} G  MIPS {mips:6.1f}  cpu {cpu:.2f} s  MIPS/cpu {cmips:6.1f}  load {load:.2f}", flush=True)
print("medians (min-max):")
for (v, name), xs in sorted(res.items()):
    def f(k):
        vals = [x[k] for x in xs]
        return f"{statistics.median(vals):.0f} ({min(vals):.0f}-{max(vals):.0f})"
    print(f"{v:8} {name:4} n={len(xs)} init {f(0)} ms, off {f(1)} ms, MIPS {f(2)}, "
          f"cpu {f(3)} ms, MIPS over cpu time {f(4)}")
