"""Many VMs on one host (issue 17): twenty default guests started at once
from one supervising shell, each doing a little work, all exiting cleanly;
nothing left behind in the supervisor (file descriptors, ember processes); and an ember that cannot get memory for its guest says so and
exits with the setup error instead of crashing."""
import re

from framework import (TestSkipped, expect, expect_output, guest_cmdline, guest_test, host_test,
                       job, run_host)

VMS = 20
# In the nested harness every guest instruction goes through L1's TCG and
# L1 has 3 GiB: twenty nested guests at once took over 10 minutes there,
# eight 5 minutes on a loaded host.
NESTED_VMS = 4
MEM = "96M"  # the default guest's kernel needs 68 MiB

# Each guest sums a file it makes and prints its own marker; the marker
# comes from its command line so that no guest's output can stand in for
# another's.
GUEST_WORK = ("seq 1 20000 > /tmp/d; echo \"vm-$(cat /proc/cmdline | sed -n "
              "'s/.*vm_tag=\\([0-9]*\\).*/\\1/p') sum $(md5sum < /tmp/d | cut -c1-8)\"")


def supervisor_script():
    cmdline = guest_cmdline(GUEST_WORK) + " cryptomgr.notests"
    return f"""
BB=busybox
VMS={VMS}; [ -n "$EMBER_NESTED" ] && VMS={NESTED_VMS}
echo "vms: $VMS${{EMBER_NESTED:+ (nested)}}"
# Listed into files, not through $(...): the command substitution's pipe is
# the shell's own fd until it closes the write end, and a quick 'ls' sees it.
ls /proc/$$/fd > fds.before
for n in $(seq 1 $VMS); do
    "$EMBER" run --mem {MEM} --cpus 1 --cmdline '{cmdline} vm_tag='$n \\
        < /dev/null > out.$n 2> err.$n &
    echo $! > pid.$n
done
for n in $(seq 1 $VMS); do
    wait $(cat pid.$n); echo "vm $n rc=$?"
done
for n in $(seq 1 $VMS); do
    grep -a -o "^vm-$n sum [0-9a-f]*" out.$n || echo "vm $n: no work line"
done
alive=0; for n in $(seq 1 $VMS); do kill -0 $(cat pid.$n) 2>/dev/null && alive=$((alive+1)); done
echo "left running: $alive"
ls /proc/$$/fd > fds.after
echo "supervisor fds: before $(wc -l < fds.before) after $(wc -l < fds.after)"
cmp -s fds.before fds.after || {{ ls -l /proc/$$/fd; diff fds.before fds.after; }}
# Not enough address space for the guest's RAM: a setup error, said once.
( ulimit -v 400000; "$EMBER" run --mem 1G --cmdline '{cmdline}' < /dev/null > oom.out 2>&1;
  echo "no-memory rc=$?" )
cat oom.out | head -5
"""


@guest_test(f"many VMs: {VMS} default guests at once ({NESTED_VMS} in the nested harness) from one "
            "supervising shell, each works and exits 0, nothing left behind; an ember without "
            "memory for its guest exits with the setup error", batch="density")
def many_vms_at_once():
    def check(j):
        nested = re.search(r"^vms: (\d+) \(nested\)$", j.output, re.M)
        vms = NESTED_VMS if nested else VMS
        expect_output(j, rf"^vms: {vms}( \(nested\))?$", f"{vms} VMs started")
        for n in range(1, vms + 1):
            expect_output(j, rf"^vm {n} rc=0$", f"VM {n} exited 0")
        sums = re.findall(r"^vm-(\d+) sum ([0-9a-f]{8})$", j.output, re.M)
        expect(sorted(int(n) for n, _ in sums) == list(range(1, vms + 1)),
               f"each VM printed its own work line ({len(sums)} of {vms})")
        expect(len({s for _, s in sums}) == 1, "every VM computed the same checksum")
        expect_output(j, r"^left running: 0$", "no ember left running")
        m = re.search(r"^supervisor fds: before (\d+) after (\d+)$", j.output, re.M)
        expect(m and m.group(1) == m.group(2), "the supervisor's file descriptors are as before")
        expect_output(j, r"^no-memory rc=2$", "setup error (2) when guest RAM cannot be mapped")
        expect_output(j, r"cannot map \d+ MiB of guest memory", "the reason, said")
    return job("many-vms", supervisor_script(), timeout=400), check


HUGE_SCRIPT = r"""
# Pages neither in use nor reserved (ember reserves the whole guest at start).
avail() { awk '/^HugePages_Free/ {f=$2} /^HugePages_Rsvd/ {r=$2} END {print f-r}' /proc/meminfo; }
echo 200 > /proc/sys/vm/nr_hugepages
before=$(avail)
"$EMBER" run --mem 256M --huge-pages 2M --cmdline '%(cmd)s' < /dev/null > out.2m 2>&1 &
pid=$!
i=0; until grep -q "guest-up" out.2m; do i=$((i+1)); [ $i -gt 600 ] && break; busybox usleep 100000; done
echo "free while running: $(avail) of $before"
wait $pid; echo "2M rc=$?"
echo "free after: $(avail)"
grep -c guest-up out.2m
echo 0 > /proc/sys/vm/nr_hugepages
"$EMBER" run --mem 256M --huge-pages 2M --cmdline '%(cmd)s' < /dev/null > out.nopool 2>&1; echo "no-pool rc=$?"
head -3 out.nopool
"""


@guest_test("guest RAM backing: --huge-pages 2M takes the guest's RAM from the host's hugetlbfs "
            "pool (and gives it back at exit), an empty pool is a setup error", batch="density")
def huge_pages_backing():
    cmd = guest_cmdline("echo guest-up; sleep 3")
    script = HUGE_SCRIPT % {"cmd": cmd}

    def check(j):
        expect_output(j, r"^2M rc=0$", "the guest on 2 MiB pages ran and powered off")
        m = re.search(r"^free while running: (\d+) of (\d+)$", j.output, re.M)
        expect(m and int(m.group(2)) - int(m.group(1)) >= 128,
               f"256 MiB of the pool in use while it ran ({m and m.groups()})")
        m2 = re.search(r"^free after: (\d+)$", j.output, re.M)
        expect(m and m2 and m2.group(1) == m.group(2), "the pool whole again after exit")
        expect_output(j, r"^1$", "the 2M guest's line")
        expect_output(j, r"^no-pool rc=2$", "an empty pool: setup error")
        expect_output(j, r"cannot get 256 MiB of 2 MiB huge pages", "the reason, said")
    return job("huge-pages", script, timeout=300), check


# ember's own memory (issue 17: at most 2 MiB): with the host's THP mode
# "always" (the nested harness's L1, Linux 6.1) khugepaged turned a thread's
# 8 MiB stack into a 2 MiB huge page within a minute, for the tens of KiB
# the thread uses (measured: one such stack in every idle VM). Two vCPUs,
# the console's writer and the kernel copy are ember's threads here. In L1
# (ours to change) khugepaged is hurried through two full scans; on a real
# host its settings are left alone. Only the guest's RAM may hold huge
# pages.
OWN_MEMORY_SCRIPT = r"""
T=/sys/kernel/mm/transparent_hugepage
echo "thp mode: $(cat $T/enabled 2>/dev/null || echo none)"
"$EMBER" run --cpus 2 --mem 256M --cmdline '%(cmd)s' < /dev/null > om.out 2>&1 &
pid=$!
i=0; until grep -q "own-memory-up" om.out; do i=$((i+1)); [ $i -gt 600 ] && break; busybox usleep 100000; done
if [ -n "$EMBER_NESTED" ] && [ -w $T/khugepaged/scan_sleep_millisecs ]; then
    echo 100 > $T/khugepaged/scan_sleep_millisecs; echo 65536 > $T/khugepaged/pages_to_scan
    s0=$(cat $T/khugepaged/full_scans); i=0
    while [ $(( $(cat $T/khugepaged/full_scans) - s0 )) -lt 2 ] && [ $i -lt 200 ]; do
        busybox usleep 100000; i=$((i+1))
    done
    echo "khugepaged full scans: $(( $(cat $T/khugepaged/full_scans) - s0 ))"
fi
# Each thread but the main one: the mapping its stack pointer is in (from
# /proc/TID/syscall, readable while the thread waits in a system call).
for t in /proc/$pid/task/*; do
    [ "${t##*/}" = "$pid" ] && continue
    sp=$(cut -d' ' -f8 $t/syscall 2>/dev/null)
    case "$sp" in 0x*) ;; *) echo "stack $(cat $t/comm) not found: $(cat $t/syscall)"; continue;; esac
    while read range rest; do
        s=$((0x${range%%-*})); e=$((0x${range#*-}))
        if [ $((sp)) -ge $s ] && [ $((sp)) -lt $e ]; then
            echo "stack $(cat $t/comm) kib $(( (e - s) / 1024 )) $(grep -A40 "^$range " /proc/$pid/smaps | grep -m1 '^VmFlags:')"
        fi
    done < /proc/$pid/maps
done
# A malloc arena of its own for a thread (glibc reserves 64 MiB, aligned to
# 64 MiB, and opens the front of it read-write): an anonymous rw-p mapping
# at such an address, followed by the ---p rest of the 64 MiB.
ps=0; pe=0; pp=""; pn=""
while read range perm off dev inode name; do
    s=$((0x${range%%-*})); e=$((0x${range#*-}))
    if [ "$perm" = "---p" ] && [ -z "$name" ] && [ "$pp" = "rw-p" ] && [ -z "$pn" ] &&
       [ $pe -eq $s ] && [ $((ps %% 67108864)) -eq 0 ] && [ $((e - ps)) -eq 67108864 ]; then
        echo "thread arena at $(printf %%x $ps), $(( (pe - ps) / 1024 )) KiB open"
    fi
    ps=$s; pe=$e; pp=$perm; pn=$name
done < /proc/$pid/maps
awk -v g=262144 '/^[0-9a-f]+-[0-9a-f]+ / {name = $6; if (name == "") name = "anon"}
    /^Size:/ {size = $2; guest = size >= g && size <= g + 8192}
    /^AnonHugePages:/ {if (guest) gh += $2; else {oh += $2; if ($2) print "own-huge", name, size, $2}}
    END {print "guest-huge-kib", gh + 0; print "own-huge-kib", oh + 0}' /proc/$pid/smaps
wait $pid; echo "rc=$?"
"""


@guest_test("ember's own memory holds no transparent huge page (only guest RAM does), also "
            "after khugepaged's scans; each thread's stack mapping is under 2 MiB (or marked "
            "no-huge-pages, as Linux 6.7 and later mark stacks); no thread has a malloc arena "
            "of its own",
            batch="elf", backend="kvm")
def own_memory_no_huge_pages():
    script = OWN_MEMORY_SCRIPT % {"cmd": guest_cmdline("echo own-memory-up; sleep 30")}

    def check(j):
        expect_output(j, r"^rc=0$", "the guest ran and powered off")
        mode = re.search(r"^thp mode: (.*)$", j.output, re.M)
        guest = re.search(r"^guest-huge-kib (\d+)$", j.output, re.M)
        own = re.search(r"^own-huge-kib (\d+)$", j.output, re.M)
        expect(guest and own, "the smaps summary")
        expect(int(own.group(1)) == 0,
               "ember's own mappings hold huge pages: " +
               "; ".join(re.findall(r"^own-huge .*$", j.output, re.M)))
        stacks = re.findall(r"^stack (\S+) kib (\d+) (.*)$", j.output, re.M)
        expect(len(stacks) >= 3, f"the stacks of ember's threads found: {stacks}")
        for name, kib, flags in stacks:
            expect(int(kib) < 2048 or " nh" in flags,
                   f"thread {name}'s stack ({kib} KiB, {flags.strip()}) can hold a huge page")
        arenas = re.findall(r"^thread arena .*$", j.output, re.M)
        expect(not arenas, "threads with malloc arenas of their own (resident for the VM's "
               f"life; ember runs with one arena): {arenas}")
        if int(guest.group(1)) == 0:
            raise TestSkipped(f"the host gave no huge page even to guest RAM (THP mode "
                              f"{mode and mode.group(1)}): ember's own memory could not have "
                              "had one either, so this proves nothing here")
    return job("own-memory", script, timeout=180), check


@host_test("ember's thread-local storage stays under 4 KiB: glibc zeroes the whole block in "
           "every thread it starts, resident for the thread's life")
def small_thread_local_block(ctx):
    rc, out = run_host(["readelf", "-l", "-W", ctx.ember])
    expect(rc == 0, f"readelf -l failed: {out[:300]}")
    tls = re.search(r"^\s*TLS\s+\S+\s+\S+\s+\S+\s+\S+\s+(0x[0-9a-f]+)", out, re.M)
    expect(tls, f"no TLS segment in ember's program headers (its error buffer is one):\n{out}")
    expect(int(tls.group(1), 16) < 4096,
           f"ember's TLS block is {int(tls.group(1), 16)} bytes: large buffers belong on "
           "the stack of the thread that uses them, or in the object they serve")
