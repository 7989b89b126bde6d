/* System tests: small 64-bit guests (tests/engine/sys_*.S) run on the engine
 * through its API, plus API-level checks. cmocka, TAP output. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/harness.h"
#include "cpu/internal.h" /* TLB_INDEX */

#ifndef GUEST_DIR
#define GUEST_DIR "build/engine/guests"
#endif

#define RAM_SIZE (8u << 20)
#define RESULT 0x8000
#define RES_CHECK 0x8008
#define RES_VAL 0x8010
#define GDT 0x9000
#define TSS 0x9100
#define IDT 0xa000
#define PASS_MAGIC 0x600d600du
#define FAIL_MAGIC 0x0bad0badu

struct mmio_log {
    uint64_t gpa;
    unsigned len;
    bool write;
    uint64_t val;
};

struct sysguest {
    struct harness h;
    char out[4096];
    size_t nout;
    int pending;          /* vector intr() hands out, -1 none */
    unsigned intr_calls;
    uint8_t dev[0x2000];  /* MMIO device at 0xd0000000 */
    struct mmio_log log[64];
    unsigned nlog;
};

static void pio(void *ctx, uint16_t port, void *data, unsigned len, bool write)
{
    struct sysguest *g = ctx;
    if (port == 0xe9 && write && g->nout < sizeof(g->out) - 1)
        g->out[g->nout++] = *(char *)data;
    (void)len;
}

static bool mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool write)
{
    struct sysguest *g = ctx;
    bool claimed = gpa >= 0xd0000000ull && gpa + len <= 0xd0000000ull + sizeof(g->dev);
    if (g->nlog < 64) {
        struct mmio_log *l = &g->log[g->nlog++];
        l->gpa = gpa;
        l->len = len;
        l->write = write;
        l->val = 0;
        memcpy(&l->val, data, len);
    }
    if (!claimed)
        return false;
    if (write)
        memcpy(g->dev + (gpa - 0xd0000000ull), data, len);
    else
        memcpy(data, g->dev + (gpa - 0xd0000000ull), len);
    return true;
}

static void debug(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "[engine] %s\n", msg);
}

static int intr(void *ctx)
{
    struct sysguest *g = ctx;
    g->intr_calls++;
    int v = g->pending;
    g->pending = -1;
    return v;
}

static uint32_t rd32(struct sysguest *g, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, g->h.ram + gpa, 4);
    return v;
}

static void load_image(struct harness *h, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.bin", GUEST_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(h->ram + 0x100000, 1, 0x100000, f);
    fclose(f);
    assert_true(n > 0);
}

static void build_tables(struct harness *h);
static void enter_long_mode(struct harness *h);

/* The environment guest.inc describes. */
static void guest_setup(struct sysguest *g, const char *name)
{
    memset(g, 0, sizeof(*g));
    g->pending = -1;
    struct harness *h = &g->h;
    assert_int_equal(h_init(h, RAM_SIZE, 0x1000), 0);
    build_tables(h);
    load_image(h, name);
    struct cpu_config cfg = {
        .mem = &h->gm,
        .ops = {.ctx = g, .pio = pio, .mmio = mmio, .intr = intr, .debug = debug},
        .flags = getenv("SYSTEST_TRACE") ? CPU_CFG_TRACE_INT : 0,
    };
    h->cpu = cpu_create(&cfg);
    assert_non_null(h->cpu);
    enter_long_mode(h);
}

static void build_tables(struct harness *h)
{
    /* identity map 0-8 MiB with 4 KiB pages: PML4 0x1000 (h_init), PDPT
     * 0x2000, PD 0x3000, PTs 0x4000-0x7fff */
    uint64_t *pml4 = h_ptr(h, 0x1000), *pdpt = h_ptr(h, 0x2000), *pd = h_ptr(h, 0x3000);
    pml4[0] = 0x2000 | 7;
    pdpt[0] = 0x3000 | 7;
    for (unsigned k = 0; k < 4; k++)
        pd[k] = (0x4000 + k * 0x1000) | 7;
    uint64_t *pt = h_ptr(h, 0x4000);
    for (unsigned k = 0; k < RAM_SIZE / 4096; k++)
        pt[k] = (uint64_t)k * 4096 | 7;
    uint64_t *gdt = h_ptr(h, GDT);
    gdt[1] = h_desc(0, 0xfffff, 0xa09b); /* 0x08 kernel code 64 */
    gdt[2] = h_desc(0, 0xfffff, 0xc093); /* 0x10 kernel data */
    gdt[3] = h_desc(0, 0xfffff, 0xc0f3); /* 0x18 user data */
    gdt[4] = h_desc(0, 0xfffff, 0xa0fb); /* 0x20 user code 64 */
    gdt[5] = h_desc(TSS, 0x68 + 0x2000, 0x008b); /* 0x28 TSS (busy), with an I/O bitmap */
    gdt[6] = 0;
    gdt[7] = h_desc(0, 0xfffff, 0xc09b); /* 0x38 kernel code 32 */
    uint8_t *tss = h_ptr(h, TSS);
    uint64_t v = 0x80000;
    memcpy(tss + 4, &v, 8);   /* RSP0 */
    v = 0x70000;
    memcpy(tss + 36, &v, 8);  /* IST1 */
    v = 0x74000;
    memcpy(tss + 44, &v, 8);  /* IST2 */
    uint16_t iob = 0x68;              /* bitmap at TSS + 0x68: all ports denied */
    memcpy(tss + 102, &iob, 2);
    memset(tss + 0x68, 0xff, 0x2001);
}

static void enter_long_mode(struct harness *h)
{
    const uint64_t *gdt = h_ptr(h, GDT);
    struct x86_sregs s = {0};
    s.cs = h_seg(0x08, gdt[1]);
    s.ss = s.ds = s.es = h_seg(0x10, gdt[2]);
    s.fs = s.gs = (struct x86_segment){.unusable = true};
    s.tr = h_seg(0x28, gdt[5]);
    s.ldt = (struct x86_segment){.unusable = true};
    s.gdt = (struct x86_dtable){GDT, 8 * 8 - 1};
    s.idt = (struct x86_dtable){IDT, 4095};
    s.cr0 = 0x80010033;
    s.cr3 = 0x1000;
    s.cr4 = 0x6a0;
    s.efer = 0xd01;
    assert_int_equal(cpu_set_sregs(h->cpu, &s), 0);
    struct x86_regs r = {.rip = 0x100000, .rsp = 0x90000, .rflags = 2};
    cpu_set_regs(h->cpu, &r);
}

static int run(struct sysguest *g, struct cpu_exit *ex)
{
    cpu_set_insn_limit(g->h.cpu, 50000000);
    return cpu_run(g->h.cpu, ex);
}

static void expect_pass(struct sysguest *g, int reason, const struct cpu_exit *ex)
{
    if (reason != CPU_EXIT_HALT || rd32(g, RESULT) != PASS_MAGIC) {
        print_message("exit %d (%s) rip %#llx; result %#x, failing check %u; output '%.*s'\n",
                      reason, ex->detail, (unsigned long long)ex->rip, rd32(g, RESULT),
                      rd32(g, RES_CHECK), (int)g->nout, g->out);
        fail();
    }
}

/* Guest 'name' run to its passing halt; the caller frees it. */
static void run_to_pass(struct sysguest *g, const char *name)
{
    guest_setup(g, name);
    struct cpu_exit ex;
    int reason = run(g, &ex);
    expect_pass(g, reason, &ex);
}

static void run_simple(const char *name)
{
    static struct sysguest g;
    run_to_pass(&g, name);
    h_free(&g.h);
}

/* The engine's host code (translated blocks, x87/SSE stubs) is written
 * through one view of its pages and run through another: after guests
 * that make both kinds, no mapping of this process is writable and
 * executable at once (the stub arena was, until 2026-12-04). */
static void test_no_writable_executable_memory(void **state)
{
    (void)state;
    static struct sysguest g;
    run_to_pass(&g, "sys_fpu");
    FILE *maps = fopen("/proc/self/maps", "r");
    assert_non_null(maps);
    char line[512];
    unsigned found = 0;
    while (fgets(line, sizeof(line), maps)) {
        char perms[8] = "";
        if (sscanf(line, "%*s %7s", perms) == 1 && strchr(perms, 'w') && strchr(perms, 'x')) {
            print_message("writable and executable: %s", line);
            found++;
        }
    }
    fclose(maps);
    assert_true(g.h.cpu && found == 0);
    h_free(&g.h);
}

static void test_paging(void **state) { (void)state; run_simple("sys_paging"); }
static void test_page_crossing_slot(void **state) { (void)state; run_simple("sys_tlbcross"); }

/* What the fast paths' crossing check rests on: a page and the next one
 * never share a soft-TLB slot. The index reads page-number bits 0-19 only,
 * so every value of those is tried (under a few high patterns, the last
 * one making the wrap from the last page to page 0). */
static void test_tlb_index_separates_neighbours(void **state)
{
    (void)state;
    static const uint64_t high[] = {0, 1ull << 30, 0x7fffull << 27, 0xfffffull << 32,
                                     0xffffffffffffull << 4, 0xfffffffffffffull};
    for (unsigned h = 0; h < sizeof(high) / sizeof(high[0]); h++)
        for (uint64_t low = 0; low < 1ull << 20; low++) {
            uint64_t page = (high[h] & ~((1ull << 20) - 1)) | low;
            uint64_t va = page << 12, next = (page + 1) << 12;
            if (TLB_INDEX(va) == TLB_INDEX(next)) {
                print_message("pages %#llx and the next share slot %u\n",
                              (unsigned long long)page, TLB_INDEX(va));
                fail();
            }
        }
}
static void test_rings_iret_syscall(void **state) { (void)state; run_simple("sys_ring"); }
static void test_double_fault(void **state) { (void)state; run_simple("sys_df"); }
static void test_rep_fault_resume(void **state) { (void)state; run_simple("sys_rep"); }
static void test_ud_and_exception_rip(void **state) { (void)state; run_simple("sys_ud"); }
static void test_descriptors_msrs_io(void **state) { (void)state; run_simple("sys_desc"); }
static void test_fpu_system_rules(void **state) { (void)state; run_simple("sys_fpu"); }

static void test_triple_fault(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_triple");
    struct cpu_exit ex;
    assert_int_equal(run(&g, &ex), CPU_EXIT_SHUTDOWN);
    h_free(&g.h);
}

static void test_hlt_and_interrupts(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_hlt");
    struct cpu_exit ex;
    /* 1: sti; hlt */
    assert_int_equal(run(&g, &ex), CPU_EXIT_HALT);
    struct cpu_events_state ev;
    cpu_get_events_state(g.h.cpu, &ev);
    assert_true(ev.halted);
    /* without a signal, HLT stays HALT */
    assert_int_equal(run(&g, &ex), CPU_EXIT_HALT);
    assert_int_equal(g.intr_calls, 0);
    /* 2: an interrupt wakes it; the guest reaches cli; hlt */
    g.pending = 0x40;
    cpu_signal(g.h.cpu, CPU_EVENT_INTERRUPT);
    assert_int_equal(run(&g, &ex), CPU_EXIT_HALT);
    assert_int_equal(g.intr_calls, 2); /* delivered, then polled again: -1 */
    assert_int_not_equal(rd32(&g, RESULT), FAIL_MAGIC);
    /* 3: IF=0: a signalled interrupt is not taken (intr() not even asked) */
    g.pending = 0x40;
    cpu_signal(g.h.cpu, CPU_EVENT_INTERRUPT);
    assert_int_equal(run(&g, &ex), CPU_EXIT_HALT);
    assert_int_equal(g.intr_calls, 2);
    /* 4: an NMI wakes it; after sti; nop the pending interrupt is taken */
    cpu_signal(g.h.cpu, CPU_EVENT_NMI);
    int reason = run(&g, &ex);
    expect_pass(&g, reason, &ex);
    assert_int_equal(g.intr_calls, 4);
    struct cpu_stats st;
    cpu_get_stats(g.h.cpu, &st);
    assert_int_equal(st.interrupts, 2);
    assert_int_equal(st.nmis, 1);
    h_free(&g.h);
}

/* tests/run.py runs this binary with EMBER_JIT=off, with EMBER_JIT=on
 * (every block translated at once) and with EMBER_JIT_HOT=2 as well (a
 * block translated on its second entry). Without either the engine's
 * default translates a block on its 32nd entry, which most of these
 * guests' code never reaches. */
static bool jit_off(void)
{
    const char *v = getenv("EMBER_JIT");
    return v && (!strcmp(v, "off") || !strcmp(v, "0"));
}

static bool jit_requested(void) /* the code below runs as host code */
{
    const char *v = getenv("EMBER_JIT");
    return !jit_off() && ((v && (!strcmp(v, "on") || !strcmp(v, "1"))) || getenv("EMBER_JIT_HOT"));
}

static void test_self_modifying_code(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_smc");
    struct cpu_exit ex;
    int reason = run(&g, &ex);
    assert_int_equal(reason, CPU_EXIT_HALT);
    assert_int_not_equal(rd32(&g, RESULT), FAIL_MAGIC);
    assert_int_equal(rd32(&g, RES_VAL), 7);
    /* a device rewrites the function's immediate */
    uint32_t nine = 9;
    memcpy(g.h.ram + 0x220001, &nine, 4);
    cpu_notify_write(g.h.cpu, 0x220001, 4);
    cpu_signal(g.h.cpu, CPU_EVENT_NMI);
    reason = run(&g, &ex);
    expect_pass(&g, reason, &ex);
    struct cpu_stats st;
    cpu_get_stats(g.h.cpu, &st);
    assert_true(st.blocks_invalidated >= 4);
    if (jit_requested()) /* the stores and the code they change ran as host code */
        assert_true(st.jit_insns > 0);
    h_free(&g.h);
}

static void test_translated_runs(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_jit");
    struct cpu_exit ex;
    expect_pass(&g, run(&g, &ex), &ex);
    struct cpu_stats st;
    cpu_get_stats(g.h.cpu, &st);
    if (jit_requested())
        assert_true(st.jit_insns > 50);
    else if (jit_off())
        assert_int_equal(st.jit_insns, 0);
    h_free(&g.h);
}

/* Signals vector 0x40 once the guest says it spins (sys_chain part 5). */
static void *signal_when_spinning(void *arg)
{
    struct sysguest *g = arg;
    while (!__atomic_load_n((uint32_t *)(g->h.ram + RES_VAL + 8), __ATOMIC_ACQUIRE))
        usleep(100);
    usleep(1000);
    __atomic_store_n(&g->pending, 0x40, __ATOMIC_RELEASE);
    cpu_signal(g->h.cpu, CPU_EVENT_INTERRUPT);
    return NULL;
}

/* sys_chain: chained loops, a linked block changed by a store or by a
 * remap, and an interrupt signalled while a chained loop runs (after an
 * instruction limit stopped the guest inside it). */
static void test_chained_blocks(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_chain");
    struct cpu_exit ex;
    struct cpu_stats st;
    /* run into the interrupt loop (part 4: 3 instructions per round) */
    cpu_set_insn_limit(g.h.cpu, 1000000);
    int reason = cpu_run(g.h.cpu, &ex);
    if (reason != CPU_EXIT_INTERRUPTED)
        expect_pass(&g, reason, &ex); /* shows the failing check */
    assert_int_equal(reason, CPU_EXIT_INTERRUPTED);
    cpu_get_stats(g.h.cpu, &st);
    assert_true(st.insns >= 1000000 && st.insns < 1000000 + 64);
    assert_int_equal(rd32(&g, RESULT), 0);
    g.pending = 0x40;
    cpu_signal(g.h.cpu, CPU_EVENT_INTERRUPT);
    pthread_t t;
    pthread_create(&t, NULL, signal_when_spinning, &g);
    /* part 5 spins until the thread's interrupt: resume after each limit
     * (50 M instructions), up to 200 times */
    for (unsigned k = 0; k < 200 && (reason = run(&g, &ex)) == CPU_EXIT_INTERRUPTED; k++)
        ;
    pthread_join(t, NULL);
    expect_pass(&g, reason, &ex);
    cpu_get_stats(g.h.cpu, &st);
    assert_int_equal(st.interrupts, 2);
    assert_true(st.blocks_invalidated >= 1);
    assert_true(st.chained > 1000000);
    if (jit_requested())
        assert_true(st.jit_insns > 20);
    h_free(&g.h);
}

static void test_mmio(void **state)
{
    (void)state;
    static struct sysguest g;
    run_to_pass(&g, "sys_mmio");
    static const struct mmio_log want[] = {
        {0xd0000010, 4, true, 0x12345678}, {0xd0000010, 4, false, 0},
        {0xd0000010, 4, false, 0},         {0xd0000010, 4, true, 0x12345679},
        {0xd0000010, 4, false, 0},         {0xe0000000, 8, false, 0},
        {0xd0000ffc, 4, true, 0x55667788}, {0xd0001000, 4, true, 0x11223344},
        {0xd0000ffc, 4, false, 0},         {0xd0001000, 4, false, 0},
    };
    assert_int_equal(g.nlog, sizeof(want) / sizeof(want[0]));
    for (unsigned k = 0; k < g.nlog; k++) {
        assert_int_equal(g.log[k].gpa, want[k].gpa);
        assert_int_equal(g.log[k].len, want[k].len);
        assert_int_equal(g.log[k].write, want[k].write);
        if (want[k].write)
            assert_int_equal(g.log[k].val, want[k].val);
    }
    h_free(&g.h);
}

static void test_compat_mode(void **state) { (void)state; run_simple("sys_compat"); }
static void test_compat_user_process(void **state) { (void)state; run_simple("sys_compat_user"); }
static void test_compat_addr16(void **state) { (void)state; run_simple("sys_compat_a16"); }
static void test_compat_limits(void **state) { (void)state; run_simple("sys_compat_limits"); }
static void test_single_step_rep(void **state) { (void)state; run_simple("sys_tfrep"); }
static void test_fsgsbase(void **state) { (void)state; run_simple("sys_fsgsbase"); }
static void test_bmi(void **state) { (void)state; run_simple("sys_bmi"); }
static void test_aes(void **state) { (void)state; run_simple("sys_aes"); }

/* A flush empties the block arena without clearing it, so the next blocks
 * are built over stale bytes: none of them may be read back (a 32-bit
 * block's first handler under MOV SS's shadow once was). */
static void test_guest_debug_registers(void **state) { (void)state; run_simple("sys_guestdr"); }

static void test_compat_legacy(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_compat_legacy");
    memset(g.h.cpu->arena, 0xa5, 4u << 20);
    struct cpu_exit ex;
    int reason = run(&g, &ex);
    expect_pass(&g, reason, &ex);
    h_free(&g.h);
}

static void test_compat_mode_unsupported_is_an_error(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_compat_noimpl");
    struct cpu_exit ex;
    assert_int_equal(run(&g, &ex), CPU_EXIT_ERROR);
    assert_non_null(strstr(ex.detail, "32-bit code"));
    assert_true(ex.insn_len >= 2);
    assert_int_equal(ex.insn[0], 0x0f); /* LGDT, after the NOP */
    assert_int_equal(ex.insn[1], 0x01);
    assert_int_equal(ex.rip & 0xfff00000, 0x100000);
    h_free(&g.h);
}

/* A REP STOSB over 4 MiB stops at an instruction limit, at the REP with
 * RCX part done, and goes on from there to the same end. */
static void test_limit_ends_a_long_rep(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_hlt");
    static const uint8_t code[] = {
        0x48, 0xc7, 0xc7, 0x00, 0x00, 0x20, 0x00, /* mov $0x200000, %rdi */
        0x48, 0xc7, 0xc1, 0x00, 0x00, 0x40, 0x00, /* mov $0x400000, %rcx */
        0xb0, 0x5a,                               /* mov $0x5a, %al */
        0xf3, 0xaa,                               /* rep stosb */
        0xf4,                                     /* hlt */
    };
    memcpy(g.h.ram + 0x100000, code, sizeof(code));
    struct cpu_exit ex;
    cpu_set_insn_limit(g.h.cpu, 100);
    assert_int_equal(cpu_run(g.h.cpu, &ex), CPU_EXIT_INTERRUPTED);
    struct x86_regs r;
    cpu_get_regs(g.h.cpu, &r);
    assert_int_equal(r.rip, 0x100010);
    assert_true(r.rcx > 0 && r.rcx < 0x400000);
    assert_int_equal(r.rdi, 0x600000 - r.rcx);
    cpu_set_insn_limit(g.h.cpu, 0);
    assert_int_equal(cpu_run(g.h.cpu, &ex), CPU_EXIT_HALT);
    cpu_get_regs(g.h.cpu, &r);
    assert_int_equal(r.rcx, 0);
    for (uint64_t a = 0x200000; a < 0x600000; a += 4093)
        assert_int_equal(g.h.ram[a], 0x5a);
    assert_int_equal(g.h.ram[0x600000], 0);
    h_free(&g.h);
}

static void *kicker(void *arg)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    cpu_signal(arg, CPU_EVENT_KICK);
    return NULL;
}

static void test_kick_and_limit(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_spin");
    struct cpu_exit ex;
    cpu_set_insn_limit(g.h.cpu, 100000);
    assert_int_equal(cpu_run(g.h.cpu, &ex), CPU_EXIT_INTERRUPTED);
    struct cpu_stats st;
    cpu_get_stats(g.h.cpu, &st);
    assert_true(st.insns >= 100000 && st.insns < 100000 + 64);
    cpu_set_insn_limit(g.h.cpu, 0);
    pthread_t t;
    pthread_create(&t, NULL, kicker, g.h.cpu);
    assert_int_equal(cpu_run(g.h.cpu, &ex), CPU_EXIT_INTERRUPTED);
    pthread_join(t, NULL);
    h_free(&g.h);
}

static void test_state_roundtrip(void **state)
{
    (void)state;
    static struct sysguest g;
    guest_setup(&g, "sys_spin");
    struct cpu *c = g.h.cpu;
    struct x86_regs r = {.rax = 1, .rbx = 2, .r15 = 0xf00d, .rip = 0x100000, .rsp = 0x90000,
                         .rflags = 0x2c3};
    cpu_set_regs(c, &r);
    struct x86_regs r2;
    cpu_get_regs(c, &r2);
    assert_memory_equal(&r, &r2, sizeof(r));
    struct x86_sregs s;
    cpu_get_sregs(c, &s);
    assert_int_equal(s.cr3, 0x1000);
    struct x86_sregs bad = s;
    bad.efer = 0; /* not long mode */
    assert_int_equal(cpu_set_sregs(c, &bad), -EINVAL);
    assert_int_equal(cpu_set_msr(c, 0xc0000082, 0xffffffff81000000ull), 0);
    uint64_t v;
    assert_int_equal(cpu_get_msr(c, 0xc0000082, &v), 0);
    assert_int_equal(v, 0xffffffff81000000ull);
    assert_int_not_equal(cpu_set_msr(c, 0xc0000082, 0x8000000000000000ull), 0); /* non-canonical */
    assert_int_not_equal(cpu_get_msr(c, 0x12345678, &v), 0); /* unknown: ops.msr absent */
    uint8_t fx[512] __attribute__((aligned(16)));
    cpu_get_fxsave(c, fx);
    assert_int_equal(fx[0] | fx[1] << 8, 0x37f);
    uint32_t mx = 0x1f80;
    memcpy(&mx, fx + 24, 4);
    assert_int_equal(mx, 0x1f80);
    mx = 0x40000; /* reserved MXCSR bit */
    memcpy(fx + 24, &mx, 4);
    assert_int_equal(cpu_set_fxsave(c, fx), -EINVAL);
    struct x86_cpuid_entry e[64];
    unsigned n;
    assert_int_equal(cpu_supported_cpuid(e, 2, &n), -E2BIG);
    assert_int_equal(cpu_supported_cpuid(e, 64, &n), 0);
    assert_true(n > 8);
    assert_int_equal(e[0].function, 0);
    assert_memory_equal(&e[0].ebx, "Auth", 4);
    assert_int_equal(cpu_set_cpuid(c, e, n), 0);
    h_free(&g.h);
}

/* Everything a VMM or a snapshot can read of a vCPU. */
struct visible {
    struct x86_regs regs;
    struct x86_sregs sregs;
    uint8_t fx[512];
    struct cpu_debugregs dr;
    struct cpu_events_state ev;
    uint64_t msr[64];
    struct cpu_stats stats;
};

static void read_visible(struct cpu *c, struct visible *v)
{
    memset(v, 0, sizeof(*v));
    cpu_get_regs(c, &v->regs);
    cpu_get_sregs(c, &v->sregs);
    cpu_get_fxsave(c, v->fx);
    cpu_get_debugregs(c, &v->dr);
    cpu_get_events_state(c, &v->ev);
    uint32_t idx[64];
    size_t n = cpu_msr_list(idx, 64);
    for (size_t k = 0; k < n; k++)
        if (idx[k] != 0x10) /* the TSC counts time since creation or reset */
            assert_int_equal(cpu_get_msr(c, idx[k], &v->msr[k]), 0);
    cpu_get_stats(c, &v->stats);
}

/* A vCPU that ran a guest and was reset reads back as a new one, and runs
 * the next guest to its pass (each guest leaves different state and code:
 * descriptors and MSRs, the FPU, translated blocks, 32-bit code, DR7). */
static void test_reset_is_power_on(void **state)
{
    (void)state;
    static const char *guests[] = {"sys_desc", "sys_fpu", "sys_jit", "sys_compat_legacy",
                                   "sys_guestdr", "sys_rep", "sys_paging", "sys_ring"};
    static struct sysguest g;
    guest_setup(&g, guests[0]);
    struct cpu_config cfg = {.mem = &g.h.gm};
    struct cpu *fresh = cpu_create(&cfg);
    assert_non_null(fresh);
    static struct visible a, b;
    read_visible(fresh, &b);
    for (unsigned k = 0; k < sizeof(guests) / sizeof(guests[0]); k++) {
        if (k) { /* the same RAM as guest_setup leaves it, the same vCPU */
            g.nout = g.nlog = 0;
            memset(g.h.ram, 0, RAM_SIZE);
            build_tables(&g.h);
            load_image(&g.h, guests[k]);
            enter_long_mode(&g.h);
        }
        struct cpu_exit ex;
        int reason = run(&g, &ex);
        if (reason != CPU_EXIT_HALT || rd32(&g, RESULT) != PASS_MAGIC)
            print_message("%s on a reset vCPU:\n", guests[k]);
        expect_pass(&g, reason, &ex);
        cpu_reset(g.h.cpu);
        read_visible(g.h.cpu, &a);
        a.stats.tlb_flushes = b.stats.tlb_flushes; /* counted from the reset, as from creation */
        if (memcmp(&a, &b, sizeof(a)))
            print_message("after %s: reset state differs from a new vCPU's\n", guests[k]);
        assert_memory_equal(&a.regs, &b.regs, sizeof(a.regs));
        assert_memory_equal(&a.sregs, &b.sregs, sizeof(a.sregs));
        assert_memory_equal(a.fx, b.fx, sizeof(a.fx));
        assert_memory_equal(&a.dr, &b.dr, sizeof(a.dr));
        assert_memory_equal(&a.ev, &b.ev, sizeof(a.ev));
        assert_memory_equal(a.msr, b.msr, sizeof(a.msr));
        assert_memory_equal(&a.stats, &b.stats, sizeof(a.stats));
    }
    cpu_destroy(fresh);
    h_free(&g.h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_page_crossing_slot),
        cmocka_unit_test(test_tlb_index_separates_neighbours),
        cmocka_unit_test(test_rings_iret_syscall),
        cmocka_unit_test(test_double_fault),
        cmocka_unit_test(test_triple_fault),
        cmocka_unit_test(test_rep_fault_resume),
        cmocka_unit_test(test_hlt_and_interrupts),
        cmocka_unit_test(test_self_modifying_code),
        cmocka_unit_test(test_translated_runs),
        cmocka_unit_test(test_chained_blocks),
        cmocka_unit_test(test_ud_and_exception_rip),
        cmocka_unit_test(test_descriptors_msrs_io),
        cmocka_unit_test(test_fpu_system_rules),
        cmocka_unit_test(test_mmio),
        cmocka_unit_test(test_compat_mode),
        cmocka_unit_test(test_compat_user_process),
        cmocka_unit_test(test_compat_legacy),
        cmocka_unit_test(test_guest_debug_registers),
        cmocka_unit_test(test_compat_mode_unsupported_is_an_error),
        cmocka_unit_test(test_compat_addr16),
        cmocka_unit_test(test_compat_limits),
        cmocka_unit_test(test_single_step_rep),
        cmocka_unit_test(test_fsgsbase),
        cmocka_unit_test(test_bmi),
        cmocka_unit_test(test_aes),
        cmocka_unit_test(test_kick_and_limit),
        cmocka_unit_test(test_limit_ends_a_long_rep),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_reset_is_power_on),
        cmocka_unit_test(test_no_writable_executable_memory),
    };
    return cmocka_run_group_tests_name("engine system tests", tests, NULL, NULL);
}
