/* Engine internals shared by the src/cpu sources. Not an interface for the VMM. */
#ifndef EMBER_CPU_INTERNAL_H
#define EMBER_CPU_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu.h"
#include "util/util.h"

/* A fault inside a handler unwinds to cpu_run. gcc's __builtin_setjmp is
 * the cheap way: gcc reloads every value cpu_run keeps from its frame at
 * the landing. clang's keeps values in callee-saved registers across it,
 * which the handlers in between changed (seen in the fuzzer's clang build):
 * there libc's _setjmp, which restores them. */
#ifdef __clang__
#include <setjmp.h>
typedef jmp_buf engine_jmp_buf;
#define ENGINE_SETJMP(b) _setjmp(b)
#define ENGINE_LONGJMP(b) _longjmp(b, 1)
#else
typedef void *engine_jmp_buf[5];
#define ENGINE_SETJMP(b) __builtin_setjmp(b)
#define ENGINE_LONGJMP(b) __builtin_longjmp(b, 1)
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE __attribute__((noinline))
#define COLD __attribute__((cold, noinline))
#define NORETURN __attribute__((noreturn))

struct cpu;
struct insn;
typedef void (*insn_fn)(struct cpu *c, const struct insn *i);

/* A predecoded instruction (32 bytes). */
struct insn {
    insn_fn fn;
    uint64_t imm;    /* immediate (sign-extended), branch target, or aux data */
    union {
        int64_t disp;       /* displacement; absolute address when RIP-relative */
        struct block *link; /* Jcc: the block its taken branch last entered in
                               the same page (a chain slot of its own) */
    };
    uint16_t off;    /* offset of the first byte from the block's start VA */
    uint8_t len;     /* instruction length */
    uint8_t reg;     /* ModRM.reg operand: register index, or byte offset into
                        r[] for 8-bit operands */
    uint8_t base;    /* base register (NOREG none), or the r/m register */
    uint8_t index;   /* index register (NOREG none) */
    uint8_t mf;      /* memory form: MF_* */
    uint8_t aux;     /* per-handler: condition, sub-op, operand size ... */
};
_Static_assert(sizeof(struct insn) == 32, "insn record is 32 bytes");

#define NOREG 16
#define MF_SCALE 3u       /* bits 0-1: index shift */
#define MF_SEG_SHIFT 2    /* bits 2-4: segment (SEG_*) */
#define MF_ADDR32 0x80u   /* 0x67: address truncated to 32 bits */
#define MF_FUSED 0x20u    /* runs with the next record (fuse.c) */
#define MF_ADDR16 0x40u   /* 0x67 in 32-bit code: cut to 16 bits (MF_ADDR32 set too) */
#define MF_REGFORM 0x40u  /* system instructions: the r/m operand is a register
                             (MF_ADDR32 clear; with it the bit is MF_ADDR16) */

enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_NONE };

/* RFLAGS */
#define F_CF 0x1u
#define F_PF 0x4u
#define F_AF 0x10u
#define F_ZF 0x40u
#define F_SF 0x80u
#define F_TF 0x100u
#define F_IF 0x200u
#define F_DF 0x400u
#define F_OF 0x800u
#define F_IOPL 0x3000u
#define F_NT 0x4000u
#define F_RF 0x10000u
#define F_VM 0x20000u
#define F_AC 0x40000u
#define F_VIF 0x80000u
#define F_VIP 0x100000u
#define F_ID 0x200000u
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

/* Lazy flags: cc_op = kind << 2 | log2(size in bytes). */
enum {
    CC_EAGER = 0, /* cc_aux holds the arithmetic flags */
    CC_ADD = 1,
    CC_ADC,       /* cc_aux = carry in */
    CC_SUB,
    CC_SBB,       /* cc_aux = carry in */
    CC_LOGIC,
    CC_INC,       /* cc_aux = old CF */
    CC_DEC,       /* cc_aux = old CF */
    CC_SHL,       /* cc_a = operand, cc_b = count (1..size-1) */
    CC_SHR,
    CC_SAR,
    CC_CFOF,      /* the flags of cc2_* with CF and OF replaced by cc_res's:
                     rotates, and multiplies where this host leaves
                     SF/ZF/AF/PF unchanged (mulshift.c) */
};

/* Control registers and EFER */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_PG (1ull << 31)
#define CR4_VME (1ull << 0)
#define CR4_PVI (1ull << 1)
#define CR4_TSD (1ull << 2)
#define CR4_DE (1ull << 3)
#define CR4_PSE (1ull << 4)
#define CR4_PAE (1ull << 5)
#define CR4_MCE (1ull << 6)
#define CR4_PGE (1ull << 7)
#define CR4_PCE (1ull << 8)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_UMIP (1ull << 11)
#define CR4_FSGSBASE (1ull << 16)
#define CR4_SUPPORTED (CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE | \
                       CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define EFER_SVME (1ull << 12)
#define EFER_FFXSR (1ull << 14)

/* Exceptions */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6,
    EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13,
    EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};
#define NO_ERR (-1)

/* Page-fault error code */
#define PFE_P 1u
#define PFE_W 2u
#define PFE_U 4u
#define PFE_RSVD 8u
#define PFE_ID 16u

/* --- soft TLB ----------------------------------------------------------------- */
/* 2048 entries: with 1024, a dd bs=1 guest's user buffer or stack page
 * shared a slot with a page of the kernel's system-call path in one boot
 * in three or four (user addresses are random), and the two swapped
 * through the victim set on every pass: 25-35% slower. */
#define TLB_BITS 11
#define TLB_SIZE (1u << TLB_BITS)
/* The index is the page number's low bits, as translated code computes
 * it in three host instructions (emit_tlb_entry), on the dependency chain
 * of every guest load whose address comes from the one before. (It had
 * folded in bits 22 and up, so that streams 4 MiB apart would not
 * collide; the victim entries take such conflicts, and the fold cost gzip
 * 5-8%: the chain of a hash-chain walk is load → index → load.) The fast
 * paths find an access that crosses into the next page by its last
 * byte's page missing the first page's slot, which holds only if
 * consecutive pages never share a slot, as here. */
#define TLB_INDEX(va) ((unsigned)((va) >> 12) & (TLB_SIZE - 1))
#define TLB_INVALID (~0ull)
#define VTLB_SIZE 8
/* Low bits of a tag force the slow path. */
#define TLBF_MMIO 1ull
#define TLBF_CODE 2ull   /* tag_w: the page holds decoded code */
#define TLBF_WATCH 4ull  /* a debugger watches data in the page: slow paths check */
#define TLBF_MASK 0xfffull

struct tlbe {
    uint64_t tag_r, tag_w, tag_x;
    uintptr_t addend; /* host address = va + addend (RAM pages) */
};

struct tlbx {         /* parallel to struct tlbe */
    uint64_t pa;      /* guest-physical page */
    uint8_t global, large;
};

enum { MMU_SUP, MMU_USER, MMU_NOFAST, MMU_MODES };
/* Instruction fetches look in tables of their own, as a CPU's instruction
 * TLB: with one table, a loop whose code and data pages share an index
 * (kernel text and the direct map, 4 MiB apart in page numbers) swapped
 * the two through the victim set on every pass, 6 M swaps in a dd bs=1
 * run. Table ITLB_TABLE(m) holds mode m's executable pages; its entries
 * carry tag_x and tag_r (for instruction bytes read through read_page),
 * never tag_w. */
#define ITLB_TABLE(m) (MMU_MODES + (m))
#define TLB_TABLES (2 * MMU_MODES)

/* Access kinds for the slow paths */
#define ACC_R 0u
#define ACC_W 1u
#define ACC_X 2u
#define ACC_KIND 3u
#define ACC_SUP 4u    /* implicit supervisor access (descriptor tables, TSS) */
#define ACC_SS 8u     /* stack segment: #SS instead of #GP */
#define ACC_NOAC 16u  /* no alignment check */

/* --- blocks ------------------------------------------------------------------- */
#define BLOCK_MAX_INSNS 64
#define JC_SIZE 16384      /* 128 KiB of pointers per vCPU */

struct block {
    uint64_t va, pa;      /* start */
    uint64_t pa2;         /* second page when the last instruction straddles; ~0 none */
    uint32_t mode;
    uint16_t ninsn;       /* records excluding the end record */
    uint16_t nbytes;
    bool valid;
    uintptr_t hptr;       /* host address of the first byte; 1 when the block
                             straddles two pages (only the run loop enters it) */
    struct block *hnext;  /* hash chain */
    struct block *pnext[2]; /* per-page lists (page of va, page of pa2) */
    struct block *chain[2]; /* direct successors in the same page: [0] jump /
                               fall-through end, [1] the last Jcc not taken
                               (a taken Jcc: its record's link) */
    insn_fn fn0;          /* the interpreter's handler of insns[0] when the
                             translator or the run counter replaced it (a
                             lone step runs that) */
    void *host_entry;     /* ... and where host code enters its host code from
                             another block's (jit_internal.h: rc_slot_host) */
    void *linked[2];      /* where a direct jump from another block's host code
                             enters it: [0] from a clean run, [1] a dirty one */
    uint8_t *incoming[4]; /* such jumps' rel32 (writable view), to undo */
    uint8_t nincoming;    /* ... how many (at most 4) */
    uint8_t next_out;     /* ... the one a fifth replaces */
    uint16_t runs;        /* entries counted before it is translated */
    struct insn insns[];
};

#define CP_ALIASES 4
struct code_page {        /* per guest-physical RAM page */
    _Atomic uint32_t map; /* one bit per 128-byte chunk holding decoded code */
    uint8_t nalias;       /* TLB entries that may map this page; > CP_ALIASES: unknown */
    uint8_t foreign;      /* other vCPUs with decoded code here (cpu_foreign_code) */
    uint16_t alias[CP_ALIASES]; /* mode << 12 | TLB index */
    struct block *blocks;
};

struct ram_region {
    uint64_t gpa, size;
    uint8_t *hva;
    struct code_page *pages;
};

/* --- host-exec stubs (x87/SSE) --------------------------------------------- */
struct hx_stub;

/* --- the vCPU -------------------------------------------------------------- */
struct cpu {
    /* hot: handlers touch these */
    uint64_t r[17];             /* GPRs, r[16] == 0 */
    uint64_t segbase[8];        /* effective addressing base by SEG_* */
    struct tlbe *tlb;           /* table of the current MMU mode */
    struct tlbe *itlb;          /* its instruction table */
    uint64_t blk_va;            /* start VA of the executing block */
    const struct insn *blk_first;
    uint64_t cc_res, cc_a, cc_b;
    uint32_t cc_op, cc_aux;
    uint64_t cc2_res, cc2_a, cc2_b; /* the state CC_CFOF builds on (never CC_CFOF) */
    uint32_t cc2_op, cc2_aux;
    uint64_t rflags;            /* non-arithmetic bits; bit 1 set */
    uint64_t rip;
    uint64_t icount;
    _Atomic uint32_t events;
    uint8_t cpl;
    uint8_t mmu_idx;
    uint8_t shadow;             /* interrupt shadow for the next instruction */
    bool step_one;              /* run the next instruction alone */
    bool halted;

    struct block *cur_block;
    /* a store rewrote the block it ran in: the next block built is one
     * instruction long, since code that rewrites itself as it runs would
     * otherwise have the rest of its block decoded again after each store */
    bool smc_short;
    struct block **link_slot;   /* chain slot to fill with the next block found */
    uint64_t limit_at;          /* icount to stop at (~0: none) */

    /* architectural state */
    struct x86_segment seg[6], ldtr, tr;
    struct x86_dtable gdtr, idtr;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer;
    uint64_t dr[4], dr6, dr7;
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base, tsc_aux;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, mtrr_def, mtrr_var[16], mtrr_fixed[11];
    uint64_t misc_enable, tsc_offset, tsc_adjust, apic_base;
    uint64_t hwcr, syscfg, de_cfg;  /* AMD MSRs Linux reads (storage only) */
    bool nmi_pending, nmi_masked;

    /* x87/MMX/SSE state: FXSAVE64 image */
    uint8_t fx[512] __attribute__((aligned(64)));
    uint8_t fx_tmp[512] __attribute__((aligned(64)));
    uint8_t fx_tmp2[512] __attribute__((aligned(64)));

    /* exception in flight */
    int exc_vec;
    int exc_err;
    int exc_soft;               /* 0 hw, 1 INT n, 2 INT3/INTO, 3 INT1 */
    uint64_t exc_fault_rip;     /* INT n & co: the instruction, for faults */
    int delivering;             /* vector being delivered or -1 */
    int stop;                   /* exit reason set inside a handler, 0 none */
    engine_jmp_buf jb;          /* cpu_run's, for unwinding a fault */
    struct cpu_exit *exit;

    uint64_t insn_limit;        /* absolute icount at which to stop; 0 none */

    /* a debugger's requests (cpu_set_debug) */
    struct cpu_debug dbg;
    bool dbg_stepped;           /* the step's instruction has run: stop */
    uint8_t watch_hit;          /* DR6 B0-B3 of the watchpoints the instruction hit */
    bool dbg_resumed;           /* no breakpoint check at the first instruction */
    /* the guest's own breakpoints (guestdbg.c): from DR7, as bit masks of DR0-DR3 */
    uint8_t gbp_exec, gbp_data; /* enabled instruction / data (write, read-write) ones */
    uint8_t gwatch_hit;         /* data breakpoints the instruction hit */
    uint32_t db_held;           /* DR6 bits of a #DB trap a MOV SS/POP SS holds over
                                   the next instruction (guestdbg.c) */

    /* soft TLB: direct-mapped, plus a small fully associative victim set
     * that catches conflict misses */
    struct tlbe tlbs[TLB_TABLES][TLB_SIZE];
    struct tlbx tlbxs[TLB_TABLES][TLB_SIZE];
    struct tlbe vtlb[TLB_TABLES][VTLB_SIZE];
    struct tlbx vtlbx[TLB_TABLES][VTLB_SIZE];
    unsigned vnext[TLB_TABLES];
    uint8_t tlb_used;            /* bit per table: it or its victims may hold
                                    entries (a flush skips the other tables) */
    uint64_t large_lo, large_hi; /* VA range covered by large-page entries */

    /* block cache */
    size_t arena_used;
    size_t arena_ready;          /* bytes of the arena populated (arena_populate) */
    struct block *jc[JC_SIZE];
    uint32_t exec_mode;          /* cpu_mode32() of the blocks jc[] and chains hold */
    uint8_t seg_limited;         /* 32-bit code: segments (bit per SEG_*) whose limit
                                    leaves out some offsets (seg_update_bases) */
    uint32_t seg_lo[6], seg_hi[6]; /* ... the offsets each allows */
    bool unsupported_said;       /* warn_unsupported() spoke */

    /* device writes from other threads */
    atomic_flag dma_lock;
    unsigned ndma;
    bool dma_overflow;
    struct { uint64_t gpa, len; } dma[32];

    size_t hx_used;             /* host-exec stubs */
    size_t jit_used;            /* translator */
    size_t jit_ready;           /* bytes of its arena populated */
    uint64_t jit_callee_saved[5]; /* rbx, r12..r15 while a run caches guest registers there */

    struct cpu_stats stats;
    uint64_t clock_base_ns;

    /* What the vCPU was given or allocated at creation: cpu_reset keeps
     * everything from 'mem' on and clears everything before it. */
    const struct guest_mem *mem;
    struct cpu_ops ops;
    unsigned flags;
    unsigned vcpu_id;
    struct ram_region ram[GM_MAX_REGIONS];
    unsigned nram;
    struct x86_cpuid_entry *cpuid;  /* as the VMM set it */
    unsigned ncpuid;
    uint32_t feat1_ecx, feat1_edx, feat7_ebx, feat7_ecx, ext1_ecx, ext1_edx;
    uint8_t *arena;             /* block cache */
    size_t arena_size;
    struct block **hash;
    unsigned hash_mask;
    uint8_t *hx_code;           /* host-exec stubs, their writable view */
    uint8_t *hx_exec;           /* ... and their executable one */
    size_t hx_size;
    struct hx_stub **hx_hash;
    unsigned hx_mask;
    uint8_t fx_host[512] __attribute__((aligned(64))); /* the stubs' clean host image */
    uint32_t host_mxcsr;
    uint8_t *jit_rw, *jit_rx;   /* translator (jit.c): one arena, a read-write and a read-execute view */
    size_t jit_size;
    bool jit_count;             /* host code counts what it runs (stats.jit_executed) */
    uint16_t jit_hot;           /* a block is translated on its jit_hot-th entry */
};

#define CPU_EVENT_SMC 0x100u     /* internal: device writes to code pending */
#define CPU_EVENT_ANY_EXTERNAL (CPU_EVENT_INTERRUPT | CPU_EVENT_NMI | CPU_EVENT_KICK)

/* --- small helpers ------------------------------------------------------------ */
#define R(n) (c->r[(n)])
#define R8(off) (*((uint8_t *)c->r + (off)))
static inline void set16(uint64_t *r, uint64_t v)
{
    *r = (*r & ~0xffffull) | (v & 0xffff);
}
#define SET16(n, v) set16(&c->r[(n)], (v))

#define NEXT return (i + 1)->fn(c, i + 1)
#define HANDLER(name) void name(struct cpu *c, const struct insn *i)

static inline bool canonical(uint64_t va)
{
    return (uint64_t)((int64_t)(va << 16) >> 16) == va;
}

static inline uint64_t next_rip(const struct cpu *c, const struct insn *i)
{
    return c->blk_va + i->off + i->len;
}

static inline uint64_t insn_rip(const struct cpu *c, const struct insn *i)
{
    return c->blk_va + i->off;
}

/* End the block after this instruction retired, continuing at 'rip'. */
/* 1 while the CPU runs 32-bit code: compatibility mode (EFER.LMA, CS.L=0),
 * or protected mode outside long mode (where CS.L means nothing). */
static inline uint32_t cpu_mode32(const struct cpu *c)
{
    return !(c->seg[SEG_CS].l && (c->efer & EFER_LMA));
}

static inline void retire_to(struct cpu *c, const struct insn *i, uint64_t rip)
{
    c->rip = rip;
    c->icount += (uint64_t)(i - c->blk_first) + 1;
}

static inline struct tlbe *tlb_entry(const struct cpu *c, uint64_t va)
{
    return &c->tlb[TLB_INDEX(va)];
}

static inline struct tlbe *itlb_entry(const struct cpu *c, uint64_t va)
{
    return &c->itlb[TLB_INDEX(va)];
}

static inline unsigned jc_index(uint64_t va)
{
    return (unsigned)(va ^ (va >> 12)) & (JC_SIZE - 1);
}

/* May the executing block continue straight into its successor? Not when
 * an event needs the run loop (an interrupt only counts while IF=1: every
 * instruction that sets IF ends its block and returns there), nor at or
 * past 'limit_at': the instruction limit, at most CHAIN_SPAN instructions
 * after the loop last ran (which bounds the stack if a build does not turn
 * tail calls into jumps, -O0/-O1), or 0 while a lone instruction runs. */
#define CHAIN_SPAN 4096
static inline bool chain_ok(struct cpu *c)
{
    uint32_t ev = atomic_load_explicit(&c->events, memory_order_relaxed);
    if (unlikely(ev) && ((c->rflags & F_IF) || (ev & ~(uint32_t)CPU_EVENT_INTERRUPT)))
        return false;
    return c->icount < c->limit_at;
}

/* The block at 't' if it can be entered without the run loop: through the
 * direct-successor slot 'slot' (a chain[] entry of the executing block or a
 * Jcc record's link; NULL none) when the target is in the same page,
 * otherwise through the jump cache, valid only if the current mode's TLB
 * maps 't' executable to the very host page the block was built from.
 * Retires 'i' first. */
static inline __attribute__((always_inline)) struct block *
chain_next_slot(struct cpu *c, const struct insn *i, uint64_t t, struct block **slot)
{
    retire_to(c, i, t);
    struct block *b = c->cur_block, *n;
    if (unlikely(!chain_ok(c)))
        return NULL;
    if (slot && (n = *slot) && n->va == t && n->valid)
        goto enter;
    struct tlbe *e = itlb_entry(c, t);
    if (unlikely(e->tag_x != (t & ~TLBF_MASK)))
        goto miss;
    n = c->jc[jc_index(t)];
    if (unlikely(!n || n->va != t || n->hptr != t + e->addend || !n->valid))
        goto miss;
    if (slot && !((t ^ b->va) & ~0xfffull))
        *slot = n;
enter:
    c->stats.chained++;
    c->cur_block = n;
    c->blk_va = t;
    c->blk_first = n->insns;
    if (unlikely(c->rflags & F_RF))
        c->rflags &= ~(uint64_t)F_RF;
    return n;
miss:
    if (slot && !((t ^ b->va) & ~0xfffull))
        c->link_slot = slot;
    return NULL;
}

/* The same through the executing block's chain[slot] (0/1; -1 none). */
static inline __attribute__((always_inline)) struct block *
chain_next(struct cpu *c, const struct insn *i, uint64_t t, int slot)
{
    return chain_next_slot(c, i, t, slot >= 0 ? &c->cur_block->chain[slot] : NULL);
}

/* A Jcc's two ways out. Blocks go on past a Jcc: not taken, the next record
 * runs straight away unless the Jcc ends the block (its next record is the
 * end record); taken, the branch chains through the Jcc record's own link. */
HANDLER(h_end);
#define JCC_TAKEN(j)                                                                       \
    do {                                                                                   \
        struct block *n_ = chain_next_slot(c, (j), (j)->imm, &((struct insn *)(j))->link); \
        if (n_)                                                                            \
            return n_->insns[0].fn(c, n_->insns);                                          \
        return;                                                                            \
    } while (0)
#define JCC_NOT_TAKEN(j)                                                                   \
    do {                                                                                   \
        if ((j)[1].fn != h_end)                                                            \
            return (j)[1].fn(c, (j) + 1);                                                  \
        struct block *n_ = chain_next(c, (j), next_rip(c, (j)), 1);                        \
        if (n_)                                                                            \
            return n_->insns[0].fn(c, n_->insns);                                          \
        return;                                                                            \
    } while (0)

/* End a handler with a transfer to 't': 'JUMP(t, slot); return;' */
#define JUMP(target, slot)                                                                   do {                                                                                         struct block *n_ = chain_next(c, i, (target), (slot));                                   if (n_)                                                                                      return n_->insns[0].fn(c, n_->insns);                                            } while (0)
#define CHAIN(target, slot) JUMP(target, slot)

/* End the block before this instruction (it did not retire). */
static inline void stop_before(struct cpu *c, const struct insn *i)
{
    c->rip = insn_rip(c, i);
    c->icount += (uint64_t)(i - c->blk_first);
}

/* Linear address of offset 'a' (already cut to 32 bits with 'a32') in
 * segment 'seg'. In 32-bit code (compatibility mode) it wraps at 4 GiB,
 * the base included (a GS-relative TLS access at a negative offset); 64-bit
 * code adds FS/GS bases in 64 bits, also to a 0x67-cut offset. */
NORETURN void seg_limit_fault(struct cpu *c, const struct insn *i, int seg);

/* 32-bit code: #GP(0) (#SS(0) for SS) unless offsets a .. a + n - 1 are
 * within segment 'seg''s limit (expand-up or expand-down) */
static inline void seg_limit_check(struct cpu *c, const struct insn *i, int seg, uint64_t a,
                                   unsigned n)
{
    if (unlikely((c->seg_limited >> seg) & 1) &&
        (a < c->seg_lo[seg] || a + n - 1 > c->seg_hi[seg]))
        seg_limit_fault(c, i, seg);
}

static inline uint64_t seg_lin_unchecked(const struct cpu *c, uint64_t a, int seg, bool a32)
{
    uint64_t l = a + c->segbase[seg];
    return unlikely(a32 && c->exec_mode) ? (uint32_t)l : l;
}

/* ... with the first byte checked against the limit (32-bit code) */
static inline uint64_t seg_lin(struct cpu *c, const struct insn *i, uint64_t a, int seg,
                               bool a32)
{
    if (unlikely(a32 && c->exec_mode))
        seg_limit_check(c, i, seg, a, 1);
    return seg_lin_unchecked(c, a, seg, a32);
}

/* Offset 'a' cut to the record's address size */
static inline uint64_t addr_cut(const struct insn *i, uint64_t a)
{
    if (!(i->mf & MF_ADDR32))
        return a;
    return (i->mf & MF_ADDR16) ? (uint16_t)a : (uint32_t)a;
}

/* The linear address of the record's memory operand. (In 32-bit code its
 * first byte is checked against the segment's limit.) */
static inline uint64_t ea(struct cpu *c, const struct insn *i)
{
    uint64_t a = c->r[i->base] + (c->r[i->index] << (i->mf & MF_SCALE)) + (uint64_t)i->disp;
    if (unlikely(i->mf & MF_ADDR32))
        return seg_lin(c, i, addr_cut(i, a), (i->mf >> MF_SEG_SHIFT) & 7, true);
    return a + c->segbase[(i->mf >> MF_SEG_SHIFT) & 7];
}

/* A system instruction's r/m operand is the register i->base */
static inline bool mf_regform(const struct insn *i)
{
    return (i->mf & (MF_REGFORM | MF_ADDR32)) == MF_REGFORM;
}

static inline int insn_seg(const struct insn *i)
{
    return (i->mf >> MF_SEG_SHIFT) & 7;
}

static inline uint64_t sz_mask(unsigned lg)
{
    return lg == 3 ? ~0ull : (1ull << (8u << lg)) - 1;
}

static inline int64_t sext(uint64_t v, unsigned lg)
{
    switch (lg) {
    case 0: return (int8_t)v;
    case 1: return (int16_t)v;
    case 2: return (int32_t)v;
    default: return (int64_t)v;
    }
}

/* --- flags (flags.c) -------------------------------------------------------- */
uint32_t cc_compute(const struct cpu *c);
bool cc_cond_slow(const struct cpu *c, unsigned cond);

static inline uint32_t cc_flags(const struct cpu *c)
{
    if (c->cc_op == CC_EAGER)
        return c->cc_aux;
    return cc_compute(c);
}

static inline uint32_t cc_cf(const struct cpu *c)
{
    unsigned kind = c->cc_op >> 2;
    if (kind == CC_SUB)
        return c->cc_a < c->cc_b;
    if (kind == CC_ADD)
        return c->cc_res < c->cc_a;
    if (kind == CC_LOGIC)
        return 0;
    if (kind == CC_CFOF)
        return (uint32_t)c->cc_res & F_CF;
    return cc_flags(c) & F_CF;
}

static inline void cc_set(struct cpu *c, unsigned op, uint64_t res, uint64_t a, uint64_t b)
{
    c->cc_op = op;
    c->cc_res = res;
    c->cc_a = a;
    c->cc_b = b;
}

static inline void cc_set_eager(struct cpu *c, uint32_t f)
{
    c->cc_op = CC_EAGER;
    c->cc_aux = f & F_ARITH;
}

/* Replace CF and OF ('bits': F_CF/F_OF only), keep the other arithmetic
 * flags, without computing them now: the current lazy state moves to cc2
 * (a CC_CFOF state already has its base there). */
static inline void cc_set_cfof(struct cpu *c, uint32_t bits)
{
    if (c->cc_op == CC_EAGER) {
        c->cc_aux = (c->cc_aux & ~(F_CF | F_OF)) | bits;
        return;
    }
    if (c->cc_op >> 2 != CC_CFOF) {
        c->cc2_op = c->cc_op;
        c->cc2_res = c->cc_res;
        c->cc2_a = c->cc_a;
        c->cc2_b = c->cc_b;
        c->cc2_aux = c->cc_aux;
        c->cc_op = CC_CFOF << 2;
    }
    c->cc_res = bits;
}

static inline bool cc_cond(const struct cpu *c, unsigned cond)
{
    unsigned kind = c->cc_op >> 2, lg = c->cc_op & 3;
    if (kind == CC_SUB) {
        uint64_t a = c->cc_a, b = c->cc_b;
        switch (cond) {
        case 2: return a < b;
        case 3: return a >= b;
        case 4: return a == b;
        case 5: return a != b;
        case 6: return a <= b;
        case 7: return a > b;
        case 12: return sext(a, lg) < sext(b, lg);
        case 13: return sext(a, lg) >= sext(b, lg);
        case 14: return sext(a, lg) <= sext(b, lg);
        case 15: return sext(a, lg) > sext(b, lg);
        default: break;
        }
    } else if (kind == CC_LOGIC) {
        uint64_t r = c->cc_res;
        bool sf = (r >> ((8u << lg) - 1)) & 1;
        switch (cond) {
        case 0: return false;
        case 1: return true;
        case 2: return false;
        case 3: return true;
        case 4: return r == 0;
        case 5: return r != 0;
        case 6: return r == 0;
        case 7: return r != 0;
        case 8: return sf;
        case 9: return !sf;
        case 12: return sf;
        case 13: return !sf;
        case 14: return r == 0 || sf;
        case 15: return r != 0 && !sf;
        default: break;
        }
    }
    return cc_cond_slow(c, cond);
}

static inline uint64_t rflags_get(const struct cpu *c)
{
    return c->rflags | cc_flags(c);
}

void rflags_set(struct cpu *c, uint64_t v); /* all bits, no privilege checks */

/* --- exceptions (except.c) ------------------------------------------------------ */
NORETURN void raise_exc(struct cpu *c, const struct insn *i, int vec, int err);
NORETURN void raise_trap(struct cpu *c, const struct insn *i, int vec, int soft);
NORETURN void raise_error(struct cpu *c, const struct insn *i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
NORETURN void raise_unsupported(struct cpu *c, const struct insn *i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void warn_unsupported(struct cpu *c, const struct insn *i, const char *what, const char *instead);
NORETURN void raise_gp0(struct cpu *c, const struct insn *i);
/* Stop cpu_run with CPU_EXIT_DEBUG before instruction 'i' executes. */
NORETURN void raise_debug_stop(struct cpu *c, const struct insn *i, uint8_t vector, uint64_t dr6);
NORETURN void raise_ud(struct cpu *c, const struct insn *i);
/* Deliver the exception in c->exc_*; handles #DF and shutdown. Returns 0 or
 * an exit reason. */
int exc_deliver_pending(struct cpu *c);
int deliver_interrupt(struct cpu *c, int vec, bool nmi);
void debugf(struct cpu *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- the guest's debug registers (guestdbg.c) ------------------------------- */
/* After DR0-DR3 or DR7 change: which breakpoints are on; the TLB refills so
 * that pages under a data breakpoint take the slow paths. */
void guest_dr_changed(struct cpu *c);
/* Whether a data breakpoint covers a byte of the page at 'page'. */
bool guest_dr_watches_page(const struct cpu *c, uint64_t page);
/* A slow-path access to [va, va+len): note the data breakpoints it hits. */
void guest_dr_check(struct cpu *c, uint64_t va, unsigned len, bool write);
/* One instruction with the guest's breakpoints armed (cpu_run's loop). */
void guest_dr_exec(struct cpu *c);
/* After an instruction that ran alone under TF or breakpoints: the #DB trap
 * for DR6 bits 'dr6' it earned, plus what a MOV SS or POP SS before it held;
 * held itself if it is such a MOV SS or POP SS. */
void guest_db_after(struct cpu *c, uint32_t dr6);
/* Run exactly one instruction (cpu.c). */
void exec_one(struct cpu *c);

/* --- memory (mmu.c) --------------------------------------------------------- */
uint64_t mem_read_slow(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                       unsigned acc);
void mem_write_slow(struct cpu *c, const struct insn *i, uint64_t va, uint64_t v, unsigned size,
                    unsigned acc);
/* Read for a read-modify-write: checks write access first. */
uint64_t mem_rmw_read_slow(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                           unsigned acc);
void mem_read_buf(struct cpu *c, const struct insn *i, uint64_t va, void *buf, unsigned len,
                  unsigned acc);
void mem_write_buf(struct cpu *c, const struct insn *i, uint64_t va, const void *buf,
                   unsigned len, unsigned acc);
/* #AC check (CPL3, CR0.AM, RFLAGS.AC) for an access of 'size' bytes */
void mem_check_align(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                     unsigned acc);
/* Make sure [va, va+len) is writable (faults if not), without writing. */
void mem_probe_write(struct cpu *c, const struct insn *i, uint64_t va, unsigned len,
                     unsigned acc);
/* Host pointer for a RAM range inside one page that is writable now, or NULL
 * (MMIO or code page): after probing. */
void *mem_host_ptr(struct cpu *c, const struct insn *i, uint64_t va, unsigned len, unsigned acc);

void tlb_flush_all(struct cpu *c, bool include_global);
void tlb_flush_page(struct cpu *c, uint64_t va);
void mmu_update_mode(struct cpu *c); /* after CPL, CR0.AM, RFLAGS.AC change */
/* Translate for the block builder: 0 and *pa, or a #PF error code | 1<<31,
 * or -1 (non-canonical). */
int64_t mmu_translate_exec(struct cpu *c, uint64_t va, uint64_t *pa);
uint8_t *phys_ram_ptr(struct cpu *c, uint64_t pa, uint64_t len);
struct code_page *phys_code_page(struct cpu *c, uint64_t pa);
void phys_read(struct cpu *c, uint64_t pa, void *buf, unsigned len);
uint64_t phys_read64(struct cpu *c, uint64_t pa);


#define MEM_FAST_LOAD(bits)                                                                    \
    static inline uint64_t ld##bits(struct cpu *c, const struct insn *i, uint64_t va)          \
    {                                                                                          \
        struct tlbe *e = tlb_entry(c, va);                                                     \
        if (likely(e->tag_r == ((va + bits / 8 - 1) & ~TLBF_MASK))) {                          \
            uint##bits##_t v_;                                                                 \
            memcpy(&v_, (void *)(va + e->addend), bits / 8);                                   \
            return v_;                                                                         \
        }                                                                                      \
        return mem_read_slow(c, i, va, bits / 8, ACC_R);                                       \
    }                                                                                          \
    static inline void st##bits(struct cpu *c, const struct insn *i, uint64_t va, uint64_t v) \
    {                                                                                          \
        struct tlbe *e = tlb_entry(c, va);                                                     \
        if (likely(e->tag_w == ((va + bits / 8 - 1) & ~TLBF_MASK))) {                          \
            uint##bits##_t v_ = (uint##bits##_t)v;                                             \
            memcpy((void *)(va + e->addend), &v_, bits / 8);                                   \
        } else                                                                                 \
            mem_write_slow(c, i, va, v, bits / 8, ACC_W);                                      \
    }
MEM_FAST_LOAD(8)
MEM_FAST_LOAD(16)
MEM_FAST_LOAD(32)
MEM_FAST_LOAD(64)

/* Guest memory through host pointers is accessed with memcpy: guest data
 * may be misaligned (a plain mov at -O2; no UBSan alignment reports). */
static inline uint64_t hload(const void *p, unsigned lg)
{
    switch (lg) {
    case 0: { uint8_t v; memcpy(&v, p, 1); return v; }
    case 1: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 2: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static inline void hstore(void *p, uint64_t v, unsigned lg)
{
    switch (lg) {
    case 0: { uint8_t x = (uint8_t)v; memcpy(p, &x, 1); break; }
    case 1: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 2: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Size-generic (lg = log2 bytes), constant-folded in specialised handlers. */
static inline uint64_t ldn(struct cpu *c, const struct insn *i, uint64_t va, unsigned lg)
{
    switch (lg) {
    case 0: return ld8(c, i, va);
    case 1: return ld16(c, i, va);
    case 2: return ld32(c, i, va);
    default: return ld64(c, i, va);
    }
}

static inline void stn(struct cpu *c, const struct insn *i, uint64_t va, uint64_t v, unsigned lg)
{
    switch (lg) {
    case 0: st8(c, i, va, v); break;
    case 1: st16(c, i, va, v); break;
    case 2: st32(c, i, va, v); break;
    default: st64(c, i, va, v); break;
    }
}

/* A stack offset (RSP, ESP) as a linear address of 2^lg bytes: 32-bit code
 * adds SS's base and checks SS's limit. */
static inline uint64_t ss_lin(struct cpu *c, const struct insn *i, uint64_t sp, unsigned lg)
{
    if (likely(!c->exec_mode))
        return sp;
    seg_limit_check(c, i, SEG_SS, sp, 1u << lg);
    return (uint32_t)(sp + c->segbase[SEG_SS]);
}

/* Stack accesses at a stack offset (SS: #SS on non-canonical). */
static inline uint64_t ld_ss(struct cpu *c, const struct insn *i, uint64_t sp, unsigned lg)
{
    uint64_t va = ss_lin(c, i, sp, lg);
    struct tlbe *e = tlb_entry(c, va);
    unsigned n = 1u << lg;
    if (likely(e->tag_r == ((va + n - 1) & ~TLBF_MASK))) {
        return hload((void *)(va + e->addend), lg);
    }
    return mem_read_slow(c, i, va, n, ACC_R | ACC_SS);
}

static inline void st_ss(struct cpu *c, const struct insn *i, uint64_t sp, uint64_t v, unsigned lg)
{
    uint64_t va = ss_lin(c, i, sp, lg);
    struct tlbe *e = tlb_entry(c, va);
    unsigned n = 1u << lg;
    if (likely(e->tag_w == ((va + n - 1) & ~TLBF_MASK))) {
        hstore((void *)(va + e->addend), v, lg);
        return;
    }
    mem_write_slow(c, i, va, v, n, ACC_W | ACC_SS);
}

/* Register access by operand size (lg); 8-bit registers are byte offsets. */
static inline uint64_t getr(const struct cpu *c, unsigned r, unsigned lg)
{
    switch (lg) {
    case 0: return *((const uint8_t *)c->r + r);
    case 1: return (uint16_t)c->r[r];
    case 2: return (uint32_t)c->r[r];
    default: return c->r[r];
    }
}

static inline void setr(struct cpu *c, unsigned r, uint64_t v, unsigned lg)
{
    switch (lg) {
    case 0: *((uint8_t *)c->r + r) = (uint8_t)v; break;
    case 1: set16(&c->r[r], v); break;
    case 2: c->r[r] = (uint32_t)v; break;
    default: c->r[r] = v; break;
    }
}

/* --- blocks (block.c) -------------------------------------------------------- */
struct block *block_find(struct cpu *c);
void block_flush_all(struct cpu *c);
void smc_write(struct cpu *c, const struct insn *i, uint64_t pa, unsigned len);
void smc_process_dma(struct cpu *c);
int block_cache_init(struct cpu *c);
void block_cache_free(struct cpu *c);
void arena_populate(uint8_t *base, size_t size, size_t *ready, size_t need, int advice);

/* --- translator (jit.c) ------------------------------------------------------- */
/* Whether a vCPU translates when neither CPU_CFG_JIT nor CPU_CFG_NO_JIT
 * nor EMBER_JIT=on|off says. */
#define JIT_DEFAULT true
int jit_init(struct cpu *c);
int code_arena_map(size_t size, uint8_t **rw, uint8_t **rx);
void jit_free(struct cpu *c);
bool jit_full(const struct cpu *c);
void jit_block(struct cpu *c, struct block *b); /* translate it now */
/* after it is built: once it is hot (rewritten: built short after a store
 * into the block before it) */
void jit_block_later(struct cpu *c, struct block *b, bool rewritten);
void jit_reset(struct cpu *c);                  /* with the block cache */
void jit_unlink(struct block *b); /* when it is invalidated */

/* --- the host's undefined flags (mulshift.c) ----------------------------------- */
/* ROL/ROR: the host instruction's CF/OF are what the C fast path sets. */
bool host_rot_flags_modelled(void);
/* IMUL: the host instruction sets all six arithmetic flags from its
 * operands alone (CF = OF = overflow, SF/PF of the result, ZF = AF = 0),
 * as the C fast path does. */
bool host_imul_flags_from_result(void);
/* IMUL: the host instruction's CF/OF are the fast path's and it leaves the
 * other four as they were (AMD), so CF/OF are merged as after a rotate. */
bool host_imul_keeps_other_flags(void);

/* --- fused compare-and-branch (fuse.c) ----------------------------------------- */
void fuse_block(struct insn *recs, unsigned n);
insn_fn fuse_plain(const struct insn *rec);

/* --- decoder (decode.c) ------------------------------------------------------- */
#include "cpu/decode.h"

/* --- handlers shared between files ------------------------------------------ */
HANDLER(h_ud);
HANDLER(h_end);
HANDLER(h_exit_stale);
HANDLER(h_gp0_rec);
HANDLER(h_noimpl32);
bool desc_fetch(struct cpu *c, uint16_t sel, uint64_t *d, bool wide);

/* --- system (sys.c) -------------------------------------------------------------- */
int seg_load_desc(struct cpu *c, const struct insn *i, uint16_t sel, uint64_t desc[2],
                  bool sys16);
void seg_from_desc(struct x86_segment *s, uint16_t sel, uint64_t d0);
void seg_update_bases(struct cpu *c);
void cpu_set_cpl(struct cpu *c, unsigned cpl);
uint64_t tsc_read(struct cpu *c);
int msr_read(struct cpu *c, uint32_t idx, uint64_t *v);
int msr_write(struct cpu *c, uint32_t idx, uint64_t v);
void cpuid_query(struct cpu *c, uint32_t leaf, uint32_t sub, uint32_t out[4]);
void cpuid_cache_features(struct cpu *c);
int set_cr0(struct cpu *c, uint64_t v);
int set_cr3(struct cpu *c, uint64_t v);
int set_cr4(struct cpu *c, uint64_t v);

/* --- x87/SSE (fpu.c) -------------------------------------------------------- */
int hx_init(struct cpu *c);
bool hx_need_flush(struct cpu *c);
void hx_flush(struct cpu *c);
void hx_free(struct cpu *c);
void fpu_reset(struct cpu *c);

#endif
