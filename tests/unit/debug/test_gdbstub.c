/* The stub's protocol against a fake target, through its real socket: a
 * client connects (the guest stops), asks for features, the target
 * description, registers and memory by virtual address, sets breakpoints
 * (INT3 in memory only while the guest runs; the debug registers for
 * hardware ones), continues, steps, gets stop replies; malformed and
 * oversized packets are nacked; a client that vanishes leaves the guest
 * running with no breakpoint behind. */
#include "unit.h"

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "debug/gdbstub.h"
#include "util/usock.h"

#define MEM_BASE 0xffffffff81000000ull
#define MEM_SIZE 4096

static struct {
    uint8_t mem[MEM_SIZE];
    struct gdb_x86_state regs[2];
    unsigned stops, resumes;
    int last_step;
    struct accel_debug last_dbg;
    bool running;
} fake;

static void fake_stop(void *ctx) { (void)ctx; fake.stops++; fake.running = false; }
static int fake_resume(void *ctx, const struct accel_debug *dbg, int step)
{
    (void)ctx;
    fake.resumes++;
    fake.last_dbg = *dbg;
    fake.last_step = step;
    fake.running = true;
    return 0;
}
static int fake_get_regs(void *ctx, unsigned cpu, struct gdb_x86_state *st)
{
    (void)ctx;
    assert_true(cpu < 2);
    *st = fake.regs[cpu];
    return 0;
}
static int fake_set_regs(void *ctx, unsigned cpu, const struct gdb_x86_state *st)
{
    (void)ctx;
    fake.regs[cpu] = *st;
    return 0;
}
static int fake_read(void *ctx, unsigned cpu, uint64_t va, void *buf, size_t len)
{
    (void)ctx, (void)cpu;
    if (va < MEM_BASE || va - MEM_BASE > MEM_SIZE - len)
        return -EFAULT;
    memcpy(buf, fake.mem + (va - MEM_BASE), len);
    return 0;
}
static int fake_write(void *ctx, unsigned cpu, uint64_t va, const void *buf, size_t len)
{
    (void)ctx, (void)cpu;
    if (va < MEM_BASE || va - MEM_BASE > MEM_SIZE - len)
        return -EFAULT;
    memcpy(fake.mem + (va - MEM_BASE), buf, len);
    return 0;
}
static void fake_kill(void *ctx) { (void)ctx; }

static const struct gdb_target_ops ops = {fake_stop, fake_resume, fake_get_regs, fake_set_regs,
                                          fake_read, fake_write, fake_kill};

struct fixture {
    struct evloop loop;
    struct gdbstub stub;
    int client;
    char path[64];
};

static void pump(struct fixture *f)
{
    while (evloop_run_once(&f->loop, 20) > 0)
        ;
}

static void send_packet(struct fixture *f, const char *payload)
{
    struct buf b = {0};
    gdb_encode(&b, payload, strlen(payload));
    assert_int_equal(write(f->client, b.data, b.len), (ssize_t)b.len);
    buf_free(&b);
    pump(f);
}

/* Everything the stub sent since the last call, acks included. */
static char *received(struct fixture *f)
{
    static char text[16384];
    size_t n = 0;
    struct pollfd p = {f->client, POLLIN, 0};
    while (n < sizeof(text) - 1 && poll(&p, 1, 50) > 0) {
        ssize_t r = read(f->client, text + n, sizeof(text) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    text[n] = '\0';
    return text;
}

static void expect_reply(struct fixture *f, const char *packet, const char *want)
{
    send_packet(f, packet);
    struct buf b = {0};
    gdb_encode(&b, want, strlen(want));
    char expected[512];
    snprintf(expected, sizeof(expected), "+%.*s", (int)b.len, (const char *)b.data);
    buf_free(&b);
    char *got = received(f);
    if (strcmp(got, expected))
        fail_msg("%s: got '%s', expected '%s'", packet, got, expected);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    memset(&fake, 0, sizeof(fake));
    fake.running = true;
    fake.regs[0].regs.rip = MEM_BASE + 0x10;
    fake.regs[1].regs.rip = MEM_BASE + 0x20;
    for (unsigned i = 0; i < MEM_SIZE; i++)
        fake.mem[i] = (uint8_t)i;
    snprintf(f->path, sizeof(f->path), "/tmp/ember-gdbstub-test-%d.sock", getpid());
    assert_int_equal(evloop_init(&f->loop), 0);
    const struct gdb_target target = {&ops, NULL, 2, true};
    char address[80];
    snprintf(address, sizeof(address), "unix:%s", f->path);
    assert_int_equal(gdbstub_init(&f->stub, address, &f->loop, &target, false), 0);
    f->client = usock_connect(f->path);
    assert_true(f->client >= 0);
    pump(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->client);
    gdbstub_destroy(&f->stub);
    evloop_destroy(&f->loop);
    free(f);
    return 0;
}

static void test_attach_stops(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fake.stops, 1);
    assert_false(fake.running);
    expect_reply(f, "?", "T02thread:1;");
    expect_reply(f, "qfThreadInfo", "m1,2");
    expect_reply(f, "qsThreadInfo", "l");
    expect_reply(f, "qThreadExtraInfo,2", "764350552031"); /* "vCPU 1" in hex */
}

static void test_features_and_xml(void **state)
{
    struct fixture *f = *state;
    send_packet(f, "qSupported:multiprocess+;swbreak+");
    assert_non_null(strstr(received(f), "qXfer:features:read+"));
    send_packet(f, "qXfer:features:read:target.xml:0,40");
    char *got = received(f);
    assert_non_null(strstr(got, "+$m<?xml"));
    send_packet(f, "qXfer:features:read:target.xml:100000,40");
    assert_non_null(strstr(received(f), "+$l#"));
    expect_reply(f, "qXfer:memory-map:read::0,10", "");
    expect_reply(f, "vMustReplyEmpty", "");
}

static void test_registers(void **state)
{
    struct fixture *f = *state;
    send_packet(f, "g");
    char *got = received(f);
    /* a reply starts "+$", and rax is all zeros: run-length encoded */
    assert_int_equal(strncmp(got, "+$0*", 4), 0);
    expect_reply(f, "Hg2", "OK");
    expect_reply(f, "p10", "20000081ffffffff"); /* rip of vCPU 1 */
    expect_reply(f, "P0=0100000000000000", "OK");
    assert_true(fake.regs[1].regs.rax == 1);
    expect_reply(f, "P12=10000000", "E16"); /* cs is not writable */
    expect_reply(f, "p1000", "E16");
    expect_reply(f, "Hg3", "E16");        /* no third vCPU */
}

static void test_memory(void **state)
{
    struct fixture *f = *state;
    expect_reply(f, "mffffffff81000010,4", "10111213");
    expect_reply(f, "Mffffffff81000010,2:abcd", "OK");
    assert_int_equal(fake.mem[0x10], 0xab);
    /* across the end of what is mapped: as far as it goes */
    expect_reply(f, "mffffffff81000ffe,4", "feff");
    expect_reply(f, "m0,4", "E0e");
    expect_reply(f, "m0,ffffffff", "E16");
    expect_reply(f, "Mffffffff81000010,2:ab", "E16"); /* too few digits */
    expect_reply(f, "Mffffffff81000ffe,4:00000000", "E0e");
    assert_int_equal(fake.mem[0xffe], 0xfe); /* nothing written */
}

static void test_breakpoints_resume_stop(void **state)
{
    struct fixture *f = *state;
    expect_reply(f, "Z0,ffffffff81000040,1", "OK");
    expect_reply(f, "Z1,ffffffff81000080,1", "OK");
    expect_reply(f, "Z2,ffffffff81000100,8", "OK");
    expect_reply(f, "Z2,ffffffff81000101,8", "E0e"); /* unaligned */
    assert_int_equal(fake.mem[0x40], 0x40); /* not in memory while stopped */
    send_packet(f, "c");
    assert_string_equal(received(f), "+");
    assert_true(fake.running);
    assert_int_equal(fake.mem[0x40], 0xcc);
    assert_int_equal(fake.last_step, -1);
    assert_true(fake.last_dbg.flags & ACCEL_DEBUG_SW_BP);
    assert_true(fake.last_dbg.flags & ACCEL_DEBUG_HW_BP);
    assert_true(fake.last_dbg.dr[0] == MEM_BASE + 0x80);
    assert_true(fake.last_dbg.dr[1] == MEM_BASE + 0x100);
    /* slot 0: exec, 1 byte; slot 1: write, 8 bytes */
    assert_true(fake.last_dbg.dr7 == (2 | 8 | (1ull << 20) | (2ull << 22)));
    /* packets other than an interrupt are ignored while it runs */
    send_packet(f, "g");
    assert_string_equal(received(f), "+");
    /* the watchpoint fires on vCPU 1 */
    struct accel_exit exit = {.kind = ACCEL_EXIT_DEBUG};
    exit.debug.vector = 1;
    exit.debug.dr6 = 2;
    fake.running = false;
    gdbstub_stopped(&f->stub, 1, GDB_STOP_DEBUG, &exit);
    pump(f);
    char want[64];
    snprintf(want, sizeof(want), "T05thread:2;watch:%llx;", (unsigned long long)(MEM_BASE + 0x100));
    struct buf b = {0};
    gdb_encode(&b, want, strlen(want));
    assert_memory_equal(received(f), b.data, b.len);
    buf_free(&b);
    assert_int_equal(fake.mem[0x40], 0x40); /* taken out at the stop */
    /* a step on the selected thread */
    expect_reply(f, "z0,ffffffff81000040,1", "OK");
    send_packet(f, "Hc2");
    received(f);
    send_packet(f, "s");
    assert_int_equal(fake.last_step, 1);
    exit.debug.dr6 = 0x4000;
    gdbstub_stopped(&f->stub, 1, GDB_STOP_DEBUG, &exit);
    pump(f);
    assert_non_null(strstr(received(f), "T05thread:2;"));
    /* Ctrl-C */
    send_packet(f, "c");
    received(f);
    uint8_t ctrl_c = 3;
    assert_int_equal(write(f->client, &ctrl_c, 1), 1);
    pump(f);
    assert_non_null(strstr(received(f), "T02thread:"));
}

static void test_malformed(void **state)
{
    struct fixture *f = *state;
    const char *bad = "$g#00";
    assert_int_equal(write(f->client, bad, strlen(bad)), (ssize_t)strlen(bad));
    pump(f);
    assert_string_equal(received(f), "-");
    static char big[GDB_PACKET_MAX + 100];
    memset(big, 'm', sizeof(big));
    big[0] = '$';
    memcpy(big + sizeof(big) - 3, "#00", 3);
    assert_int_equal(write(f->client, big, sizeof(big)), (ssize_t)sizeof(big));
    pump(f);
    assert_string_equal(received(f), "-");
    expect_reply(f, "Z9,0,0", "E01");
    expect_reply(f, "Hx1", "E16");
    expect_reply(f, "mzz", "E16");
    expect_reply(f, "", "");
    /* a nack gets the last reply again */
    expect_reply(f, "qC", "QC1");
    assert_int_equal(write(f->client, "-", 1), 1);
    pump(f);
    assert_non_null(strstr(received(f), "$QC1#"));
    /* and it still answers */
    expect_reply(f, "T1", "OK");
}

static void test_client_vanishes(void **state)
{
    struct fixture *f = *state;
    expect_reply(f, "Z0,ffffffff81000040,1", "OK");
    send_packet(f, "c");
    received(f);
    assert_int_equal(fake.mem[0x40], 0xcc);
    close(f->client);
    pump(f);
    /* stopped to take the INT3 out, then running with no debugging */
    assert_int_equal(fake.mem[0x40], 0x40);
    assert_true(fake.running);
    assert_int_equal(fake.last_dbg.flags, 0);
    /* a new client may come */
    f->client = usock_connect(f->path);
    assert_true(f->client >= 0);
    pump(f);
    assert_false(fake.running);
    expect_reply(f, "D", "OK");
    pump(f);
    assert_true(fake.running);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_attach_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_and_xml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breakpoints_resume_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_vanishes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
