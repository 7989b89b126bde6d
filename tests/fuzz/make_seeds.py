#!/usr/bin/env python3
"""Seed inputs for the libFuzzer targets whose inputs are binary layouts
(fuzz_virtio_net, fuzz_virtio_pci, fuzz_loader, fuzz_virtio_pmem,
fuzz_device_state, fuzz_engine): a few small, valid
inputs each, written into tests/fuzz/corpus/NAME. The layouts are the ones
the targets' comments describe; run again after changing one.

    tests/fuzz/make_seeds.py [virtio_net|virtio_pci|loader|virtio_pmem|device_state|engine]...
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

NEXT, WRITE, INDIRECT = 1, 2, 4


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def table(*descs, size=8):
    t = b"".join(descs)
    return t + bytes(16 * size - len(t))


def pad(b, n):
    assert len(b) <= n, (len(b), n)
    return b + bytes(n - len(b))


def eth_ipv4(dst_ip, payload=b"hello"):
    """A virtio-net header and an Ethernet/IPv4/UDP frame to dst_ip."""
    hdr = bytes(12)
    eth = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x00"
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 2]), bytes(dst_ip))
    udp = struct.pack(">HHHH", 1234, 80, 8 + len(payload), 0)
    return hdr + eth + ip + udp + payload


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


# --- fuzz_virtio_net ---------------------------------------------------------
NET_TX_DATA, NET_RX_DATA = 0x100000, 0x200000


def net_header(flags=0x03, sizes=8, feat=0, status=0x0f, lim=(0, 0, 0, 0)):
    return bytes([flags, sizes, feat & 0xff, feat >> 8]) + bytes(lim)


def net_step(op, a=0, b=0, c=0, tbl=b"", data=b""):
    return bytes([op, a, b, c]) + pad(tbl, 128) + pad(data, 128)


def eth_arp(target_ip):
    """A virtio-net header and an ARP request for target_ip."""
    eth = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06"
    arp = struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes.fromhex("020000000001"),
                      bytes([10, 0, 0, 2]), bytes(6), bytes(target_ip))
    return bytes(12) + eth + arp


def seeds_virtio_net():
    frame = eth_ipv4([10, 0, 0, 1])
    tx = net_step(0, 0, 0, 0, table(desc(NET_TX_DATA, 12, NEXT, 1),
                                    desc(NET_TX_DATA + 12, len(frame) - 12)), frame)
    rx_bufs = table(*[desc(0x300000 + 0x1000 * i, 0x800, WRITE) for i in range(8)])
    rx = net_step(1, 0, 3, 0, rx_bufs) + net_step(1, 2, 7, 0, rx_bufs)
    arrive = net_step(2, len(frame) & 0xff, len(frame) >> 8, 0, b"", frame)
    big = net_step(2, 0x4c, 0x00, 1, b"", frame)  # 0x1004c: the largest frame
    mmds = eth_ipv4([169, 254, 169, 254])
    # An indirect table in the data area: header and frame in two buffers.
    ind = desc(0x300000, 12, NEXT, 1) + desc(0x300100, 60)
    tx_ind = net_step(0, 0, 0, 0, table(desc(NET_TX_DATA, 32, INDIRECT)), ind)
    write("virtio_net", {
        "tx": net_header() + tx,
        "rx_mergeable": net_header() + rx + arrive + big + net_step(3, 1),
        "rx_plain": net_header(flags=0x02) + rx + arrive + arrive,
        "tx_indirect": net_header() + tx_ind,
        "mmds": net_header(flags=0x43) + net_step(0, 0, 0, 0, table(
            desc(NET_TX_DATA, len(mmds))), mmds) + rx + net_step(2, 60, 0, 2, b"", mmds),
        "backpressure": net_header(flags=0x0b) + net_step(0, 0, 0, 1, tx[4:132], frame) +
                        net_step(3) + tx,
        "limits": net_header(flags=0x31, lim=(4, 4, 1, 1)) + tx + tx + net_step(4, 5) + tx +
                  rx + arrive + arrive + net_step(4, 50) + net_step(6, 1, 0, 1) + tx,
        "mmds_arp": net_header(flags=0x43) + net_step(0, 0, 0, 0, table(
            desc(NET_TX_DATA, 54)), eth_arp([169, 254, 169, 254])) + net_step(0, 1, 0, 0, table(
            desc(NET_TX_DATA, 54), desc(NET_TX_DATA, 54)), eth_arp([169, 254, 169, 1])),
        "pause_config": net_header() + net_step(4, 0, 0x80, 2) + tx + net_step(4, 0, 0x80, 3) +
                        net_step(4, 0, 0x06, 0),
        "reset_no_features_ok": net_header() + tx + net_step(5, 0, 0, 0x07) + tx +
                                net_step(5, 0, 0, 0x0f) + tx,
    })


# --- fuzz_virtio_pci ---------------------------------------------------------
# A step: op, target/slot, 16-bit offset, size code, 3 bytes, 8 bytes value.
PCI_CFG_WR, PCI_CFG_RD, CONF1_WR, CONF1_RD, MMIO_WR, MMIO_RD, MEM_WR, LOOP = range(8)
SIZE = {1: 0, 2: 1, 4: 2, 8: 3}


def pstep(op, t=0, off=0, size=4, value=0, extra=b"\0\0\0"):
    return (bytes([op, t]) + struct.pack("<H", off) + bytes([SIZE[size]]) + extra +
            struct.pack("<Q", value))


def cfg_wr(slot, off, size, value):
    return pstep(PCI_CFG_WR, slot, off, size, value)


def cfg_rd(slot, off, size=4):
    return pstep(PCI_CFG_RD, slot, off, size)


def mmio_wr(t, off, size, value):
    return pstep(MMIO_WR, t, off, size, value)


def mmio_rd(t, off, size=4):
    return pstep(MMIO_RD, t, off, size)


def mem_wr(gpa, data):
    """Guest RAM, 8 bytes a step."""
    out = b""
    for i in range(0, len(data), 8):
        chunk = data[i:i + 8]
        g = gpa + i
        out += (bytes([MEM_WR, g & 0xff]) + struct.pack("<H", g >> 8) +
                bytes([len(chunk) - 1]) + b"\0\0\0" + pad(chunk, 8))
    return out


def loop(flags=3, room=(255, 255), shift=8, extra=b""):
    return (bytes([LOOP, flags, room[0], room[1], shift, len(extra)]) + b"\0\0" +
            pad(extra, 8))


def ring(desc_gpa, avail_gpa, descs, heads):
    out = mem_wr(desc_gpa, b"".join(descs))
    avail = struct.pack("<HH", 0, len(heads)) + b"".join(struct.pack("<H", h) for h in heads)
    return out + mem_wr(avail_gpa, avail)


def pci_driver(t, slot, queues, status_ok=0x0f, msix=True, features=0):
    """The Linux driver's sequence on a virtio-pci function: BAR sizing,
    decoding on, MSI-X, features, queues, DRIVER_OK."""
    out = cfg_rd(slot, 0) + cfg_wr(slot, 0x10, 4, 0xffffffff) + cfg_rd(slot, 0x10)
    out += cfg_wr(slot, 0x10, 4, 0xc1000000 + slot * 0x10000) + cfg_wr(slot, 4, 2, 6)
    if msix:
        out += cfg_wr(slot, 0x42, 2, 0xc000)  # enable, function masked
        for v in range(len(queues) + 1):
            out += mmio_wr(t, 0x4000 + 16 * v, 8, 0xfee00000) + \
                   mmio_wr(t, 0x4008 + 16 * v, 4, 0x30 + v) + mmio_wr(t, 0x400c + 16 * v, 4, 0)
        out += cfg_wr(slot, 0x42, 2, 0x8000)
    out += mmio_wr(t, 0x14, 1, 1) + mmio_wr(t, 0x14, 1, 3) + mmio_wr(t, 0x00, 4, 1)
    out += mmio_rd(t, 0x04) + mmio_wr(t, 0x08, 4, 1) + mmio_wr(t, 0x0c, 4, 1)
    out += mmio_wr(t, 0x08, 4, 0) + mmio_wr(t, 0x0c, 4, (1 << 28) | (1 << 29) | features)
    out += mmio_wr(t, 0x14, 1, 0x0b) + mmio_rd(t, 0x14, 1)
    out += mmio_wr(t, 0x10, 2, 0 if msix else 0xffff)
    for q, (d, a, u) in enumerate(queues):
        out += mmio_wr(t, 0x16, 2, q) + mmio_rd(t, 0x18, 2) + mmio_wr(t, 0x18, 2, 8)
        out += mmio_wr(t, 0x1a, 2, q + 1 if msix else 0xffff)
        out += mmio_wr(t, 0x20, 8, d) + mmio_wr(t, 0x28, 4, a) + mmio_wr(t, 0x2c, 4, 0)
        out += mmio_wr(t, 0x30, 8, u) + mmio_wr(t, 0x1c, 2, 1)
    return out + mmio_wr(t, 0x14, 1, status_ok)


def mmio_driver(t, queues, status_ok=0x0f):
    out = mmio_rd(t, 0x000) + mmio_rd(t, 0x004) + mmio_rd(t, 0x008)
    out += mmio_wr(t, 0x070, 4, 1) + mmio_wr(t, 0x070, 4, 3)
    out += mmio_wr(t, 0x014, 4, 1) + mmio_rd(t, 0x010) + mmio_wr(t, 0x024, 4, 1)
    out += mmio_wr(t, 0x020, 4, 1) + mmio_wr(t, 0x024, 4, 0)
    out += mmio_wr(t, 0x020, 4, 1 << 29) + mmio_wr(t, 0x070, 4, 0x0b)
    for q, (d, a, u) in enumerate(queues):
        out += mmio_wr(t, 0x030, 4, q) + mmio_rd(t, 0x034) + mmio_wr(t, 0x038, 4, 8)
        out += mmio_wr(t, 0x080, 4, d) + mmio_wr(t, 0x090, 4, a) + mmio_wr(t, 0x0a0, 4, u)
        out += mmio_wr(t, 0x044, 4, 1)
    return out + mmio_wr(t, 0x070, 4, status_ok)


def seeds_virtio_pci():
    rng_q = [(0x1000, 0x2000, 0x3000)]
    rng_req = ring(0x1000, 0x2000, [desc(0x10000, 64, WRITE)], [0])
    con_q = [(0x4000, 0x5000, 0x6000), (0x7000, 0x8000, 0x9000)]
    con_tx = mem_wr(0x11000, b"hello, console\n") + ring(
        0x7000, 0x8000, [desc(0x11000, 15, NEXT, 1), desc(0x11000, 0x2000)], [0])
    con_rx = ring(0x4000, 0x5000, [desc(0x12000, 64, WRITE)], [0])
    blk_q = [(0xa000, 0xb000, 0xc000)]
    blk_hdr = struct.pack("<IIQ", 1, 0, 2)  # OUT, sector 2
    blk_req = mem_wr(0x13000, blk_hdr) + mem_wr(0x13100, b"sector two") + ring(
        0xa000, 0xb000, [desc(0x13000, 16, NEXT, 1), desc(0x13100, 512, NEXT, 2),
                         desc(0x13400, 1, WRITE)], [0])
    blk_read = mem_wr(0x14000, struct.pack("<IIQ", 0, 0, 2)) + ring(
        0xa000, 0xb000, [desc(0x14000, 16, NEXT, 1), desc(0x14100, 512, WRITE | NEXT, 2),
                         desc(0x14400, 1, WRITE)], [0, 0])
    # Discard and write-zeroes, as negotiated: header, one segment, status.
    blk_zero = (mem_wr(0xa000, desc(0x15000, 32, NEXT, 1) + desc(0x15100, 1, WRITE) +
                       desc(0x16000, 32, NEXT, 3) + desc(0x16100, 1, WRITE)) +
                mem_wr(0x15000, struct.pack("<IIQQII", 11, 0, 0, 4, 8, 0)) +
                mem_wr(0x16000, struct.pack("<IIQQII", 13, 0, 0, 4, 8, 1)) +
                mem_wr(0xb000, struct.pack("<HHHH", 0, 2, 0, 2)))
    # A console write larger than one notification's budget: the queue is
    # kicked and continues from the event loop.
    con_big = ring(0x7000, 0x8000, [desc(0x20000, 0x30000)], [0])
    window = 0x90  # the PCI configuration access capability
    write("virtio_pci", {
        "rng": pci_driver(0, 1, rng_q) + rng_req + mmio_wr(0, 0x3000, 2, 0) +
               mmio_rd(0, 0x1000, 1) + mmio_rd(0, 0x5000, 8),
        "rng_intx": pci_driver(0, 1, rng_q, msix=False) + rng_req +
                    mmio_wr(0, 0x3000, 2, 0) + mmio_rd(0, 0x1000, 1),
        "console": pci_driver(1, 2, con_q) + con_tx + con_rx + mmio_wr(1, 0x3004, 2, 1) +
                   mmio_wr(1, 0x3000, 2, 0) + loop(7, (4, 255), 0, b"typed") +
                   mmio_rd(1, 0x2000, 4) + mmio_rd(1, 0x2004, 4),
        "blk": pci_driver(2, 3, blk_q) + blk_req + mmio_wr(2, 0x3000, 2, 0) + loop() +
               mem_wr(0xb002, struct.pack("<H", 2)) + blk_read[:-16 * 1] +
               mmio_wr(2, 0x3000, 2, 0) + loop() + mmio_rd(2, 0x2000, 8),
        "blk_discard_zeroes": pci_driver(2, 3, blk_q, features=(1 << 13) | (1 << 14)) +
                              blk_zero + mmio_wr(2, 0x3000, 2, 0) + loop() + loop(),
        "console_budget": pci_driver(1, 2, con_q) + con_big + mmio_wr(1, 0x3004, 2, 1) +
                          loop(3, (255, 255), 15) + loop(3, (255, 255), 15),
        "mmio_rng": mmio_driver(3, rng_q) + rng_req + mmio_wr(3, 0x050, 4, 0) +
                    mmio_rd(3, 0x060) + mmio_wr(3, 0x064, 4, 1),
        "mmio_console": mmio_driver(4, con_q) + con_tx + mmio_wr(4, 0x050, 4, 1) +
                        loop(7, (2, 2), 0) + loop(7, (200, 200), 4) +
                        mmio_wr(4, 0x044, 4, 0) + mmio_wr(4, 0x070, 4, 0),
        "driver_ok_without_features_ok": cfg_wr(1, 4, 2, 6) + mmio_wr(0, 0x14, 1, 1) +
            mmio_wr(0, 0x14, 1, 3) + mmio_wr(0, 0x16, 2, 0) + mmio_wr(0, 0x20, 8, 0x1000) +
            mmio_wr(0, 0x28, 8, 0x2000) + mmio_wr(0, 0x30, 8, 0x3000) +
            mmio_wr(0, 0x1c, 2, 1) + mmio_wr(0, 0x14, 1, 7) + rng_req +
            mmio_wr(0, 0x3000, 2, 0) + mmio_wr(0, 0x1c, 2, 1),
        "bar_move_and_window": cfg_wr(1, 0x10, 4, 0xffffffff) + cfg_rd(1, 0x10) +
            cfg_wr(1, 0x10, 4, 0xc2000000) + cfg_wr(1, 4, 2, 2) + mmio_rd(0, 0x12, 2) +
            cfg_wr(1, 0x10, 4, 0xc0001000) + cfg_wr(1, 4, 2, 0) + cfg_wr(1, 0x10, 4, 0xc3000000) +
            cfg_wr(1, 4, 2, 2) + cfg_wr(1, window + 4, 1, 0) +
            cfg_wr(1, window + 8, 4, 0x12) + cfg_wr(1, window + 12, 4, 2) +
            cfg_rd(1, window + 16, 4) + cfg_wr(1, window + 8, 4, 0x14) +
            cfg_wr(1, window + 12, 4, 1) + cfg_wr(1, window + 16, 1, 1) +
            cfg_wr(1, window + 8, 4, 0x3000) + cfg_wr(1, window + 12, 4, 2) +
            cfg_wr(1, window + 16, 2, 0),
        "conf1": pstep(CONF1_WR, 0, 0, 4, 0x80000800) + pstep(CONF1_RD, 0, 4, 4) +
                 pstep(CONF1_WR, 0, 0, 4, 0x80000810) + pstep(CONF1_WR, 0, 4, 4, 0xffffffff) +
                 pstep(CONF1_RD, 0, 4, 4) + pstep(CONF1_WR, 0, 0, 4, 0x80000840) +
                 pstep(CONF1_RD, 0, 6, 2) + pstep(CONF1_WR, 0, 6, 2, 0x8000),
    })


# --- fuzz_loader -------------------------------------------------------------
RAM_1M, RAM_1M64K, RAM_2M, RAM_8M, RAM_32M = range(5)
F_INITRD, F_LONG_MODE, F_NO_CMDLINE, F_CMDLINE_X2, F_SET_CMDLINE = 1, 2, 4, 8, 16


def loader_input(ram, flags, cmdline_len, kernel, initrd=b""):
    return bytes([ram, flags]) + struct.pack("<HI", cmdline_len, len(initrd)) + kernel + initrd


def bzimage(version=0x020f, pref=0x1000000, init_size=0x100000, code=512, xload=1,
            cmdline_size=2047):
    img = bytearray(1024 + code)
    img[0x1f1] = 1  # setup_sects: the code starts at 1024
    struct.pack_into("<I", img, 0x1f4, code // 16)
    struct.pack_into("<H", img, 0x1fe, 0xaa55)
    img[0x200:0x202] = bytes([0xeb, 0x66])  # the jump: header ends at 0x268
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = 1  # LOADED_HIGH
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<I", img, 0x22c, 0x7fffffff)
    struct.pack_into("<I", img, 0x230, 0x200000)
    img[0x234] = 1
    struct.pack_into("<H", img, 0x236, xload)
    struct.pack_into("<I", img, 0x238, cmdline_size)
    struct.pack_into("<Q", img, 0x258, pref)
    struct.pack_into("<I", img, 0x260, init_size)
    img[1024:1024 + 4] = b"\xf4\xeb\xfd\x90"  # hlt; jmp
    return bytes(img)


def elf(segments, entry, pvh_entry=None):
    """An x86-64 ET_EXEC: PT_LOAD (paddr, data, memsz) segments and, with
    pvh_entry, a PT_NOTE holding XEN_ELFNOTE_PHYS32_ENTRY."""
    phnum = len(segments) + (1 if pvh_entry is not None else 0)
    off = 64 + 56 * phnum
    phdrs, body = b"", b""
    for paddr, data, memsz in segments:
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), 0xffffffff80000000 + paddr,
                             paddr, len(data), memsz, 0x1000)
        body += data
    if pvh_entry is not None:
        note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", pvh_entry)
        phdrs += struct.pack("<IIQQQQQQ", 4, 4, off + len(body), 0, 0, len(note), len(note), 4)
        body += note
    eh = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) +
          struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, 64, 0, 0, 64, 56, phnum, 64, 0, 0))
    return eh + phdrs + body


def seeds_loader():
    code = b"\xf4\xeb\xfd\x90" * 16
    write("loader", {
        "bzimage_64": loader_input(RAM_32M, 0, 20, bzimage()),
        "bzimage_initrd": loader_input(RAM_32M, F_INITRD | F_SET_CMDLINE, 100, bzimage(),
                                       b"initrd contents" * 8),
        "bzimage_low_pref": loader_input(RAM_2M, F_INITRD, 1, bzimage(pref=0x100000,
                                         init_size=0x1000), b"i" * 4096),
        "bzimage_2_06": loader_input(RAM_8M, 0, 5, bzimage(version=0x0206, xload=0)),
        "bzimage_cmdline_too_long": loader_input(RAM_32M, F_CMDLINE_X2, 2000, bzimage()),
        "elf_pvh": loader_input(RAM_8M, F_INITRD, 30, elf([(0x100000, code, 0x3000)],
                                0x100000, pvh_entry=0x100000), b"R" * 300),
        "elf_pvh_long_mode": loader_input(RAM_8M, F_LONG_MODE, 30, elf(
            [(0x100000, code, 0x3000)], 0x100010, pvh_entry=0x100000)),
        "elf_two_segments": loader_input(RAM_2M, F_NO_CMDLINE, 0, elf(
            [(0x100000, code, 0x1000), (0x180000, code, 0x10000)], 0x180000)),
        "elf_tiny_ram": loader_input(RAM_1M64K, F_INITRD, 8, elf(
            [(0x100000, code, 0x1000)], 0x100000), b"x" * 8192),
    })


# --- fuzz_virtio_pmem ---------------------------------------------------------
PMEM_DATA = 0x10000
F_PMEM_RO, F_PMEM_FSYNC_FAILS, F_PMEM_INDIRECT, F_PMEM_EVENT_IDX = 1, 2, 4, 8


def pmem_step(head, tbl, data=b"", second=None, cfg_off=0, cfg_size=3, used_event=None):
    b1 = 0 if second is None else 1 | (second << 1)
    if used_event is not None:
        b1 |= 0x80
    return (bytes([head, b1, (used_event or 0) if used_event is not None else cfg_size,
                   cfg_off]) + table(*tbl) + pad(data, 64))


def pmem_flush(head=0):
    """A FLUSH request: 4 readable bytes, then 4 writable for the answer."""
    return [desc(PMEM_DATA, 4, NEXT, 1), desc(PMEM_DATA + 32, 4, WRITE)]


def seeds_virtio_pmem():
    flush = struct.pack("<I", 0)
    write("virtio_pmem", {
        "flush": bytes([0]) + pmem_step(0, pmem_flush(), flush, cfg_off=8),
        "flush_read_only": bytes([F_PMEM_RO]) + pmem_step(0, pmem_flush(), flush),
        "flush_fsync_fails": bytes([F_PMEM_FSYNC_FAILS | F_PMEM_EVENT_IDX]) +
        pmem_step(0, pmem_flush(), flush, used_event=0) + pmem_step(0, pmem_flush(), flush),
        "unknown_request": bytes([0]) + pmem_step(0, pmem_flush(), struct.pack("<I", 7)),
        "no_room_to_answer": bytes([0]) + pmem_step(0, [desc(PMEM_DATA, 4)], flush),
        "indirect": bytes([F_PMEM_INDIRECT]) + pmem_step(
            0, [desc(PMEM_DATA + 32, 32, INDIRECT)],
            pad(flush, 32) + desc(PMEM_DATA, 4, NEXT, 1) + desc(PMEM_DATA + 8, 4, WRITE),
            second=0),
        "split_request": bytes([0]) + pmem_step(
            0, [desc(PMEM_DATA, 1, NEXT, 1), desc(PMEM_DATA + 1, 3, NEXT, 2),
                desc(PMEM_DATA + 32, 2, WRITE | NEXT, 3), desc(PMEM_DATA + 34, 2, WRITE)], flush),
    })


# --- fuzz_device_state ---------------------------------------------------------
STATE_DEVICES = ["i8042", "serial", "rtc", "acpi_pm", "pit", "pci_balloon", "pci_pmem",
                 "mmio_balloon"]


def state_edit(slot, kind, *value):
    """Replace the value at 'slot' (the record's members in walk order)."""
    return struct.pack(">HB", slot, 1) + bytes([kind, *value])


def seeds_device_state():
    files = {}
    for k, name in enumerate(STATE_DEVICES):
        # one harmless edit (the first member, a small number), then guest
        # accesses: port/register reads and writes
        files[name + "_reloaded"] = bytes([k, 0]) + state_edit(0, 0, 1) + bytes(range(1, 61))
        # a boundary value into the fifth member
        files[name + "_boundary"] = bytes([k, 0]) + state_edit(4, 1, 15) + bytes(16)
    write("device_state", files)


# fuzz_engine: mode byte, interrupt vector, 16 registers, code (its comment)
ENGINE_CODE = {  # assembled by hand from AT&T snippets, as bytes
    "loop": "b96400000001086bd107ffc975f7f4",  # add/imul/dec/jnz loop
    "string": "fcb940000000f3a4fdb908000000f348ab66ada6f4",  # rep movsb, std; rep stosq
    "call": "e801000000f45359488d642408ff2424",  # call, push/pop, jmp *(%rsp)
    "system": "0fa20f31e460e6800f320f20d80f22d80f013bccf4",  # cpuid rdtsc in out rdmsr cr3
    "smc": "488d0503000000c60090cc488707f0480fb11f0f05f4",  # a store into the next insn
    "fpu": "d9ebd9e8dec1f30f6f00660ffec8f2480f2ad0f20f5eca0f0b",  # x87, SSE, ud2
    "iret": "8cd050549c8cc850488d05030000005048cf48f7f1f4",  # iretq to itself, div
    # 32-bit code's own: pusha popa daa das aaa aas aam aad push/pop ds es,
    # push cs, pop eax, push/pop ss, enter 16,2, leave, into, pushf popf
    "legacy32": "606127" "2f373fd40ad50a1e1f06070e581617c8100002c9ce9c9df4",
    # found by the fuzzer: a 4-byte store at -1 after a store to page 0, whose
    # TLB slot page 0xfffffffffffff shared, went to the host byte before RAM
    "regress-tlb-wrap": "48c7c7ffffffffc7042500000000" "00000000abf4",
    # BMI1/BMI2: andn bextr blsi blsmsk blsr tzcnt bzhi pdep pext mulx sarx
    # shlx shrx rorx, register and memory forms, then ANDN with VEX.L1 (#UD)
    "bmi": "c4e2e0f2c1c4e260f216c4e2e8f7c1c4e2f8f3d9c4e2b0f317c4c220f3caf3480fbcc1"
           "66f30fbc06c4e2e8f5c1c462e3f5e1c462baf52ec4e2e3f6c1c4628bf67708c4e2eaf7c1"
           "c4e269f706c44283f7c8c4e3fbf0c10dc4e37bf01f07c4e264f2c1f4",
}


def engine_state():
    """The state bytes of a kernel at CPL0 as a snapshot would hold it."""
    segs = struct.pack("<HH", 0xa9b, 0x08) + struct.pack("<HH", 0xc93, 0x10) * 3 + \
        struct.pack("<HH", 0x1c93, 0) * 2
    bases = struct.pack("<QQ", 0x180000, 0xffff888000000000)
    dr = struct.pack("<QQQQ", 0x100010, 0x180000, 0xffff0ff0, 0x400)
    msrs = struct.pack("<QQQQQ", 0, 0, 0, 0, 0) + b"\0"
    tail = bytes([0]) + struct.pack("<HI", 0x37f, 0x1f80)
    st = segs + bases + struct.pack("<Q", 0x202) + dr + msrs + tail
    assert len(st) == 128, len(st)
    return st


def seeds_engine():
    files = {}
    regs = b"".join(struct.pack("<Q", 0x180000 + 0x40 * k) for k in range(16))
    for name, code in ENGINE_CODE.items():
        for mode, tag in ((0x00, "k"), (0x04, "kjit"), (0x09, "user"), (0x94, "diff"),
                          (0x2e, "intr32"), (0x0b, "user32")):
            files[f"{name}-{tag}"] = bytes([mode, 0x40, 0]) + regs + bytes(128) + \
                bytes.fromhex(code)
        files[f"{name}-state"] = bytes([0x84, 0x40, 1]) + regs + engine_state() + \
            bytes.fromhex(code)
    write("engine", files)


TARGETS = {"loader": seeds_loader, "virtio_net": seeds_virtio_net, "virtio_pci": seeds_virtio_pci,
           "virtio_pmem": seeds_virtio_pmem, "device_state": seeds_device_state,
           "engine": seeds_engine}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
