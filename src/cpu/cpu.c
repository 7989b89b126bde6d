/* The vCPU object: creation, the run loop (events, interrupts, HLT, block
 * dispatch), state access and CPUID. */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "cpu/internal.h"

bool hx_need_flush(struct cpu *c);
int fpu_set_image(struct cpu *c, const uint8_t *image);
void hx_flush(struct cpu *c);

/* --- CPUID ------------------------------------------------------------------------ */
#define SIG_EAX 0x00060fb1u /* family 15, model 0x6b, stepping 1 (like QEMU's qemu64) */

static uint32_t str4(const char *s)
{
    return (uint32_t)(uint8_t)s[0] | (uint32_t)(uint8_t)s[1] << 8 |
           (uint32_t)(uint8_t)s[2] << 16 | (uint32_t)(uint8_t)s[3] << 24;
}

#define F1_EDX ((1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 8) | \
                (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) |          \
                (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26))
/* SSE3 SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT RDRAND HYPERVISOR */
#define F1_ECX ((1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 22) | \
                (1u << 23) | (1u << 30) | (1u << 31))
/* AMD mirror of the leaf-1 EDX bits, SYSCALL NX PDPE1GB RDTSCP LM */
/* leaf 7: FSGSBASE BMI1 BMI2 ADX CLFLUSHOPT */
#define F7_EBX ((1u << 0) | (1u << 3) | (1u << 8) | (1u << 19) | (1u << 23))
#define E1_EDX ((F1_EDX & 0x0183f3ffu & ~(1u << 19)) | (1u << 11) | (1u << 20) | (1u << 26) | \
                (1u << 27) | (1u << 29))
/* LAHF/SAHF, AltMovCr8, ABM (LZCNT), MisAlignSse */
#define E1_ECX ((1u << 0) | (1u << 4) | (1u << 5) | (1u << 7))

/* AES (leaf 1 ECX bit 25), PCLMULQDQ (bit 1) and SHA (leaf 7 EBX bit 29)
 * run on the host's own instructions, as SSE does (host stubs): offered
 * only where the host has them. */
static uint32_t f1_ecx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        c = 0;
    return F1_ECX | (c & ((1u << 1) | (1u << 25)));
}
static uint32_t f7_ebx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        b = 0;
    return F7_EBX | (b & (1u << 29));
}

static unsigned default_cpuid(struct x86_cpuid_entry *e, unsigned max)
{
    struct x86_cpuid_entry t[32];
    unsigned n = 0;
#define ADD(f, a, b, cc, d) t[n++] = (struct x86_cpuid_entry){.function = (f), .eax = (a), \
                                                               .ebx = (b), .ecx = (cc), .edx = (d)}
    ADD(0, 7, str4("Auth"), str4("cAMD"), str4("enti"));
    ADD(1, SIG_EAX, (8u << 8) | (1u << 16), f1_ecx(), F1_EDX);
    ADD(2, 0, 0, 0, 0);
    ADD(3, 0, 0, 0, 0);
    ADD(5, 0, 0, 0, 0);
    ADD(6, 0, 0, 0, 0);
    t[n++] = (struct x86_cpuid_entry){.function = 7, .index = 0, .flags = X86_CPUID_FLAG_INDEXED,
                                      .ebx = f7_ebx()};
    ADD(0x40000000, 0x40000010, str4("Embe"), str4("rSof"), str4("tCPU")); /* "EmberSoftCPU" */
    ADD(0x40000010, (uint32_t)(CPU_TSC_HZ / 1000), 0, 0, 0);
    ADD(0x80000000, 0x80000008, str4("Auth"), str4("cAMD"), str4("enti"));
    ADD(0x80000001, SIG_EAX, 0, E1_ECX, E1_EDX);
    ADD(0x80000002, str4("embe"), str4("r so"), str4("ft C"), str4("PU x"));
    ADD(0x80000003, str4("86-6"), str4("4 (i"), str4("nter"), str4("pret"));
    ADD(0x80000004, str4("er) "), 0, 0, 0);
    /* L1: 64 KiB 2-way D and I, 64-byte lines; L2 512 KiB 16-way */
    ADD(0x80000005, 0x01ff01ffu, 0x01ff01ffu, 0x40020140u, 0x40020140u);
    ADD(0x80000006, 0, 0x42004200u, 0x02008140u, 0);
    ADD(0x80000007, 0, 0, 0, 1u << 8); /* invariant TSC */
    ADD(0x80000008, 0x3028, 0, 0, 0); /* 40-bit physical, 48-bit virtual */
#undef ADD
    if (e) {
        for (unsigned k = 0; k < n && k < max; k++)
            e[k] = t[k];
    }
    return n;
}

int cpu_supported_cpuid(struct x86_cpuid_entry *entries, unsigned max, unsigned *count)
{
    unsigned n = default_cpuid(NULL, 0);
    *count = n;
    if (max < n)
        return -E2BIG;
    default_cpuid(entries, max);
    return 0;
}

static const struct x86_cpuid_entry *cpuid_lookup(const struct cpu *c, uint32_t f, uint32_t idx)
{
    for (unsigned k = 0; k < c->ncpuid; k++) {
        const struct x86_cpuid_entry *e = &c->cpuid[k];
        if (e->function == f && (!(e->flags & X86_CPUID_FLAG_INDEXED) || e->index == idx))
            return e;
    }
    return NULL;
}

void cpuid_cache_features(struct cpu *c)
{
    const struct x86_cpuid_entry *e = cpuid_lookup(c, 1, 0);
    c->feat1_ecx = e ? e->ecx : 0;
    c->feat1_edx = e ? e->edx : 0;
    e = cpuid_lookup(c, 7, 0);
    c->feat7_ebx = e ? e->ebx : 0;
    c->feat7_ecx = e ? e->ecx : 0;
    e = cpuid_lookup(c, 0x80000001, 0);
    c->ext1_ecx = e ? e->ecx : 0;
    c->ext1_edx = e ? e->edx : 0;
}

void cpuid_query(struct cpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4])
{
    const struct x86_cpuid_entry *e = cpuid_lookup(c, leaf, sub);
    if (!e) {
        /* out of range: AMD returns zeros */
        out[0] = out[1] = out[2] = out[3] = 0;
        return;
    }
    out[0] = e->eax;
    out[1] = e->ebx;
    out[2] = e->ecx;
    out[3] = e->edx;
    if (leaf == 1) {
        /* initial APIC ID */
        out[1] = (out[1] & 0x00ffffffu) | (c->vcpu_id << 24);
    }
}

int cpu_set_cpuid(struct cpu *c, const struct x86_cpuid_entry *entries, unsigned n)
{
    struct x86_cpuid_entry sup[32];
    unsigned ns = default_cpuid(sup, 32);
    struct x86_cpuid_entry *t = calloc(n ? n : 1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    memcpy(t, entries, n * sizeof(*t));
    /* clear feature bits the engine does not implement */
    for (unsigned k = 0; k < n; k++) {
        for (unsigned s = 0; s < ns; s++) {
            if (sup[s].function != t[k].function)
                continue;
            /* The VMM's: x2apic, tsc-deadline, apic (its interrupt
             * controller), and the bits that only describe the topology it
             * lays out: htt, cmp_legacy, topoext. */
            if (t[k].function == 1) {
                t[k].ecx &= f1_ecx() | (1u << 21) | (1u << 24);
                t[k].edx &= F1_EDX | (1u << 9) | (1u << 28);
            } else if (t[k].function == 0x80000001) {
                t[k].ecx &= E1_ECX | (1u << 1) | (1u << 22);
                t[k].edx &= E1_EDX | (1u << 9);
            }
        }
        if (t[k].function == 7 && t[k].index == 0) {
            t[k].ebx &= f7_ebx();
            t[k].ecx = 0;
            t[k].edx = 0;
        }
    }
    free(c->cpuid);
    c->cpuid = t;
    c->ncpuid = n;
    cpuid_cache_features(c);
    block_flush_all(c); /* handlers depend on the features */
    return 0;
}

/* --- creation ------------------------------------------------------------------------ */
static void reset_state(struct cpu *c)
{
    memset(c->r, 0, sizeof(c->r));
    c->rip = 0xfff0;
    rflags_set(c, 2);
    c->cr0 = CR0_ET | CR0_NW | CR0_CD;
    c->pat = 0x0007040600070406ull;
    c->dr6 = 0xffff0ff0;
    c->dr7 = 0x400;
    c->delivering = -1;
    c->tsc_aux = c->vcpu_id;
    fpu_reset(c);
    for (int k = 0; k < 6; k++)
        c->seg[k] = (struct x86_segment){.limit = 0xffff, .present = true, .s = true,
                                         .type = k == SEG_CS ? 0xb : 3};
    c->ldtr = (struct x86_segment){.limit = 0xffff, .present = true, .type = 2};
    c->tr = (struct x86_segment){.limit = 0xffff, .present = true, .type = 11};
    c->gdtr.limit = c->idtr.limit = 0xffff;
    seg_update_bases(c);
    cpu_set_cpl(c, 0);
}

/* What follows the allocations at creation, and a reset. */
static void power_on(struct cpu *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->clock_base_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    c->tlb_used = (1u << TLB_TABLES) - 1; /* the zeroed tables are not empty yet */
    tlb_flush_all(c, true);
    reset_state(c);
    c->stats.tlb_flushes = 0;
}

struct cpu *cpu_create(const struct cpu_config *cfg)
{
    if (!cfg || !cfg->mem)
        return NULL;
    struct cpu *c = mmap(NULL, sizeof(struct cpu), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return NULL;
    /* fresh anonymous pages are zero: the jump cache and the rest stay
     * unfaulted until used */
    c->mem = cfg->mem;
    c->ops = cfg->ops;
    c->flags = cfg->flags;
    c->jit_hot = cfg->jit_hot <= 65535 ? (uint16_t)cfg->jit_hot : 0;
    c->vcpu_id = cfg->vcpu_id;
    atomic_flag_clear(&c->dma_lock);
    for (unsigned k = 0; k < cfg->mem->nr_regions && k < GM_MAX_REGIONS; k++) {
        const struct gm_region *g = &cfg->mem->regions[k];
        struct ram_region *r = &c->ram[c->nram++];
        r->gpa = g->gpa;
        r->size = g->size & ~0xfffull;
        r->hva = g->hva;
        r->pages = calloc(r->size >> 12 ? r->size >> 12 : 1, sizeof(struct code_page));
        if (!r->pages)
            goto fail;
    }
    if (block_cache_init(c) || hx_init(c) || jit_init(c))
        goto fail;
    struct x86_cpuid_entry t[32];
    unsigned n = default_cpuid(t, 32);
    c->cpuid = calloc(n, sizeof(*t));
    if (!c->cpuid)
        goto fail;
    memcpy(c->cpuid, t, n * sizeof(*t));
    c->ncpuid = n;
    cpuid_cache_features(c);
    power_on(c);
    return c;
fail:
    cpu_destroy(c);
    return NULL;
}

/* The vCPU as cpu_create leaves it, on the allocations it already has (a
 * fuzzer's next input then costs no fresh pages). The CPUID table stays as
 * the VMM set it; other vCPUs' marks on shared code pages stay theirs. */
void cpu_reset(struct cpu *c)
{
    block_flush_all(c); /* unmarks this vCPU's code pages, telling the others */
    hx_flush(c);
    for (unsigned k = 0; k < c->nram; k++) {
        struct ram_region *r = &c->ram[k];
        for (size_t p = 0; p < r->size >> 12; p++)
            r->pages[p].nalias = 0; /* the TLB is emptied below */
    }
    /* the arenas keep their pages: populating them again costs a walk of
     * their page tables per reset */
    size_t arena_ready = c->arena_ready, jit_ready = c->jit_ready;
    memset(c, 0, offsetof(struct cpu, mem));
    c->arena_ready = arena_ready;
    c->jit_ready = jit_ready;
    jit_reset(c); /* past the arena's stubs */
    atomic_flag_clear(&c->dma_lock);
    power_on(c);
}

void cpu_destroy(struct cpu *c)
{
    if (!c)
        return;
    for (unsigned k = 0; k < c->nram; k++)
        free(c->ram[k].pages);
    block_cache_free(c);
    hx_free(c);
    jit_free(c);
    free(c->cpuid);
    munmap(c, sizeof(*c));
}

/* --- run loop ------------------------------------------------------------------------- */
void cpu_signal(struct cpu *c, unsigned bits)
{
    atomic_fetch_or(&c->events, bits);
}

void cpu_set_insn_limit(struct cpu *c, uint64_t count)
{
    c->insn_limit = count ? c->icount + count : 0;
}

static void fill_error(struct cpu *c, struct cpu_exit *ex)
{
    ex->reason = CPU_EXIT_ERROR;
    ex->rip = c->rip;
    ex->insn_len = 0;
    for (unsigned k = 0; k < 15; k++) {
        uint64_t pa;
        if (mmu_translate_exec(c, c->rip + k, &pa) != 0)
            break;
        uint8_t *p = phys_ram_ptr(c, pa, 1);
        if (!p)
            break;
        ex->insn[k] = *p;
        ex->insn_len = k + 1;
    }
    size_t l = strlen(ex->detail);
    snprintf(ex->detail + l, sizeof(ex->detail) - l, " [rip %#llx bytes",
             (unsigned long long)c->rip);
    for (unsigned k = 0; k < ex->insn_len; k++) {
        l = strlen(ex->detail);
        snprintf(ex->detail + l, sizeof(ex->detail) - l, " %02x", ex->insn[k]);
    }
    l = strlen(ex->detail);
    snprintf(ex->detail + l, sizeof(ex->detail) - l, "]");
}

/* Events at a block boundary. Returns an exit reason or 0. */
static int boundary(struct cpu *c)
{
    uint32_t ev = atomic_load_explicit(&c->events, memory_order_acquire);
    if (ev & CPU_EVENT_SMC) {
        atomic_fetch_and(&c->events, ~CPU_EVENT_SMC);
        smc_process_dma(c);
    }
    if (ev & CPU_EVENT_TLB_FLUSH) {
        atomic_fetch_and(&c->events, ~CPU_EVENT_TLB_FLUSH);
        tlb_flush_all(c, true);
        block_flush_all(c);
    }
    if (ev & CPU_EVENT_NMI) {
        atomic_fetch_and(&c->events, ~CPU_EVENT_NMI);
        c->nmi_pending = true;
    }
    c->link_slot = NULL; /* an event may change where execution goes */
    bool shadow = c->shadow;
    c->shadow = 0;
    if (shadow) {
        /* the instruction in the shadow runs alone, so that an interrupt
         * pending at STI is taken right after it (sti; nop; cli windows) */
        c->step_one = true;
    } else {
        if (c->nmi_pending && !c->nmi_masked) {
            c->nmi_pending = false;
            deliver_interrupt(c, EXC_NMI, true);
        } else if ((atomic_load(&c->events) & CPU_EVENT_INTERRUPT) && (c->rflags & F_IF)) {
            atomic_fetch_and(&c->events, ~CPU_EVENT_INTERRUPT);
            int v = c->ops.intr ? c->ops.intr(c->ops.ctx) : -1;
            if (v >= 0 && v < 256) {
                atomic_fetch_or(&c->events, CPU_EVENT_INTERRUPT);
                deliver_interrupt(c, v, false);
            }
        }
    }
    if (atomic_load(&c->events) & CPU_EVENT_KICK) {
        atomic_fetch_and(&c->events, ~CPU_EVENT_KICK);
        return CPU_EXIT_INTERRUPTED;
    }
    if (c->halted)
        return CPU_EXIT_HALT;
    return 0;
}

/* Run exactly one instruction, from a scratch copy of the block's first
 * record. */
void exec_one(struct cpu *c)
{
    struct block *b = block_find(c);
    struct {
        struct block hdr;
        struct insn recs[2];
    } one;
    one.hdr = *b;
    one.recs[0] = b->insns[0];
    if (b->fn0)
        one.recs[0].fn = b->fn0;
    if (one.recs[0].mf & MF_FUSED)
        one.recs[0].fn = fuse_plain(&one.recs[0]);
    memset(&one.recs[1], 0, sizeof(one.recs[1]));
    one.recs[1].fn = h_end;
    one.recs[1].off = b->insns[0].off + b->insns[0].len;
    c->cur_block = b;
    c->blk_va = b->va;
    c->blk_first = one.recs;
    c->limit_at = 0; /* no chaining */
    one.recs[0].fn(c, one.recs);
    c->cur_block = NULL;
    c->link_slot = NULL;
}

/* TF: one instruction, then #DB. */
static void single_step(struct cpu *c)
{
    exec_one(c);
    guest_db_after(c, 0x4000); /* BS */
}

void cpu_set_debug(struct cpu *c, const struct cpu_debug *dbg)
{
    c->dbg = *dbg;
    c->dbg_stepped = false;
    c->dbg_resumed = true;
    c->watch_hit = 0;
    /* TLB entries of watched pages carry TLBF_WATCH: refill them all */
    cpu_signal(c, CPU_EVENT_TLB_FLUSH);
}

static int debug_stop(struct cpu_exit *ex, uint64_t rip, uint64_t dr6)
{
    ex->reason = CPU_EXIT_DEBUG;
    ex->rip = rip;
    ex->vector = EXC_DB;
    ex->dr6 = dr6;
    return CPU_EXIT_DEBUG;
}

/* Under a debugger's step or instruction breakpoints: one instruction,
 * checked before it runs. Returns an exit reason or 0. */
static int debug_exec(struct cpu *c, struct cpu_exit *ex)
{
    if (c->dbg_stepped) {
        c->dbg_stepped = false;
        return debug_stop(ex, c->rip, 0x4000); /* BS */
    }
    if ((c->dbg.flags & CPU_DEBUG_HW_BP) && !c->dbg_resumed)
        for (unsigned n = 0; n < 4; n++)
            if (c->dbg.enabled[n] && c->dbg.watch[n] == CPU_WATCH_EXEC &&
                c->dbg.addr[n] == c->rip)
                return debug_stop(ex, c->rip, 1ull << n);
    c->dbg_resumed = false;
    if (c->dbg.flags & CPU_DEBUG_STEP)
        c->dbg_stepped = true;
    c->watch_hit = 0;
    exec_one(c);
    c->rflags &= ~(uint64_t)F_RF;
    if (unlikely(c->watch_hit)) { /* a trap: RIP is the next instruction's */
        uint64_t dr6 = c->watch_hit | (c->dbg_stepped ? 0x4000 : 0);
        c->watch_hit = 0;
        c->dbg_stepped = false;
        return debug_stop(ex, c->rip, dr6);
    }
    return 0;
}

int cpu_run(struct cpu *c, struct cpu_exit *ex)
{
    memset(ex, 0, sizeof(*ex));
    c->exit = ex;
    c->stop = 0;
    if (ENGINE_SETJMP(c->jb)) {
        c->cur_block = NULL;
        c->link_slot = NULL;
        if (c->stop) {
            int r = c->stop;
            c->stop = 0;
            c->delivering = -1;
            if (r == CPU_EXIT_DEBUG) {
                c->dbg_stepped = false;
                ex->reason = r;
                ex->rip = c->rip;
                return r;
            }
            fill_error(c, ex);
            return r;
        }
        int r = exc_deliver_pending(c);
        if (r) {
            if (r != CPU_EXIT_EXCEPTION)
                ex->reason = r;
            ex->rip = c->rip;
            return r;
        }
    }
    for (;;) {
        if (unlikely(atomic_load_explicit(&c->events, memory_order_relaxed) || c->halted ||
                     c->shadow || c->nmi_pending)) {
            int r = boundary(c);
            if (r) {
                ex->reason = r;
                ex->rip = c->rip;
                return r;
            }
        }
        if (unlikely(c->insn_limit && c->icount >= c->insn_limit)) {
            c->insn_limit = 0;
            ex->reason = CPU_EXIT_INTERRUPTED;
            ex->rip = c->rip;
            return CPU_EXIT_INTERRUPTED;
        }
        if (unlikely(hx_need_flush(c))) {
            block_flush_all(c);
            hx_flush(c);
        }
        if (unlikely(c->dbg.flags & (CPU_DEBUG_STEP | CPU_DEBUG_HW_BP))) {
            int r = debug_exec(c, ex);
            if (r)
                return r;
            continue;
        }
        c->dbg_resumed = false;
        if (unlikely(c->gbp_exec | c->gbp_data)) {
            guest_dr_exec(c);
            continue;
        }
        if (unlikely(c->rflags & F_TF)) {
            single_step(c);
            continue;
        }
        if (unlikely(c->step_one)) {
            c->step_one = false;
            exec_one(c);
            c->rflags &= ~(uint64_t)F_RF;
            continue;
        }
        struct block *b = block_find(c);
        c->stats.dispatches++;
        if (c->link_slot) {
            /* the previous block's direct exit leads here: link it (not a
             * block whose last instruction reaches into another page) */
            if (b->pa2 == ~0ull)
                *c->link_slot = b;
            c->link_slot = NULL;
        }
        c->cur_block = b;
        c->blk_va = b->va;
        c->blk_first = b->insns;
        c->limit_at = c->icount + CHAIN_SPAN;
        if (c->insn_limit && c->insn_limit < c->limit_at)
            c->limit_at = c->insn_limit;
        b->insns[0].fn(c, b->insns);
        c->cur_block = NULL;
        c->rflags &= ~(uint64_t)F_RF; /* an instruction completed */
    }
}

/* --- state ----------------------------------------------------------------------- */
void cpu_get_regs(struct cpu *c, struct x86_regs *r)
{
    r->rax = c->r[0]; r->rcx = c->r[1]; r->rdx = c->r[2]; r->rbx = c->r[3];
    r->rsp = c->r[4]; r->rbp = c->r[5]; r->rsi = c->r[6]; r->rdi = c->r[7];
    r->r8 = c->r[8]; r->r9 = c->r[9]; r->r10 = c->r[10]; r->r11 = c->r[11];
    r->r12 = c->r[12]; r->r13 = c->r[13]; r->r14 = c->r[14]; r->r15 = c->r[15];
    r->rip = c->rip;
    r->rflags = rflags_get(c);
}

void cpu_set_regs(struct cpu *c, const struct x86_regs *r)
{
    c->r[0] = r->rax; c->r[1] = r->rcx; c->r[2] = r->rdx; c->r[3] = r->rbx;
    c->r[4] = r->rsp; c->r[5] = r->rbp; c->r[6] = r->rsi; c->r[7] = r->rdi;
    c->r[8] = r->r8; c->r[9] = r->r9; c->r[10] = r->r10; c->r[11] = r->r11;
    c->r[12] = r->r12; c->r[13] = r->r13; c->r[14] = r->r14; c->r[15] = r->r15;
    c->rip = r->rip;
    rflags_set(c, r->rflags);
    mmu_update_mode(c);
}

void cpu_get_sregs(struct cpu *c, struct x86_sregs *s)
{
    s->es = c->seg[SEG_ES]; s->cs = c->seg[SEG_CS]; s->ss = c->seg[SEG_SS];
    s->ds = c->seg[SEG_DS]; s->fs = c->seg[SEG_FS]; s->gs = c->seg[SEG_GS];
    s->tr = c->tr;
    s->ldt = c->ldtr;
    s->gdt = c->gdtr;
    s->idt = c->idtr;
    s->cr0 = c->cr0; s->cr2 = c->cr2; s->cr3 = c->cr3; s->cr4 = c->cr4; s->cr8 = c->cr8;
    s->efer = c->efer;
    s->apic_base = c->apic_base;
}

int cpu_set_sregs(struct cpu *c, const struct x86_sregs *s)
{
    if (!(s->efer & EFER_LMA) || !(s->cr0 & CR0_PG) || !(s->cr0 & CR0_PE) ||
        !(s->cr4 & CR4_PAE) || !s->cs.l || (s->cr4 & ~(uint64_t)CR4_SUPPORTED))
        return -EINVAL;
    c->seg[SEG_ES] = s->es; c->seg[SEG_CS] = s->cs; c->seg[SEG_SS] = s->ss;
    c->seg[SEG_DS] = s->ds; c->seg[SEG_FS] = s->fs; c->seg[SEG_GS] = s->gs;
    c->tr = s->tr;
    c->ldtr = s->ldt;
    c->gdtr = s->gdt;
    c->idtr = s->idt;
    c->cr0 = s->cr0 | CR0_ET; c->cr2 = s->cr2; c->cr3 = s->cr3; c->cr4 = s->cr4;
    c->cr8 = s->cr8;
    c->efer = s->efer;
    c->apic_base = s->apic_base;
    seg_update_bases(c);
    cpu_set_cpl(c, s->cs.dpl);
    tlb_flush_all(c, true);
    return 0;
}

int cpu_get_msr(struct cpu *c, uint32_t index, uint64_t *value)
{
    return msr_read(c, index, value) ? -ENOENT : 0;
}

int cpu_set_msr(struct cpu *c, uint32_t index, uint64_t value)
{
    return msr_write(c, index, value) ? -EINVAL : 0;
}

size_t cpu_msr_list(uint32_t *idx, size_t max)
{
    static const uint32_t list[] = {
        0x10, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0x2ff, 0x200, 0x201, 0x202, 0x203, 0x204,
        0x205, 0x206, 0x207, 0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f, 0x250,
        0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f, 0xc0000080,
        0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102,
        0xc0000103, 0xc0010015, 0xc0010010, 0xc0011029,
    };
    size_t n = sizeof(list) / sizeof(list[0]);
    for (size_t k = 0; k < n && k < max; k++)
        idx[k] = list[k];
    return n;
}

void cpu_get_fxsave(struct cpu *c, uint8_t image[512])
{
    memcpy(image, c->fx, 512);
}

int cpu_set_fxsave(struct cpu *c, const uint8_t image[512])
{
    return fpu_set_image(c, image) ? -EINVAL : 0;
}

void cpu_get_debugregs(struct cpu *c, struct cpu_debugregs *d)
{
    memcpy(d->dr, c->dr, sizeof(d->dr));
    d->dr6 = c->dr6;
    d->dr7 = c->dr7;
}

void cpu_set_debugregs(struct cpu *c, const struct cpu_debugregs *d)
{
    memcpy(c->dr, d->dr, sizeof(c->dr));
    c->dr6 = d->dr6;
    c->dr7 = d->dr7;
    guest_dr_changed(c);
}

void cpu_get_events_state(struct cpu *c, struct cpu_events_state *ev)
{
    ev->halted = c->halted;
    ev->nmi_pending = c->nmi_pending;
    ev->nmi_masked = c->nmi_masked;
    ev->int_shadow = c->shadow;
}

void cpu_set_events_state(struct cpu *c, const struct cpu_events_state *ev)
{
    c->halted = ev->halted;
    c->nmi_pending = ev->nmi_pending;
    c->nmi_masked = ev->nmi_masked;
    c->shadow = ev->int_shadow;
}

void cpu_get_stats(struct cpu *c, struct cpu_stats *s)
{
    *s = c->stats;
    s->insns = c->icount;
}
