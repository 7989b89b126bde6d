"""CPU templates (Firecracker's machine-config cpu_template and custom
/cpu-config) as the guest sees them in /proc/cpuinfo.

One job boots the same guest several times through --config-file: with no
template (the baseline), with the static template of the host's vendor
(T2A on AMD — the nested harness's L1 and the engine are AMD — or T2 on
Intel), and with a custom template (the config file's "cpu-config" as a
path) that hides one flag the baseline shows. The template of the other
vendor must be refused with the reason, without a boot. The bitmaps,
every static template's effect and malformed bodies are unit-tested
(tests/unit/arch/test_cpu_template.c) and in the API's table of malformed
requests (test_api.py)."""
import json
import re

from framework import expect, guest_test, host_test, job
from test_api import b64, initrd, kernel, with_servers

GUEST = r'''
echo "vendor $(grep -m1 ^vendor_id /proc/cpuinfo | cut -d: -f2)"
echo "family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2) model $(grep -m1 '^model\s*:' /proc/cpuinfo | cut -d: -f2)"
echo "flags:$(grep -m1 ^flags /proc/cpuinfo | cut -d: -f2)"
'''

# What every T2 template hides (leaves 1, 7, 0xd, 0x80000001), as Linux
# names the flags; T2A hides these too, and the AMD-only ones after.
T2_HIDDEN = {"vmx", "smx", "est", "tm2", "pdcm", "dca", "monitor", "ds_cpu", "pbe", "acpi",
             "sgx", "hle", "rtm", "mpx", "rdseed", "adx", "clflushopt", "clwb", "sha_ni",
             "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx512ifma",
             "avx512pf", "avx512er", "avx512vbmi", "avx512_vbmi2", "avx512_vnni",
             "avx512_bitalg", "avx512_vpopcntdq", "umip", "pku", "ospke", "gfni", "vaes",
             "vpclmulqdq", "la57", "rdpid", "xsavec", "xgetbv1", "xsaves", "pdpe1gb",
             "wbnoinvd"}
T2A_HIDDEN = T2_HIDDEN | {"svm", "sse4a", "misalignsse", "mmxext", "fxsr_opt", "clzero"}

# A custom template: leaf 1 ECX bit 23 (popcnt) cleared, written short (the
# rest is implied x), with Firecracker's example capability removal.
CUSTOM = {
    "kvm_capabilities": ["!56"],
    "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0", "flags": 0,
                         "modifiers": [{"register": "ecx",
                                        "bitmap": "0b0xxx_xxxx_xxxx_xxxx_xxxx_xxxx"}]}],
}


def config(name, machine_extra=None, cpu_config=None):
    machine = {"vcpu_count": 1, "mem_size_mib": 256}
    machine.update(machine_extra or {})
    cfg = {"boot-source": {"kernel_image_path": "$GUEST/vmlinuz",
                           "initrd_path": "$GUEST/initramfs.cpio",
                           "boot_args": "console=ttyS0 reboot=k panic=1 quiet "
                                        f"ember_cmd={b64(GUEST)}"},
           "machine-config": machine}
    if cpu_config is not None:
        cfg["cpu-config"] = cpu_config
    return f"cat > {name}.json <<EOF\n{json.dumps(cfg, indent=1)}\nEOF\n"


def run(name):
    return (f'echo "=== {name}"\n'
            f'"$EMBER" --config-file {name}.json --no-api < /dev/null 2>&1; '
            f'echo "ember rc=$?"\n')


def section(output, name):
    m = re.search(rf"^=== {name}\n(.*?)(?=^=== |\Z)", output, re.M | re.S)
    return m.group(1) if m else ""


def cpuinfo(text):
    vendor = re.search(r"^vendor\s+(\S+)", text, re.M)
    sig = re.search(r"^family\s+(\d+) model\s+(\d+)", text, re.M)
    flags = re.search(r"^flags:(.*)$", text, re.M)
    return (vendor.group(1) if vendor else None, sig.groups() if sig else None,
            set(flags.group(1).split()) if flags else None)


@guest_test("cpu templates: the host vendor's static template (T2A on AMD, T2 on Intel) hides "
            "its flags and sets family 6 model 63 in the guest's /proc/cpuinfo; a custom "
            "cpu-config (a file path in the config file) hides popcnt and nothing else; the "
            "other vendor's template is refused with the reason", batch="fc", backend="both")
def cpu_templates_guest():
    script = (
        "set +e\n" +
        config("base") + config("t2a", {"cpu_template": "T2A"}) +
        config("t2", {"cpu_template": "T2"}) +
        f"cat > custom.json.tpl <<EOF\n{json.dumps(CUSTOM)}\nEOF\n" +
        config("custom", None, "custom.json.tpl") +
        # one of T2A and T2 boots, the other is refused: the vendor decides
        run("base") + run("t2a") + run("t2") + run("custom") + 'echo "=== end"\n')

    def check(j):
        base = section(j.output, "base")
        vendor, sig, flags = cpuinfo(base)
        expect(vendor in ("AuthenticAMD", "GenuineIntel") and flags,
               f"the baseline guest's cpuinfo: {base[-600:]!r}")
        amd = vendor == "AuthenticAMD"
        mine, other = ("t2a", "t2") if amd else ("t2", "t2a")
        hidden = T2A_HIDDEN if amd else T2_HIDDEN
        out = section(j.output, mine)
        v2, sig2, flags2 = cpuinfo(out)
        expect(flags2 is not None, f"{mine.upper()}: no cpuinfo from the guest: {out[-800:]!r}")
        expect(v2 == vendor, f"{mine.upper()}: vendor {v2} (baseline {vendor})")
        expect(sig2 == ("6", "63"), f"{mine.upper()}: family/model {sig2} (expected 6 63)")
        shown = sorted(flags2 & hidden)
        expect(not shown, f"{mine.upper()} leaves these flags visible: {shown}")
        gone = sorted(flags & hidden)
        expect(gone, f"{mine.upper()}: the baseline shows none of the flags it hides, so the "
                     f"test proves nothing: {sorted(flags)}")
        print(f"      {mine.upper()} hid {' '.join(gone)}", flush=True)
        refused = section(j.output, other)
        want = "Intel" if other == "t2" else "AMD"
        expect(re.search(rf"cpu_template '{other.upper()}' is for {want} CPUs", refused) and
               "ember rc=0" not in refused,
               f"{other.upper()} on this host: expected a refusal naming the vendor: "
               f"{refused[-600:]!r}")
        custom = section(j.output, "custom")
        _, sig3, flags3 = cpuinfo(custom)
        expect(flags3 is not None, f"custom: no cpuinfo from the guest: {custom[-800:]!r}")
        expect("popcnt" in flags and "popcnt" not in flags3,
               f"custom: popcnt in the baseline {'popcnt' in flags}, with the template "
               f"{'popcnt' in flags3}")
        expect(sig3 == sig, f"custom: family/model {sig3} changed (baseline {sig})")
        # 'x' bits stay: nothing else of leaf 1 ECX moves
        expect({"sse4_2", "ssse3", "cx16"} & flags <= flags3,
               f"custom: flags lost besides popcnt: {sorted(flags - flags3)}")
    return job("cpu-templates", script, timeout=300), check


@host_test("cpu templates through the API: machine-config's cpu_template is reported back and "
           "refused at InstanceStart when it does not fit the vendor (the engine is AMD: T2 is "
           "Intel's); PUT /cpu-config replaces it; a custom leaf the backend lacks is refused; "
           "the VM stays configurable")
def cpu_templates_api(ctx):
    def check(srv):
        st, _ = srv.req("PUT", "/boot-source", {"kernel_image_path": kernel(ctx),
                                                "initrd_path": initrd(ctx)})
        expect(st == 204, f"boot source: {st}")
        st, resp = srv.req("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128,
                                                      "accel": "soft", "cpu_template": "T2"})
        expect(st == 204, f"machine-config with T2: {st} {resp}")
        st, mc = srv.req("GET", "/machine-config")
        expect(mc.get("cpu_template") == "T2", f"GET /machine-config: {mc}")
        st, resp = srv.req("PUT", "/actions", {"action_type": "InstanceStart"})
        expect(st == 400 and re.search(r"cpu_template 'T2' is for Intel CPUs, and this host's "
                                       r"vCPUs are AMD", resp["fault_message"]),
               f"T2 on the engine: {st} {resp}")
        # PATCH without cpu_template keeps it; "None" drops it.
        srv.req("PATCH", "/machine-config", {"vcpu_count": 1})
        expect(srv.req("GET", "/machine-config")[1].get("cpu_template") == "T2", "PATCH kept T2")
        srv.req("PATCH", "/machine-config", {"cpu_template": "None"})
        expect("cpu_template" not in srv.req("GET", "/machine-config")[1], "None drops it")
        st, resp = srv.req("PUT", "/cpu-config", {"cpuid_modifiers": [
            {"leaf": "0x14", "subleaf": "0x0", "flags": 0,
             "modifiers": [{"register": "eax", "bitmap": "0b0"}]}]})
        expect(st == 204, f"PUT /cpu-config: {st} {resp}")
        st, resp = srv.req("PUT", "/actions", {"action_type": "InstanceStart"})
        expect(st == 400 and "CPUID leaf 0x14 subleaf 0 is not offered by this CPU backend"
               in resp["fault_message"], f"a leaf the engine lacks: {st} {resp}")
        st, info = srv.req("GET", "/")
        expect(info["state"] == "Not started", f"state after the refusals: {info}")
    with_servers(ctx, check)
