/* libFuzzer target: a hostile instruction stream on ember's CPU engine.
 *
 * The input is a guest: a mode byte, an interrupt vector, a state byte,
 * sixteen register values, 128 bytes of state, then code. The code goes at 0x100000 (the rest of its 8 KiB is
 * HLT) and again, repeated, over the data page at 0x180000 where memory
 * operands land when the mode byte asks for registers pointing there. The
 * guest runs at CPL0 or CPL3, in 64-bit or 32-bit (compatibility) code,
 * with its exceptions delivered through an IDT whose every gate leads to
 * the code at 0x100800 (from the input too) or returned to the harness,
 * optionally with an interrupt pending, for at most 5000 instructions.
 * Everything the guest can reach is its own: RAM (2 MiB, page tables, GDT,
 * IDT and TSS included) is writable from the guest, and the page tables
 * map 2-4 MiB, which is not RAM (MMIO).
 *
 * The engine must not crash, read or write outside the RAM it was given
 * (guard pages on both sides catch what ASan cannot see from translated
 * code) or trip a sanitizer. With mode bit 7 the guest runs twice, in the
 * interpreter and translated, and both must end in the same state:
 * registers, RIP, RFLAGS and RAM (unless the engine stopped with an
 * internal error, which says what it lacks); CPUID offers no RDRAND there,
 * the one source of values that differ between two runs.
 *
 * With state byte bit 0 the 128 bytes of state go in as a crafted snapshot
 * would put them, through the setters soft_state.c restores with: segment
 * attributes and selectors, FS/GS bases, RFLAGS, debug registers, the
 * engine's own MSRs, pending events, the FPU control words. A setter may
 * refuse (the restore then fails with an error); whatever it takes, the
 * engine must run without harm. With state byte bit 1 the translated run
 * takes a block only on its third entry, as the engine's default takes one
 * on its 32nd: a loop's first rounds run as records, the rest as host code.
 *
 *   make fuzz-targets && build/fuzz/fuzz_engine tests/fuzz/corpus/engine */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/cpu.h"
#include "engine/harness.h" /* h_desc, h_seg */
#include "mem/guest_mem.h"

#define RAM_SIZE 0x200000ull
#define PAGE 4096ull
#define PML4 0x1000ull
#define PDPT 0x2000ull
#define PD 0x3000ull
#define PT_RAM 0x4000ull  /* 0-2 MiB: RAM */
#define PT_MMIO 0x5000ull /* 2-4 MiB: beyond RAM */
#define GDT 0x9000ull
#define TSS 0x9100ull
#define IDT 0xa000ull
#define USTACK 0x60000ull
#define RSP0 0x80000ull
#define PROLOGUE 0xff000ull
#define CODE 0x100000ull
#define CODE_SIZE 0x2000ull
#define HANDLER (CODE + 0x800)
#define DATA 0x180000ull
#define MMIO_WINDOW 0x300000ull

#define SEL_KCS 0x08
#define SEL_KDS 0x10
#define SEL_UDS 0x1b
#define SEL_UCS 0x23
#define SEL_TSS 0x28
#define SEL_UCS32 0x43
#define SEL_KCS32 0x38

#define MODE_USER 0x01
#define MODE_32BIT 0x02
#define MODE_JIT 0x04
#define MODE_DELIVER 0x08
#define MODE_DATA_REGS 0x10
#define MODE_INTERRUPT 0x20
#define MODE_TSD_NOWP 0x40 /* CR4.TSD set, CR0.WP clear */
#define MODE_DIFF 0x80

/* state byte bit 1: the translator takes a block on its LAZY_JIT_HOT-th
 * entry (as the engine's default does on its 32nd), so a loop runs its
 * first rounds as records, then as host code, and the two must agree */
#define STATE_LAZY_JIT 0x02
#define LAZY_JIT_HOT 3

#define STATE_BYTES 128
#define HEADER (3 + 16 * 8 + STATE_BYTES)
#define INSN_LIMIT 5000

struct fuzz_guest {
    uint8_t *map; /* RAM with a guard page on each side */
    uint8_t *ram;
    struct guest_mem gm;
    uint8_t window[PAGE]; /* a device at MMIO_WINDOW */
    uint64_t clock;
    int vector;
};

static void put64(uint8_t *ram, uint64_t gpa, uint64_t v)
{
    memcpy(ram + gpa, &v, 8);
}

static void build_tables(uint8_t *ram)
{
    put64(ram, PML4, PDPT | 7);
    put64(ram, PDPT, PD | 7);
    put64(ram, PD, PT_RAM | 7);
    put64(ram, PD + 8, PT_MMIO | 7);
    for (uint64_t k = 0; k < 1024; k++)
        put64(ram, PT_RAM + 8 * k, k * PAGE | 7);
    uint64_t gdt[8] = {
        0,
        h_desc(0, 0xfffff, 0xa09b), /* 0x08 kernel code 64 */
        h_desc(0, 0xfffff, 0xc093), /* 0x10 kernel data */
        h_desc(0, 0xfffff, 0xc0f3), /* 0x18 user data */
        h_desc(0, 0xfffff, 0xa0fb), /* 0x20 user code 64 */
        h_desc(TSS, 0x67, 0x008b),  /* 0x28 TSS (busy) */
        0,                        /*      its upper half */
        h_desc(0, 0xfffff, 0xc09b), /* 0x38 kernel code 32 */
    };
    memcpy(ram + GDT, gdt, sizeof(gdt));
    put64(ram, GDT + 0x40, h_desc(0, 0xfffff, 0xc0fb)); /* 0x43 user code 32 */
    put64(ram, TSS + 4, RSP0);
    for (unsigned v = 0; v < 256; v++) {
        uint64_t lo = (HANDLER & 0xffff) | ((uint64_t)SEL_KCS << 16) | (0xeull << 40) |
                      (3ull << 45) | (1ull << 47) | ((HANDLER & 0xffff0000ull) << 32);
        put64(ram, IDT + 16 * v, lo);
        put64(ram, IDT + 16 * v + 8, HANDLER >> 32);
    }
}

static void pio(void *ctx, uint16_t port, void *data, unsigned len, bool is_write)
{
    (void)ctx;
    if (!is_write)
        memset(data, (uint8_t)port, len);
}

static bool mmio(void *ctx, uint64_t gpa, void *data, unsigned len, bool is_write)
{
    struct fuzz_guest *g = ctx;
    if (gpa < MMIO_WINDOW || gpa + len > MMIO_WINDOW + PAGE)
        return false;
    if (is_write)
        memcpy(g->window + (gpa - MMIO_WINDOW), data, len);
    else
        memcpy(data, g->window + (gpa - MMIO_WINDOW), len);
    return true;
}

static bool msr(void *ctx, uint32_t index, uint64_t *value, bool is_write)
{
    (void)ctx;
    if (index != 0x1b) /* the APIC base reads as the default; nothing else */
        return false;
    if (!is_write)
        *value = 0xfee00900ull;
    return true;
}

static int intr(void *ctx)
{
    struct fuzz_guest *g = ctx;
    int v = g->vector;
    g->vector = -1;
    return v;
}

static uint64_t clock_ns(void *ctx)
{
    struct fuzz_guest *g = ctx;
    return g->clock += 1000; /* the same time line in every run */
}

static int guest_init(struct fuzz_guest *g)
{
    g->map = mmap(NULL, RAM_SIZE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        return -1;
    g->ram = g->map + PAGE;
    if (mprotect(g->ram, RAM_SIZE, PROT_READ | PROT_WRITE))
        return -1;
    return gm_add_region(&g->gm, 0, RAM_SIZE, g->ram);
}

/* RAM as the input describes it, from zero. */
static void load_guest(struct fuzz_guest *g, const uint8_t *code, size_t n)
{
    memset(g->ram, 0, RAM_SIZE);
    memset(g->window, 0xa5, sizeof(g->window));
    build_tables(g->ram);
    memset(g->ram + CODE, 0xf4, CODE_SIZE);
    memcpy(g->ram + CODE, code, n < CODE_SIZE ? n : CODE_SIZE);
    for (uint64_t off = 0; n && off < PAGE; off += n)
        memcpy(g->ram + DATA + off, code, n < PAGE - off ? n : PAGE - off);
}

/* cpu_set_sregs takes 64-bit code only: a guest at CPL3 or in 32-bit code
 * starts in a prologue at CPL0 that IRETQs there (five pushes of
 * immediates, so the registers stay the input's). */
static uint64_t write_prologue(uint8_t *ram, uint16_t cs, uint16_t ss, uint64_t rsp)
{
    uint32_t frame[5] = {ss, (uint32_t)rsp, 0x202, cs, (uint32_t)CODE};
    uint8_t *p = ram + PROLOGUE;
    for (unsigned k = 0; k < 5; k++) {
        *p++ = 0x68; /* push imm32 */
        memcpy(p, &frame[k], 4);
        p += 4;
    }
    *p++ = 0x48; /* iretq */
    *p = 0xcf;
    return PROLOGUE;
}

static void set_state(struct cpu *cpu, uint8_t *ram, uint8_t mode, const uint8_t *regs_in)
{
    bool user = mode & MODE_USER, bits32 = mode & MODE_32BIT;
    struct x86_sregs s = {0};
    s.cs = h_seg(SEL_KCS, h_desc(0, 0xfffff, 0xa09b));
    s.ss = s.ds = s.es = h_seg(SEL_KDS, h_desc(0, 0xfffff, 0xc093));
    s.fs = s.gs = (struct x86_segment){.unusable = true};
    s.tr = h_seg(SEL_TSS, h_desc(TSS, 0x67, 0x008b));
    s.ldt = (struct x86_segment){.unusable = true};
    s.gdt = (struct x86_dtable){GDT, 0x47};
    s.idt = (struct x86_dtable){IDT, 4095};
    s.cr0 = mode & MODE_TSD_NOWP ? 0x80000033 : 0x80010033;
    s.cr3 = PML4;
    s.cr4 = mode & MODE_TSD_NOWP ? 0x6a4 : 0x6a0;
    s.efer = 0xd01;
    if (cpu_set_sregs(cpu, &s)) {
        fprintf(stderr, "the engine refused the harness's own state\n");
        abort();
    }
    uint64_t gpr[16];
    memcpy(gpr, regs_in, sizeof(gpr));
    for (unsigned k = 0; k < 16 && (mode & MODE_DATA_REGS); k++)
        gpr[k] = DATA + (gpr[k] & 0xfff);
    /* A REP with a random count runs until it leaves the 4 MiB mapped (one
     * instruction, ~10 ms): counts from the input stay small, code may
     * still load any. */
    gpr[2] &= 0x3ff; /* RCX */
    struct x86_regs r = {0};
    _Static_assert(offsetof(struct x86_regs, r15) == 15 * 8, "the GPRs come first, in order");
    memcpy(&r, gpr, sizeof(gpr));
    uint64_t rsp = user ? USTACK - (r.rsp & 0x7f8) : RSP0 - 0x1000 - (r.rsp & 0x7f8);
    r.rflags = 0x202;
    if (user || bits32) {
        uint16_t cs = user ? (bits32 ? SEL_UCS32 : SEL_UCS) : SEL_KCS32;
        r.rip = write_prologue(ram, cs, user ? SEL_UDS : SEL_KDS, rsp);
        r.rsp = RSP0;
    } else {
        r.rip = CODE;
        r.rsp = rsp;
    }
    cpu_set_regs(cpu, &r);
}

/* The state bytes as a crafted snapshot: false when a setter refuses. */
static bool apply_state(struct cpu *cpu, const uint8_t *st)
{
    struct x86_sregs s;
    cpu_get_sregs(cpu, &s);
    struct x86_segment *segs[6] = {&s.cs, &s.ss, &s.ds, &s.es, &s.fs, &s.gs};
    for (unsigned k = 0; k < 6; k++, st += 4) {
        uint16_t attr = (uint16_t)(st[0] | st[1] << 8);
        struct x86_segment *g = segs[k];
        g->type = attr & 15;
        g->s = attr >> 4 & 1;
        g->dpl = attr >> 5 & 3;
        g->present = attr >> 7 & 1;
        g->avl = attr >> 8 & 1;
        g->l = attr >> 9 & 1;
        g->db = attr >> 10 & 1;
        g->g = attr >> 11 & 1;
        g->unusable = attr >> 12 & 1;
        g->selector = (uint16_t)(st[2] | st[3] << 8);
    }
    memcpy(&s.fs.base, st, 8);
    memcpy(&s.gs.base, st + 8, 8);
    st += 16;
    if (cpu_set_sregs(cpu, &s))
        return false;
    struct x86_regs r;
    cpu_get_regs(cpu, &r);
    memcpy(&r.rflags, st, 8);
    cpu_set_regs(cpu, &r);
    st += 8;
    struct cpu_debugregs dr = {0};
    memcpy(dr.dr, st, 16); /* DR0, DR1 */
    memcpy(&dr.dr6, st + 16, 8);
    memcpy(&dr.dr7, st + 24, 8);
    cpu_set_debugregs(cpu, &dr);
    st += 32;
    uint32_t idx[64];
    size_t n = cpu_msr_list(idx, 64);
    for (size_t k = 0; k < n && k < 5; k++) {
        uint64_t v;
        memcpy(&v, st + 8 * k, 8);
        if (cpu_set_msr(cpu, idx[(st[40] + k) % n], v))
            return false;
    }
    st += 41;
    struct cpu_events_state ev = {
        .halted = st[0] & 1, .nmi_pending = st[0] >> 1 & 1, .nmi_masked = st[0] >> 2 & 1,
        .int_shadow = (uint8_t)(st[0] >> 3 & 3),
    };
    if (ev.int_shadow > 2) /* as soft_state.c refuses it */
        return false;
    cpu_set_events_state(cpu, &ev);
    uint8_t fx[512];
    cpu_get_fxsave(cpu, fx);
    memcpy(fx, st + 1, 2);      /* FCW */
    memcpy(fx + 24, st + 3, 4); /* MXCSR */
    return cpu_set_fxsave(cpu, fx) == 0;
}

/* One vCPU per configuration, reset for each input: creating one per input
 * spent most of the time faulting in its fresh pages. test_system's
 * test_reset_is_power_on holds that a reset vCPU is a new one. */
static struct cpu *vcpus[2][2][2][2]; /* [differential][jit][deliver][lazy] */

static void destroy_vcpus(void) /* before LeakSanitizer looks */
{
    for (unsigned k = 0; k < 16; k++)
        cpu_destroy(vcpus[k / 8][k / 4 % 2][k / 2 % 2][k % 2]);
}

/* The differential mode's vCPUs have no RDRAND: its values differ between
 * the two runs (a guest that wrote RDRAND ESP into its own code was the
 * campaign's one "difference" between interpreter and translator). */
static void hide_rdrand(struct cpu *cpu)
{
    struct x86_cpuid_entry e[64];
    unsigned n;
    if (cpu_supported_cpuid(e, 64, &n) || n > 64)
        abort();
    for (unsigned k = 0; k < n; k++)
        if (e[k].function == 1)
            e[k].ecx &= ~(1u << 30);
    if (cpu_set_cpuid(cpu, e, n))
        abort();
}

static struct cpu *vcpu_for(struct fuzz_guest *g, bool diff, bool jit, bool deliver, bool lazy)
{
    struct cpu **slot = &vcpus[diff][jit][deliver][lazy];
    static bool registered;
    if (!registered)
        registered = !atexit(destroy_vcpus);
    if (*slot) {
        cpu_reset(*slot);
        return *slot;
    }
    struct cpu_config cfg = {
        .mem = &g->gm,
        .ops = {.ctx = g, .pio = pio, .mmio = mmio, .msr = msr, .intr = intr, .clock_ns = clock_ns},
        .flags = (jit ? CPU_CFG_JIT : CPU_CFG_NO_JIT) | (deliver ? 0 : CPU_CFG_EXIT_ON_EXCEPTION),
        .jit_hot = lazy ? LAZY_JIT_HOT : 0,
    };
    *slot = cpu_create(&cfg);
    if (!*slot) {
        fprintf(stderr, "cpu_create failed\n");
        abort();
    }
    if (diff)
        hide_rdrand(*slot);
    return *slot;
}

struct outcome {
    int reason;
    struct x86_regs regs;
};

static struct outcome run_guest(struct fuzz_guest *g, const uint8_t *in, size_t n, bool jit)
{
    uint8_t mode = in[0];
    load_guest(g, in + HEADER, n - HEADER);
    g->clock = 0;
    g->vector = mode & MODE_INTERRUPT ? in[1] : -1;
    struct cpu *cpu = vcpu_for(g, mode & MODE_DIFF, jit, mode & MODE_DELIVER,
                               jit && (in[2] & STATE_LAZY_JIT));
    set_state(cpu, g->ram, mode, in + 3);
    if ((in[2] & 1) && !apply_state(cpu, in + 3 + 16 * 8))
        return (struct outcome){.reason = CPU_EXIT_ERROR};
    if (g->vector >= 0)
        cpu_signal(cpu, CPU_EVENT_INTERRUPT);
    cpu_set_insn_limit(cpu, INSN_LIMIT);
    struct cpu_exit ex;
    struct outcome o = {.reason = cpu_run(cpu, &ex)};
    cpu_get_regs(cpu, &o.regs);
    if (getenv("FUZZ_VERBOSE")) {
        struct cpu_stats st;
        cpu_get_stats(cpu, &st);
        fprintf(stderr, "%s: %llu instructions, %llu MMIO, %llu port accesses, %llu blocks\n",
                jit ? "translated" : "interpreted", (unsigned long long)st.insns,
                (unsigned long long)st.mmio, (unsigned long long)st.pio,
                (unsigned long long)st.blocks_built);
    }
    return o;
}

/* The interpreter's end state and the translator's must agree. */
static void compare(struct fuzz_guest *g, const uint8_t *in, size_t n)
{
    static uint8_t ram_interp[RAM_SIZE];
    struct outcome a = run_guest(g, in, n, false);
    memcpy(ram_interp, g->ram, RAM_SIZE);
    struct outcome b = run_guest(g, in, n, true);
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "mode %#x state %u: exits %d/%d at rip %#llx/%#llx\n", in[0], in[2] & 1,
                a.reason, b.reason, (unsigned long long)a.regs.rip,
                (unsigned long long)b.regs.rip);
    if (a.reason == CPU_EXIT_ERROR || b.reason == CPU_EXIT_ERROR)
        return;
    if (a.reason != b.reason || memcmp(&a.regs, &b.regs, sizeof(a.regs)) ||
        memcmp(ram_interp, g->ram, RAM_SIZE)) {
        fprintf(stderr, "interpreter and translator differ: exit %d/%d rip %#llx/%#llx\n",
                a.reason, b.reason, (unsigned long long)a.regs.rip,
                (unsigned long long)b.regs.rip);
        static const char *const names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                                            "rsp", "rbp", "r8", "r9", "r10", "r11", "r12",
                                            "r13", "r14", "r15", "rip", "rflags"};
        _Static_assert(sizeof(names) / sizeof(names[0]) * 8 == sizeof(a.regs), "every register");
        uint64_t ra[18], rb[18];
        memcpy(ra, &a.regs, sizeof(ra));
        memcpy(rb, &b.regs, sizeof(rb));
        for (unsigned k = 0; k < 18; k++)
            if (ra[k] != rb[k])
                fprintf(stderr, "%s: interpreted %#llx, translated %#llx\n", names[k],
                        (unsigned long long)ra[k], (unsigned long long)rb[k]);
        for (uint64_t k = 0; k < RAM_SIZE; k++)
            if (ram_interp[k] != g->ram[k]) {
                fprintf(stderr, "first RAM difference at %#llx\n", (unsigned long long)k);
                break;
            }
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_guest g;
    if (!g.map && guest_init(&g)) {
        fprintf(stderr, "no memory for the guest\n");
        abort();
    }
    if (size < HEADER + 1)
        return 0;
    if (data[0] & MODE_DIFF) {
        compare(&g, data, size);
        return 0;
    }
    struct outcome o = run_guest(&g, data, size, data[0] & MODE_JIT);
    if (getenv("FUZZ_VERBOSE")) /* what a seed reached */
        fprintf(stderr, "mode %#x state %u: exit %d at rip %#llx\n", data[0], data[2] & 1,
                o.reason, (unsigned long long)o.regs.rip);
    return 0;
}
