/* Soft MMU: 4-level page walk (4K/2M/1G, NX, U/S, R/W with CR0.WP, A/D bits
 * set with cmpxchg on the PTE), a per-vCPU direct-mapped TLB per privilege
 * mode, and the slow paths of guest memory accesses: page-crossing splits
 * (all pages translated before any byte is written), MMIO, stores into
 * pages holding decoded code, alignment checks. */
#include "cpu/internal.h"

#define PHYS_BITS 40
#define PHYS_MASK (((1ull << PHYS_BITS) - 1) & ~0xfffull)
#define PTE_P 1ull
#define PTE_RW 2ull
#define PTE_US 4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull
#define PTE_NX (1ull << 63)

/* --- guest-physical memory ------------------------------------------------------ */
static struct ram_region *phys_region(struct cpu *c, uint64_t pa)
{
    for (unsigned k = 0; k < c->nram; k++) {
        struct ram_region *r = &c->ram[k];
        if (pa >= r->gpa && pa - r->gpa < r->size)
            return r;
    }
    return NULL;
}

uint8_t *phys_ram_ptr(struct cpu *c, uint64_t pa, uint64_t len)
{
    struct ram_region *r = phys_region(c, pa);
    if (!r || len > r->size - (pa - r->gpa))
        return NULL;
    return r->hva + (pa - r->gpa);
}

struct code_page *phys_code_page(struct cpu *c, uint64_t pa)
{
    struct ram_region *r = phys_region(c, pa);
    return r ? &r->pages[(pa - r->gpa) >> 12] : NULL;
}

static void mmio_access(struct cpu *c, uint64_t pa, void *data, unsigned len, bool write)
{
    /* split into naturally sized pieces of at most 8 bytes */
    uint8_t *d = data;
    while (len) {
        unsigned n = len >= 8 ? 8 : len >= 4 ? 4 : len >= 2 ? 2 : 1;
        while (pa & (n - 1))
            n >>= 1;
        c->stats.mmio++;
        bool ok = c->ops.mmio && c->ops.mmio(c->ops.ctx, pa, d, n, write);
        if (!ok && !write)
            memset(d, 0xff, n);
        pa += n;
        d += n;
        len -= n;
    }
}

void phys_read(struct cpu *c, uint64_t pa, void *buf, unsigned len)
{
    uint8_t *p = phys_ram_ptr(c, pa, len);
    if (p)
        memcpy(buf, p, len);
    else
        mmio_access(c, pa, buf, len, false);
}

uint64_t phys_read64(struct cpu *c, uint64_t pa)
{
    uint64_t v;
    phys_read(c, pa, &v, 8);
    return v;
}

/* --- TLB ---------------------------------------------------------------------- */
static void tlbe_clear(struct tlbe *e)
{
    e->tag_r = e->tag_w = e->tag_x = TLB_INVALID;
    e->addend = 0;
}

void tlb_flush_all(struct cpu *c, bool include_global)
{
    /* a CR3 write flushes every table: skip the ones nothing was installed
     * in since they were last emptied (the user tables during kernel work,
     * the no-fast-path table nearly always) */
    for (unsigned m = 0; m < TLB_TABLES; m++) {
        if (!(c->tlb_used & (1u << m)))
            continue;
        bool left = false;
        for (unsigned k = 0; k < TLB_SIZE; k++) {
            if (include_global || !c->tlbxs[m][k].global)
                tlbe_clear(&c->tlbs[m][k]);
            else
                left |= c->tlbs[m][k].tag_r != TLB_INVALID;
        }
        for (unsigned k = 0; k < VTLB_SIZE; k++) {
            if (include_global || !c->vtlbx[m][k].global)
                tlbe_clear(&c->vtlb[m][k]);
            else
                left |= c->vtlb[m][k].tag_r != TLB_INVALID;
        }
        if (!left)
            c->tlb_used &= (uint8_t)~(1u << m);
    }
    if (include_global) {
        c->large_lo = ~0ull;
        c->large_hi = 0;
    }
    c->stats.tlb_flushes++;
}

void tlb_flush_page(struct cpu *c, uint64_t va)
{
    if (va >= c->large_lo && va <= c->large_hi) {
        tlb_flush_all(c, true);
        return;
    }
    unsigned k = TLB_INDEX(va);
    uint64_t page = va & ~0xfffull;
    for (unsigned m = 0; m < TLB_TABLES; m++) {
        struct tlbe *e = &c->tlbs[m][k];
        if ((e->tag_r & ~TLBF_MASK) == page || (e->tag_w & ~TLBF_MASK) == page ||
            (e->tag_x & ~TLBF_MASK) == page)
            tlbe_clear(e);
        for (unsigned j = 0; j < VTLB_SIZE; j++) {
            e = &c->vtlb[m][j];
            if ((e->tag_r & ~TLBF_MASK) == page || (e->tag_w & ~TLBF_MASK) == page ||
                (e->tag_x & ~TLBF_MASK) == page)
                tlbe_clear(e);
        }
    }
}

void mmu_update_mode(struct cpu *c)
{
    unsigned m = MMU_SUP;
    if (c->cpl == 3)
        m = ((c->cr0 & CR0_AM) && (c->rflags & F_AC)) ? MMU_NOFAST : MMU_USER;
    c->mmu_idx = (uint8_t)m;
    c->tlb = c->tlbs[m];
    /* alignment checks concern data: fetches share the user table */
    c->itlb = c->tlbs[ITLB_TABLE(m == MMU_NOFAST ? MMU_USER : m)];
}

/* --- page walk ------------------------------------------------------------------ */
struct xlate {
    uint64_t pa;      /* page */
    bool w, x, u;     /* allowed for the walked mode: write (D set), execute */
    bool dirty;
    bool global, large;
    uint64_t large_size;
};

static _Atomic uint64_t *pte_ptr(struct cpu *c, uint64_t pa)
{
    return (_Atomic uint64_t *)phys_ram_ptr(c, pa, 8);
}

static uint64_t pte_load(struct cpu *c, uint64_t pa)
{
    _Atomic uint64_t *p = pte_ptr(c, pa);
    if (p)
        return atomic_load_explicit(p, memory_order_relaxed);
    return phys_read64(c, pa);
}

/* Set bits in a PTE if its value is still 'old'. false: changed, re-walk. */
static bool pte_set(struct cpu *c, uint64_t pa, uint64_t old, uint64_t bits)
{
    if ((old & bits) == bits)
        return true;
    _Atomic uint64_t *p = pte_ptr(c, pa);
    if (!p)
        return true; /* page tables in MMIO: no A/D */
    uint64_t exp = old;
    bool ok = atomic_compare_exchange_strong(p, &exp, old | bits);
    if (ok) {
        gm_mark_dirty(c->mem, pa, 8); /* A/D updates count as the CPU's writes */
        struct code_page *cp = phys_code_page(c, pa);
        if (cp && (atomic_load_explicit(&cp->map, memory_order_relaxed) || cp->foreign))
            smc_write(c, NULL, pa, 8);
    }
    return ok;
}

/* Walk for an access of kind 'acc' (ACC_R/W/X) in mode 'user'. Returns 0
 * (and fills *x) or the #PF error code with WALK_FAULT set (a not-present
 * supervisor read has error code 0). */
#define WALK_FAULT 0x80000000u
static uint32_t walk(struct cpu *c, uint64_t va, unsigned kind, bool user, struct xlate *x)
{
    c->stats.tlb_misses++;

    bool nxe = c->efer & EFER_NXE;
    uint64_t rsvd_hi = ~((1ull << PHYS_BITS) - 1) & 0x7ff0000000000000ull;
    rsvd_hi = 0x000fffffffffffffull & ~((1ull << PHYS_BITS) - 1); /* bits PHYS_BITS..51 */
    uint32_t ecode = WALK_FAULT | (kind == ACC_W ? PFE_W : 0) | (user ? PFE_U : 0) |
                     (kind == ACC_X && nxe ? PFE_ID : 0);
    if (!(c->cr0 & CR0_PG)) { /* paging off (32-bit code only): linear = physical */
        *x = (struct xlate){.pa = va & 0xfffff000ull, .u = user, .w = true, .x = true};
        return 0;
    }
restart:;
    uint64_t table = c->cr3 & PHYS_MASK;
    bool rw = true, us = true, nx = false;
    uint64_t ptes[4], ptepa[4];
    int level;
    uint64_t e = 0, size = 0;
    for (level = 3; level >= 0; level--) {
        unsigned idx = (va >> (12 + 9 * level)) & 511;
        uint64_t pa = table + idx * 8;
        e = pte_load(c, pa);
        ptes[level] = e;
        ptepa[level] = pa;
        if (!(e & PTE_P))
            return ecode;
        uint64_t rsvd = rsvd_hi;
        if (!nxe)
            rsvd |= PTE_NX;
        if (level == 3 && (e & PTE_PS))
            rsvd |= PTE_PS;
        bool leaf = level == 0 || (level <= 2 && (e & PTE_PS));
        if (leaf && level == 2)
            rsvd |= 0x3fffe000ull; /* 1G: bits 29:13 */
        if (leaf && level == 1)
            rsvd |= 0x1fe000ull;   /* 2M: bits 20:13 */
        if (e & rsvd)
            return ecode | PFE_P | PFE_RSVD;
        rw = rw && (e & PTE_RW);
        us = us && (e & PTE_US);
        nx = nx || (nxe && (e & PTE_NX));
        if (leaf) {
            size = 1ull << (12 + 9 * level);
            break;
        }
        table = e & PHYS_MASK;
    }
    /* permissions */
    bool wp = c->cr0 & CR0_WP;
    bool can_r = !user || us;
    bool can_w = user ? (us && rw) : (rw || !wp);
    bool can_x = !nx && (!user || us);
    bool ok = kind == ACC_R ? can_r : kind == ACC_W ? can_w : can_x;
    if (!ok)
        return ecode | PFE_P;
    /* accessed bits on the way down, dirty on the leaf for writes */
    for (int l = 3; l >= level; l--) {
        uint64_t bits = PTE_A;
        if (l == level && kind == ACC_W)
            bits |= PTE_D;
        if (!pte_set(c, ptepa[l], ptes[l], bits))
            goto restart;
    }
    uint64_t leafpa = (e & PHYS_MASK & ~(size - 1)) | (va & (size - 1) & ~0xfffull);
    x->pa = leafpa;
    x->u = user;
    x->w = can_w && ((e & PTE_D) || kind == ACC_W);
    x->x = can_x;
    x->global = (e & PTE_G) && (c->cr4 & CR4_PGE);
    x->large = size > 4096;
    x->large_size = size;
    (void)can_r;
    return 0;
}

/* Remember which TLB entries map a RAM page, so that marking it as holding
 * code does not scan the whole TLB. */
static void tlb_note_alias(struct cpu *c, struct code_page *cp, uint64_t pa, uint16_t slot)
{
    if (cp->nalias > CP_ALIASES)
        return;
    unsigned n = 0;
    bool have = false;
    for (unsigned j = 0; j < cp->nalias; j++) {
        uint16_t a = cp->alias[j];
        const struct tlbx *x = &c->tlbxs[a >> 12][a & (TLB_SIZE - 1)];
        const struct tlbe *e = &c->tlbs[a >> 12][a & (TLB_SIZE - 1)];
        if (x->pa != pa || e->tag_r == TLB_INVALID)
            continue; /* stale */
        if (a == slot)
            have = true;
        cp->alias[n++] = a;
    }
    if (!have) {
        if (n == CP_ALIASES) {
            cp->nalias = CP_ALIASES + 1;
            return;
        }
        cp->alias[n++] = slot;
    }
    cp->nalias = (uint8_t)n;
}

/* A debugger's data watchpoint covers some byte of the page at 'page'. */
static bool page_watched(const struct cpu *c, uint64_t page)
{
    if (unlikely(c->gbp_data) && guest_dr_watches_page(c, page))
        return true; /* (the guest's own data breakpoints: guestdbg.c) */
    if (!(c->dbg.flags & CPU_DEBUG_HW_BP))
        return false;
    for (unsigned n = 0; n < 4; n++)
        if (c->dbg.enabled[n] && c->dbg.watch[n] != CPU_WATCH_EXEC &&
            c->dbg.addr[n] + c->dbg.len[n] > page && c->dbg.addr[n] < page + 4096)
            return true;
    return false;
}

/* In a slow path, for an access to [va, va+len) in a watched page: note the
 * watchpoints it touches (the vCPU stops after the instruction, as the
 * hardware's data breakpoints trap). */
static void watch_check(struct cpu *c, uint64_t va, unsigned len, bool write)
{
    if (c->gbp_data)
        guest_dr_check(c, va, len, write);
    if (!(c->dbg.flags & CPU_DEBUG_HW_BP))
        return;
    for (unsigned n = 0; n < 4; n++)
        if (c->dbg.enabled[n] && (c->dbg.watch[n] == CPU_WATCH_RW ||
                                  (write && c->dbg.watch[n] == CPU_WATCH_WRITE)) &&
            c->dbg.addr[n] < va + len && va < c->dbg.addr[n] + c->dbg.len[n])
            c->watch_hit |= (uint8_t)(1u << n);
}

static void note_large(struct cpu *c, uint64_t va, const struct xlate *x)
{
    if (!x->large)
        return;
    uint64_t lo = va & ~(x->large_size - 1), hi = lo + x->large_size - 1;
    if (lo < c->large_lo)
        c->large_lo = lo;
    if (hi > c->large_hi)
        c->large_hi = hi;
}

/* Fill the TLB entry for 'va' in table 'm' (a mode's, or its ITLB_TABLE) from a successful walk for
 * an access of 'kind'. While the VMM tracks dirty pages, an entry may write
 * RAM only if it was filled by a write, which marks the page: the fast
 * store path then never skips the mark, and a TLB flush (when the VMM takes
 * the marks) starts the next round. */
static struct tlbe *tlb_install(struct cpu *c, unsigned m, uint64_t va, const struct xlate *x,
                                unsigned kind)
{
    unsigned k = TLB_INDEX(va);
    struct tlbe *e = &c->tlbs[m][k];
    struct tlbx *ex = &c->tlbxs[m][k];
    uint64_t page = va & ~0xfffull;
    c->tlb_used |= (uint8_t)(1u << m);
    if (e->tag_r != TLB_INVALID && (e->tag_r & ~TLBF_MASK) != page) {
        /* keep the displaced translation in the victim set */
        unsigned j = c->vnext[m]++ % VTLB_SIZE;
        c->vtlb[m][j] = *e;
        c->vtlbx[m][j] = *ex;
    }
    uint8_t *host = phys_ram_ptr(c, x->pa, 4096);
    uint64_t flags = (host ? 0 : TLBF_MMIO) | (page_watched(c, page) ? TLBF_WATCH : 0);
    e->addend = host ? (uintptr_t)host - page : 0;
    ex->pa = x->pa;
    ex->global = x->global;
    ex->large = x->large;
    note_large(c, va, x);
    if (m >= MMU_MODES) {
        e->tag_r = e->tag_x = page | flags;
        e->tag_w = TLB_INVALID;
        return e;
    }
    uint64_t wflags = flags;
    if (host) {
        struct code_page *cp = phys_code_page(c, x->pa);
        if (cp) {
            if (atomic_load_explicit(&cp->map, memory_order_relaxed) || cp->foreign)
                wflags |= TLBF_CODE;
            tlb_note_alias(c, cp, x->pa, (uint16_t)(m << 12 | k));
        }
    }
    bool may_write = x->w;
    if (host && may_write && c->mem->track_dirty) {
        if (kind == ACC_W)
            gm_mark_dirty(c->mem, x->pa, 4096);
        else
            may_write = false;
    }
    e->tag_r = page | flags;
    e->tag_w = may_write ? (page | wflags) : TLB_INVALID;
    e->tag_x = TLB_INVALID;
    return e;
}

static inline unsigned acc_mode(const struct cpu *c, unsigned acc)
{
    if (acc & ACC_SUP)
        return MMU_SUP;
    return c->mmu_idx == MMU_NOFAST ? MMU_USER : c->mmu_idx;
}

NORETURN static void page_fault(struct cpu *c, const struct insn *i, uint64_t va, uint32_t ec)
{
    c->cr2 = va;
    raise_exc(c, i, EXC_PF, (int)(ec & ~WALK_FAULT));
}

NORETURN static void noncanonical(struct cpu *c, const struct insn *i, unsigned acc)
{
    raise_exc(c, i, (acc & ACC_SS) ? EXC_SS : EXC_GP, 0);
}

/* A main-TLB miss: a victim entry for the page with the kind's permission
 * is swapped into the main slot. Returns the main entry or NULL. */
static struct tlbe *victim_swap(struct cpu *c, unsigned m, uint64_t va, unsigned kind)
{
    uint64_t page = va & ~0xfffull;
    unsigned k = TLB_INDEX(va);
    for (unsigned j = 0; j < VTLB_SIZE; j++) {
        struct tlbe *v = &c->vtlb[m][j];
        uint64_t tag = kind == ACC_R ? v->tag_r : kind == ACC_W ? v->tag_w : v->tag_x;
        if (tag == TLB_INVALID || (tag & ~TLBF_MASK) != page)
            continue;
        struct tlbe te = c->tlbs[m][k];
        struct tlbx tx = c->tlbxs[m][k];
        c->tlbs[m][k] = *v;
        c->tlbxs[m][k] = c->vtlbx[m][j];
        *v = te;
        c->vtlbx[m][j] = tx;
        struct tlbe *e = &c->tlbs[m][k];
        /* the page may have gained or lost decoded code meanwhile */
        if (e->tag_w != TLB_INVALID && !(e->tag_w & TLBF_MMIO)) {
            uint64_t pa = c->tlbxs[m][k].pa;
            struct code_page *cp = phys_code_page(c, pa);
            if (cp) {
                if (atomic_load_explicit(&cp->map, memory_order_relaxed))
                    e->tag_w |= TLBF_CODE;
                else
                    e->tag_w &= ~TLBF_CODE;
                tlb_note_alias(c, cp, pa, (uint16_t)(m << 12 | k));
            }
        }
        return e;
    }
    return NULL;
}

/* Translate one page for an access; raises on failure. Returns the entry
 * (of the mode table used) and the kind's tag valid. */
static struct tlbe *translate(struct cpu *c, const struct insn *i, uint64_t va, unsigned acc)
{
    if (!canonical(va))
        noncanonical(c, i, acc);
    unsigned mode = acc_mode(c, acc), kind = acc & ACC_KIND;
    unsigned m = kind == ACC_X ? ITLB_TABLE(mode) : mode;
    struct tlbe *e = &c->tlbs[m][TLB_INDEX(va)];
    uint64_t page = va & ~0xfffull;
    uint64_t tag = kind == ACC_R ? e->tag_r : kind == ACC_W ? e->tag_w : e->tag_x;
    if ((tag & ~TLBF_MASK) == page && tag != TLB_INVALID)
        return e;
    struct tlbe *v = victim_swap(c, m, va, kind);
    if (v)
        return v;
    struct xlate x;
    uint32_t ec = walk(c, va, kind, mode != MMU_SUP, &x);
    if (ec)
        page_fault(c, i, va, ec);
    return tlb_install(c, m, va, &x, kind);
}

static inline uint64_t entry_pa(struct cpu *c, const struct tlbe *e, uint64_t va)
{
    unsigned m = (unsigned)(e - &c->tlbs[0][0]) / TLB_SIZE;
    unsigned k = (unsigned)(e - &c->tlbs[0][0]) % TLB_SIZE;
    return c->tlbxs[m][k].pa | (va & 0xfff);
}

void mem_check_align(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                     unsigned acc)
{
    if (c->mmu_idx != MMU_NOFAST || (acc & (ACC_SUP | ACC_NOAC)) || size <= 1 ||
        !(size == 10 ? (va & 7) : (va & (size - 1))))
        return;
    /* measured: a non-canonical address gives #GP, then #AC before #PF */
    if (!canonical(va))
        noncanonical(c, i, acc);
    raise_exc(c, i, EXC_AC, 0);
}

static inline unsigned acc_seg(const struct insn *i, unsigned acc)
{
    if (i && insn_seg(i) == SEG_SS)
        acc |= ACC_SS;
    return acc;
}

/* Read within one page. */
static void read_page(struct cpu *c, const struct insn *i, uint64_t va, void *buf, unsigned len,
                      unsigned acc)
{
    struct tlbe *e = translate(c, i, va, (acc & ~ACC_KIND) | ((acc & ACC_KIND) == ACC_X ? ACC_X : ACC_R));
    if (unlikely(e->tag_r & TLBF_WATCH))
        watch_check(c, va, len, false);
    if (!(e->tag_r & TLBF_MMIO)) {
        memcpy(buf, (void *)(va + e->addend), len);
        return;
    }
    mmio_access(c, entry_pa(c, e, va), buf, len, false);
}

static void write_page(struct cpu *c, const struct insn *i, uint64_t va, const void *buf,
                       unsigned len, unsigned acc)
{
    struct tlbe *e = translate(c, i, va, (acc & ~ACC_KIND) | ACC_W);
    if (unlikely(e->tag_w & TLBF_WATCH))
        watch_check(c, va, len, true);
    if (e->tag_w & TLBF_MMIO) {
        mmio_access(c, entry_pa(c, e, va), (void *)buf, len, true);
        return;
    }
    memcpy((void *)(va + e->addend), buf, len);
    if (e->tag_w & TLBF_CODE)
        smc_write(c, i, entry_pa(c, e, va), len);
}

void mem_read_buf(struct cpu *c, const struct insn *i, uint64_t va, void *buf, unsigned len,
                  unsigned acc)
{
    acc = acc_seg(i, acc);
    uint8_t *b = buf;
    while (len) {
        unsigned n = 4096 - (va & 0xfff);
        if (n > len)
            n = len;
        read_page(c, i, va, b, n, acc);
        va += n;
        b += n;
        len -= n;
    }
}

void mem_probe_write(struct cpu *c, const struct insn *i, uint64_t va, unsigned len, unsigned acc)
{
    acc = acc_seg(i, acc);
    uint64_t end = va + len - 1;
    translate(c, i, va, (acc & ~ACC_KIND) | ACC_W);
    if ((end ^ va) & ~0xfffull) {
        /* every page of the range (buffers up to 512 bytes span at most two) */
        for (uint64_t p = (va & ~0xfffull) + 4096; p <= end && p > va; p += 4096)
            translate(c, i, p, (acc & ~ACC_KIND) | ACC_W);
    }
}

void mem_write_buf(struct cpu *c, const struct insn *i, uint64_t va, const void *buf,
                   unsigned len, unsigned acc)
{
    if (!len)
        return;
    mem_probe_write(c, i, va, len, acc);
    const uint8_t *b = buf;
    while (len) {
        unsigned n = 4096 - (va & 0xfff);
        if (n > len)
            n = len;
        write_page(c, i, va, b, n, acc);
        va += n;
        b += n;
        len -= n;
    }
}

uint64_t mem_read_slow(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                       unsigned acc)
{
    acc = acc_seg(i, acc);
    mem_check_align(c, i, va, size, acc);
    uint64_t v = 0;
    if ((va & 0xfff) + size <= 4096) {
        struct tlbe *e = translate(c, i, va, acc);
        if (unlikely(e->tag_r & TLBF_WATCH))
            watch_check(c, va, size, false);
        if (!(e->tag_r & TLBF_MMIO)) {
            memcpy(&v, (void *)(va + e->addend), size);
            return v;
        }
        mmio_access(c, entry_pa(c, e, va), &v, size, false);
        return v;
    }
    mem_read_buf(c, i, va, &v, size, acc);
    return v;
}

void mem_write_slow(struct cpu *c, const struct insn *i, uint64_t va, uint64_t v, unsigned size,
                    unsigned acc)
{
    acc = acc_seg(i, acc);
    mem_check_align(c, i, va, size, acc);
    if ((va & 0xfff) + size <= 4096)
        write_page(c, i, va, &v, size, acc);
    else
        mem_write_buf(c, i, va, &v, size, acc);
}

uint64_t mem_rmw_read_slow(struct cpu *c, const struct insn *i, uint64_t va, unsigned size,
                           unsigned acc)
{
    acc = acc_seg(i, acc);
    mem_check_align(c, i, va, size, acc);
    mem_probe_write(c, i, va, size, acc);
    uint64_t v = 0;
    mem_read_buf(c, i, va, &v, size, acc & ~ACC_KIND);
    return v;
}

void *mem_host_ptr(struct cpu *c, const struct insn *i, uint64_t va, unsigned len, unsigned acc)
{
    mem_check_align(c, i, va, len, acc);
    mem_probe_write(c, i, va, len, acc);
    if ((va & 0xfff) + len > 4096)
        return NULL;
    struct tlbe *e = translate(c, i, va, ACC_W | (acc & ~ACC_KIND));
    if (e->tag_w & (TLBF_MMIO | TLBF_CODE | TLBF_WATCH))
        return NULL;
    return (void *)(va + e->addend);
}

int64_t mmu_translate_exec(struct cpu *c, uint64_t va, uint64_t *pa)
{
    if (!canonical(va))
        return -1;
    unsigned mode = acc_mode(c, 0), m = ITLB_TABLE(mode);
    struct tlbe *e = &c->tlbs[m][TLB_INDEX(va)];
    uint64_t page = va & ~0xfffull;
    if (((e->tag_x & ~TLBF_MASK) != page || e->tag_x == TLB_INVALID) &&
        !(e = victim_swap(c, m, va, ACC_X))) {
        struct xlate x;
        uint32_t ec = walk(c, va, ACC_X, mode != MMU_SUP, &x);
        if (ec)
            return (int64_t)(ec & ~WALK_FAULT) | (1ll << 31);
        e = tlb_install(c, m, va, &x, ACC_X);
    }
    *pa = entry_pa(c, e, va);
    return 0;
}
