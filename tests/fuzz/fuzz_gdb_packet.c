/* A hostile GDB client: arbitrary bytes through the packet receiver, and
 * every packet it accepts through the stub's protocol handlers, against a
 * fake target with 64 KiB of "guest memory" at virtual address 0x10000 and
 * two vCPUs. Checks: no crash, no access outside the buffers (ASan), the
 * receiver's payload within its limit, and encoding round-trips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "debug/gdbstub.h"
#include "util/gdb_packet.h"

#define MEM_BASE 0x10000u
#define MEM_SIZE 0x10000u

static uint8_t fake_mem[MEM_SIZE];
static struct gdb_x86_state fake_regs[2];

static void fake_stop(void *ctx) { (void)ctx; }
static int fake_resume(void *ctx, const struct accel_debug *dbg, int step)
{
    (void)ctx, (void)dbg, (void)step;
    return 0;
}
static int fake_get_regs(void *ctx, unsigned cpu, struct gdb_x86_state *st)
{
    (void)ctx;
    if (cpu >= 2)
        abort(); /* the stub must never name a vCPU that does not exist */
    *st = fake_regs[cpu];
    return 0;
}
static int fake_set_regs(void *ctx, unsigned cpu, const struct gdb_x86_state *st)
{
    (void)ctx;
    if (cpu >= 2)
        abort();
    fake_regs[cpu] = *st;
    return 0;
}
static bool in_mem(uint64_t va, size_t len)
{
    return va >= MEM_BASE && len <= MEM_SIZE && va - MEM_BASE <= MEM_SIZE - len;
}
static int fake_read(void *ctx, unsigned cpu, uint64_t va, void *buf, size_t len)
{
    (void)ctx, (void)cpu;
    if (!in_mem(va, len))
        return -14;
    memcpy(buf, fake_mem + (va - MEM_BASE), len);
    return 0;
}
static int fake_write(void *ctx, unsigned cpu, uint64_t va, const void *buf, size_t len)
{
    (void)ctx, (void)cpu;
    if (!in_mem(va, len))
        return -14;
    memcpy(fake_mem + (va - MEM_BASE), buf, len);
    return 0;
}
static void fake_kill(void *ctx) { (void)ctx; }

static const struct gdb_target_ops fake_ops = {
    fake_stop, fake_resume, fake_get_regs, fake_set_regs, fake_read, fake_write, fake_kill,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gdbstub s;
    memset(&s, 0, sizeof(s));
    s.target = (struct gdb_target){&fake_ops, NULL, 2, true};
    s.fd = -1; /* replies go nowhere; every handler still runs */
    s.listen_fd = -1;
    s.c_cpu = -1;
    s.stopped_once = true;
    gdb_rx_init(&s.rx);
    for (size_t i = 0; i < size; i++) {
        enum gdb_rx_event e = gdb_rx_byte(&s.rx, data[i]);
        if (e != GDB_RX_PACKET)
            continue;
        if (s.rx.len > GDB_PACKET_MAX || s.rx.data[s.rx.len] != '\0')
            abort();
        /* what the stub would send back decodes to the same bytes */
        struct buf b = {0};
        gdb_encode(&b, s.rx.data, s.rx.len);
        struct gdb_rx back;
        gdb_rx_init(&back);
        enum gdb_rx_event last = GDB_RX_NONE;
        for (size_t k = 0; k < b.len; k++)
            if ((e = gdb_rx_byte(&back, b.data[k])) != GDB_RX_NONE)
                last = e;
        if (!b.failed && (last != GDB_RX_PACKET || back.len != s.rx.len ||
                          memcmp(back.data, s.rx.data, s.rx.len)))
            abort();
        buf_free(&b);
        gdbstub_handle_packet(&s, s.rx.data, s.rx.len);
    }
    buf_free(&s.out);
    buf_free(&s.last);
    return 0;
}
