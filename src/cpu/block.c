/* Blocks of predecoded records, keyed by guest-physical start address (plus
 * the virtual address, since RIP-relative operands and branch targets are
 * resolved at build time). Each RAM page has a 32-bit map of the 128-byte
 * chunks holding decoded code; a store into marked bytes invalidates the
 * blocks there, and ends the executing block after the storing instruction
 * if it was one of them. Device writes are queued from any thread and
 * applied at the next block boundary. */
#include <stdlib.h>
#include <sys/mman.h>

#include "cpu/internal.h"

#define ARENA_SIZE (64u << 20)
#define HASH_BITS 18
#define BLOCK_BYTES (sizeof(struct block) + (BLOCK_MAX_INSNS + 1) * sizeof(struct insn))

/* Keyed on both addresses: every process maps shared libraries' code at
 * its own virtual addresses (ASLR), and each mapping gets blocks of its
 * own for the same physical page. Hashed on the physical address alone,
 * all of those landed in one chain, walked on every lookup. */
static unsigned hash_block(uint64_t pa, uint64_t va)
{
    uint64_t k = pa ^ (va << 20) ^ (va >> 12);
    k ^= k >> 29;
    return (unsigned)((k ^ (k >> 32)) * 0x9e3779b1u) >> (32 - HASH_BITS);
}

int block_cache_init(struct cpu *c)
{
    c->arena = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->arena == MAP_FAILED) {
        c->arena = NULL;
        return -1;
    }
    c->arena_size = ARENA_SIZE;
    c->arena_used = 0;
    c->hash = calloc(1u << HASH_BITS, sizeof(*c->hash));
    c->hash_mask = (1u << HASH_BITS) - 1;
    return c->hash ? 0 : -1;
}

void block_cache_free(struct cpu *c)
{
    if (c->arena)
        munmap(c->arena, c->arena_size);
    free(c->hash);
    c->arena = NULL;
    c->hash = NULL;
}

static uint32_t chunk_mask(unsigned start, unsigned end) /* byte offsets in a page, end excl. */
{
    if (end <= start)
        return 0;
    unsigned a = start >> 7, b = (end - 1) >> 7;
    uint32_t hi = b >= 31 ? ~0u : (2u << b) - 1;
    return hi & ~((1u << a) - 1);
}

/* Byte range [lo, hi) a block occupies on the page 'ppage'. */
static bool block_range(const struct block *b, uint64_t ppage, unsigned *lo, unsigned *hi)
{
    unsigned first = (unsigned)(b->pa & 0xfff);
    if ((b->pa & ~0xfffull) == ppage) {
        *lo = first;
        *hi = first + b->nbytes > 4096 ? 4096 : first + b->nbytes;
        return true;
    }
    if (b->pa2 != ~0ull && (b->pa2 & ~0xfffull) == ppage) {
        *lo = 0;
        *hi = first + b->nbytes - 4096;
        return true;
    }
    return false;
}

static void tlb_mark_one(struct cpu *c, unsigned m, unsigned k, uint64_t ppage, bool on)
{
    struct tlbe *e = &c->tlbs[m][k];
    if (c->tlbxs[m][k].pa != ppage || e->tag_w == TLB_INVALID || (e->tag_w & TLBF_MMIO))
        return;
    if (on)
        e->tag_w |= TLBF_CODE;
    else
        e->tag_w &= ~TLBF_CODE;
}

static void tlb_mark_code(struct cpu *c, uint64_t ppage, bool on)
{
    struct code_page *cp = phys_code_page(c, ppage);
    if (!on && cp && cp->foreign)
        return; /* writes there still concern another vCPU */
    if (cp && cp->nalias <= CP_ALIASES) {
        for (unsigned j = 0; j < cp->nalias; j++)
            tlb_mark_one(c, cp->alias[j] >> 12, cp->alias[j] & (TLB_SIZE - 1), ppage, on);
        return;
    }
    for (unsigned m = 0; m < MMU_MODES; m++)
        for (unsigned k = 0; k < TLB_SIZE && (c->tlb_used & (1u << m)); k++) {
            struct tlbe *e = &c->tlbs[m][k];
            if (c->tlbxs[m][k].pa != ppage || e->tag_w == TLB_INVALID || (e->tag_w & TLBF_MMIO))
                continue;
            if (on)
                e->tag_w |= TLBF_CODE;
            else
                e->tag_w &= ~TLBF_CODE;
        }
    /* victim entries are re-derived when they are swapped back in */
}

/* The page gained its first decoded code, or lost its last. */
static void code_page_edge(struct cpu *c, uint64_t ppage, bool on)
{
    tlb_mark_code(c, ppage, on);
    if (c->ops.code_page)
        c->ops.code_page(c->ops.ctx, ppage, on);
}

void cpu_foreign_code(struct cpu *c, uint64_t page, bool on)
{
    struct code_page *cp = phys_code_page(c, page);
    if (!cp)
        return;
    bool mine = atomic_load_explicit(&cp->map, memory_order_relaxed) != 0;
    if (on && cp->foreign++ == 0 && !mine)
        tlb_mark_code(c, page, true);
    if (!on && cp->foreign && --cp->foreign == 0 && !mine)
        tlb_mark_code(c, page, false);
}

static void page_add_block(struct cpu *c, struct code_page *cp, uint64_t ppage, struct block *b,
                           int slot)
{
    b->pnext[slot] = cp->blocks;
    cp->blocks = b;
    unsigned lo = 0, hi = 0;
    block_range(b, ppage, &lo, &hi);
    uint32_t old = atomic_fetch_or(&cp->map, chunk_mask(lo, hi));
    if (!old)
        code_page_edge(c, ppage, true);
}


static struct block **next_link(struct block *b, uint64_t ppage)
{
    return (b->pa & ~0xfffull) == ppage ? &b->pnext[0] : &b->pnext[1];
}

static void page_remove_block(struct code_page *cp, uint64_t ppage, struct block *b)
{
    struct block **pp = &cp->blocks;
    while (*pp) {
        if (*pp == b) {
            *pp = *next_link(b, ppage);
            return;
        }
        pp = next_link(*pp, ppage);
    }
}

static void hash_remove(struct cpu *c, struct block *b)
{
    struct block **pp = &c->hash[hash_block(b->pa, b->va)];
    while (*pp) {
        if (*pp == b) {
            *pp = b->hnext;
            return;
        }
        pp = &(*pp)->hnext;
    }
}

static void block_invalidate(struct cpu *c, struct block *b)
{
    if (!b->valid)
        return;
    b->valid = false;
    jit_unlink(b);
    hash_remove(c, b);
    uint64_t p1 = b->pa & ~0xfffull;
    struct code_page *cp = phys_code_page(c, p1);
    if (cp)
        page_remove_block(cp, p1, b);
    if (b->pa2 != ~0ull) {
        uint64_t p2 = b->pa2 & ~0xfffull;
        cp = phys_code_page(c, p2);
        if (cp)
            page_remove_block(cp, p2, b);
    }
    c->stats.blocks_invalidated++;
}

static void page_recompute(struct cpu *c, struct code_page *cp, uint64_t ppage)
{
    uint32_t map = 0;
    for (struct block *b = cp->blocks; b; b = *next_link(b, ppage)) {
        unsigned lo = 0, hi = 0;
        if (block_range(b, ppage, &lo, &hi))
            map |= chunk_mask(lo, hi);
    }
    uint32_t old = atomic_exchange(&cp->map, map);
    if (!map && old)
        code_page_edge(c, ppage, false);
}

void smc_write(struct cpu *c, const struct insn *i, uint64_t pa, unsigned len)
{
    uint64_t ppage = pa & ~0xfffull;
    struct code_page *cp = phys_code_page(c, pa);
    if (!cp || !len)
        return;
    if (cp->foreign && c->ops.code_written)
        c->ops.code_written(c->ops.ctx, pa, len);
    unsigned lo = (unsigned)(pa & 0xfff), hi = lo + len > 4096 ? 4096 : lo + len;
    uint32_t m = chunk_mask(lo, hi);
    if (!(atomic_load_explicit(&cp->map, memory_order_relaxed) & m))
        return;
    bool hit_current = false;
    struct block *b = cp->blocks;
    while (b) {
        struct block *next = *next_link(b, ppage);
        unsigned blo = 0, bhi = 0;
        if (block_range(b, ppage, &blo, &bhi) && blo < hi && lo < bhi) {
            if (b == c->cur_block)
                hit_current = true;
            block_invalidate(c, b);
        }
        b = next;
    }
    page_recompute(c, cp, ppage);
    if (hit_current && i) {
        /* finish this instruction, then leave the stale block */
        ((struct insn *)i)[1].fn = h_exit_stale;
        c->smc_short = true;
    }
}

/* Empty the hash table and the jump cache. After a few blocks (a reset
 * vCPU, a fuzzer's input) only their own slots can be set: clearing those
 * beats writing the 2 MiB table and the 128 KiB cache. */
static void lookups_clear(struct cpu *c)
{
    if (c->arena_used > (1u << 20)) {
        memset(c->hash, 0, (c->hash_mask + 1) * sizeof(*c->hash));
        memset(c->jc, 0, sizeof(c->jc));
        return;
    }
    for (size_t at = 0; at < c->arena_used;) {
        const struct block *b = (const struct block *)(c->arena + at);
        c->hash[hash_block(b->pa, b->va)] = NULL;
        c->jc[jc_index(b->va)] = NULL;
        at += sizeof(struct block) + (b->ninsn + 1u) * sizeof(struct insn);
        at = (at + 63) & ~(size_t)63;
    }
}

void block_flush_all(struct cpu *c)
{
    c->link_slot = NULL;
    lookups_clear(c);
    c->arena_used = 0;
    for (unsigned k = 0; k < c->nram; k++) {
        struct ram_region *r = &c->ram[k];
        size_t pages = r->size >> 12;
        for (size_t p = 0; p < pages; p++) {
            if (r->pages[p].blocks || atomic_load_explicit(&r->pages[p].map, memory_order_relaxed)) {
                r->pages[p].blocks = NULL;
                if (atomic_exchange(&r->pages[p].map, 0) && c->ops.code_page)
                    c->ops.code_page(c->ops.ctx, r->gpa + ((uint64_t)p << 12), false);
            }
        }
    }
    if (c->ops.code_page) { /* other vCPUs' code keeps some pages marked */
        tlb_flush_all(c, true);
        jit_reset(c);
        c->stats.cache_flushes++;
        return;
    }
    for (unsigned m = 0; m < MMU_MODES; m++) {
        for (unsigned k = 0; k < TLB_SIZE; k++)
            if (c->tlbs[m][k].tag_w != TLB_INVALID)
                c->tlbs[m][k].tag_w &= ~TLBF_CODE;
        for (unsigned k = 0; k < VTLB_SIZE; k++)
            if (c->vtlb[m][k].tag_w != TLB_INVALID)
                c->vtlb[m][k].tag_w &= ~TLBF_CODE;
    }
    jit_reset(c);
    c->stats.cache_flushes++;
}

void smc_process_dma(struct cpu *c)
{
    struct { uint64_t gpa, len; } q[32];
    unsigned n;
    bool overflow;
    while (atomic_flag_test_and_set_explicit(&c->dma_lock, memory_order_acquire))
        ;
    n = c->ndma;
    memcpy(q, c->dma, n * sizeof(q[0]));
    overflow = c->dma_overflow;
    c->ndma = 0;
    c->dma_overflow = false;
    atomic_flag_clear_explicit(&c->dma_lock, memory_order_release);
    if (overflow) {
        block_flush_all(c);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        uint64_t a = q[k].gpa, end = q[k].gpa + q[k].len;
        while (a < end) {
            uint64_t pend = (a & ~0xfffull) + 4096;
            uint64_t e = end < pend ? end : pend;
            smc_write(c, NULL, a, (unsigned)(e - a));
            a = e;
        }
    }
}

void cpu_notify_write(struct cpu *c, uint64_t gpa, uint64_t len)
{
    atomic_thread_fence(memory_order_seq_cst);
    bool hit = false;
    uint64_t a = gpa, end = gpa + len;
    if (end < gpa)
        end = ~0ull;
    while (a < end && !hit) {
        struct code_page *cp = phys_code_page(c, a);
        uint64_t pend = (a & ~0xfffull) + 4096;
        uint64_t e = end < pend ? end : pend;
        if (cp) {
            uint32_t m = chunk_mask((unsigned)(a & 0xfff), (unsigned)((e - 1) & 0xfff) + 1);
            if (atomic_load(&cp->map) & m)
                hit = true;
        }
        if (pend == 0)
            break;
        a = e;
    }
    if (!hit)
        return;
    while (atomic_flag_test_and_set_explicit(&c->dma_lock, memory_order_acquire))
        ;
    if (c->ndma < 32) {
        c->dma[c->ndma].gpa = gpa;
        c->dma[c->ndma].len = len;
        c->ndma++;
    } else {
        c->dma_overflow = true;
    }
    atomic_flag_clear_explicit(&c->dma_lock, memory_order_release);
    atomic_fetch_or(&c->events, CPU_EVENT_SMC);
}

/* --- building --------------------------------------------------------------------- */
static void mark_code(struct cpu *c, struct code_page *cp, uint64_t ppage, unsigned lo,
                      unsigned hi)
{
    /* mark before reading the bytes: a concurrent device write then either
     * sees the mark or happened before our read. A page gaining its first
     * mark gets its TLB write entries flagged. Only this vCPU writes its
     * maps, each write a full barrier: marks it already sees are published,
     * and the fence (dear: it was most of a block's build) is not needed. */
    uint32_t mask = chunk_mask(lo, hi);
    if ((atomic_load_explicit(&cp->map, memory_order_relaxed) & mask) == mask)
        return;
    uint32_t old = atomic_fetch_or(&cp->map, mask);
    atomic_thread_fence(memory_order_seq_cst);
    if (!old)
        code_page_edge(c, ppage, true);
}

/* A page of a fresh arena costs a page fault at its first touch, and on a
 * host that is itself virtualized a fault is dear: a boot took ~37,000 of
 * them, most in the two arenas (the translator's twice, once per view).
 * The pages ahead of the allocation point are populated a step at a time,
 * one madvise each; a kernel without MADV_POPULATE_* leaves them to fault. */
#define POPULATE_STEP (1u << 20)

void arena_populate(uint8_t *base, size_t size, size_t *ready, size_t need, int advice)
{
    while (*ready < need && *ready < size) {
        size_t n = size - *ready < POPULATE_STEP ? size - *ready : POPULATE_STEP;
        (void)madvise(base + *ready, n, advice);
        *ready += n;
    }
}

static struct block *block_build(struct cpu *c, uint64_t va, uint64_t pa)
{
    if (c->arena_used + BLOCK_BYTES > c->arena_size || jit_full(c))
        block_flush_all(c);
    arena_populate(c->arena, c->arena_size, &c->arena_ready, c->arena_used + BLOCK_BYTES,
                   MADV_POPULATE_WRITE);
    struct block *b = (struct block *)(c->arena + c->arena_used);
    uint8_t *page = phys_ram_ptr(c, pa & ~0xfffull, 4096);
    if (!page)
        raise_error(c, NULL, "instruction fetch from non-RAM guest-physical address %#llx",
                    (unsigned long long)pa);
    struct code_page *cp = phys_code_page(c, pa);
    uint64_t ppage = pa & ~0xfffull, p2page = ~0ull;
    /* the pages' maps before the speculative marks below: with the new
     * block's range they are the maps to leave (a map always covers its
     * page's blocks) */
    uint32_t map_before = atomic_load(&cp->map), map2_before = 0;
    b->va = va;
    b->pa = pa;
    b->pa2 = ~0ull;
    b->mode = cpu_mode32(c);
    b->valid = true;
    bool rewritten = c->smc_short;
    unsigned off = 0, n = 0, max_insns = rewritten ? 1 : BLOCK_MAX_INSNS;
    struct code_page *cp2 = NULL;
    while (n < max_insns) {
        unsigned po = (unsigned)(pa & 0xfff) + off;
        if (po >= 4096)
            break;
        uint64_t cur = va + off;
        uint8_t buf[16];
        unsigned avail = 4096 - po;
        const uint8_t *bytes;
        uint64_t pa2 = ~0ull;
        mark_code(c, cp, ppage, po, avail >= 15 ? po + 15 : 4096);
        if (avail >= 15) {
            bytes = page + po;
            avail = 15;
        } else {
            memcpy(buf, page + po, avail);
            uint64_t va2 = (cur & ~0xfffull) + 4096;
            uint64_t p2;
            if (canonical(va2) && mmu_translate_exec(c, va2, &p2) == 0) {
                uint8_t *h2 = phys_ram_ptr(c, p2 & ~0xfffull, 4096);
                if (h2) {
                    cp2 = phys_code_page(c, p2);
                    p2page = p2 & ~0xfffull;
                    if (cp2 != cp)
                        map2_before = atomic_load(&cp2->map);
                    mark_code(c, cp2, p2page, 0, 15 - avail);
                    memcpy(buf + avail, h2, 15 - avail);
                    avail = 15;
                    pa2 = p2 & ~0xfffull;
                }
            }
            bytes = buf;
        }
        struct dec d;
        int r = decode_mode(bytes, avail, &d, b->mode);
        struct insn *rec = &b->insns[n];
        if (r == DEC_SHORT) {
            if (n > 0)
                break;
            /* the instruction needs bytes from a page we cannot fetch */
            uint64_t va2 = (cur & ~0xfffull) + 4096;
            uint64_t p2;
            if (!canonical(va2))
                raise_exc(c, NULL, EXC_GP, 0);
            int64_t e = mmu_translate_exec(c, va2, &p2);
            if (e > 0) {
                c->cr2 = va2;
                raise_exc(c, NULL, EXC_PF, (int)(e & 0xffff));
            }
            raise_error(c, NULL, "instruction straddles into non-RAM page at %#llx",
                        (unsigned long long)va2);
        }
        bool ends;
        if (r == DEC_OK) {
            bool ok;
            ends = build_insn(c, &d, cur, rec, &ok);
        } else {
            memset(rec, 0, sizeof(*rec));
            rec->fn = r == DEC_GP ? h_gp0_rec : r == DEC_NOIMPL ? h_noimpl32 : h_ud;
            rec->len = d.len ? d.len : 1;
            ends = true;
        }
        rec->off = (uint16_t)off;
        off += rec->len;
        n++;
        if (po + rec->len > 4096) {
            b->pa2 = pa2;
            ends = true;
        }
        if (ends)
            break;
    }
    fuse_block(b->insns, n);
    b->ninsn = (uint16_t)n;
    b->nbytes = (uint16_t)off;
    b->hptr = b->pa2 == ~0ull ? (uintptr_t)(page + (pa & 0xfff)) : 1;
    struct insn *endrec = &b->insns[n];
    memset(endrec, 0, sizeof(*endrec));
    endrec->fn = h_end;
    endrec->off = (uint16_t)off;
    c->arena_used += sizeof(struct block) + (n + 1) * sizeof(struct insn);
    c->arena_used = (c->arena_used + 63) & ~(size_t)63;
    /* link */
    unsigned h = hash_block(pa, va);
    b->hnext = c->hash[h];
    c->hash[h] = b;
    b->pnext[0] = b->pnext[1] = NULL;
    b->chain[0] = b->chain[1] = NULL;
    b->fn0 = NULL; /* jit_block sets it for what it translates; 32-bit blocks it leaves */
    b->host_entry = NULL;
    b->linked[0] = b->linked[1] = NULL;
    b->nincoming = b->next_out = 0;
    page_add_block(c, cp, ppage, b, 0);
    if (b->pa2 != ~0ull && cp2)
        page_add_block(c, cp2, b->pa2, b, 1);
    /* drop the speculative marks beyond what the block holds (without
     * walking the page's blocks: the map before this build plus the block) */
    unsigned lo = 0, hi = 0;
    block_range(b, ppage, &lo, &hi);
    atomic_store(&cp->map, map_before | chunk_mask(lo, hi));
    if (cp2 == cp) {
        page_recompute(c, cp, ppage); /* both halves on one page (an alias) */
    } else if (cp2) {
        lo = hi = 0;
        if (b->pa2 != ~0ull)
            block_range(b, p2page, &lo, &hi);
        uint32_t m2 = map2_before | chunk_mask(lo, hi);
        atomic_store(&cp2->map, m2);
        if (!m2)
            code_page_edge(c, p2page, false);
    }
    if (!b->mode)
        jit_block_later(c, b, rewritten); /* the translator knows 64-bit code only */
    c->stats.blocks_built++;
    return b;
}

struct block *block_find(struct cpu *c)
{
    uint64_t va = c->rip;
    uint32_t mode = cpu_mode32(c);
    if (unlikely(mode != c->exec_mode)) {
        /* 64-bit <-> 32-bit code: the jump cache and the chains then only
         * ever hold blocks of the mode they are entered in */
        if (mode && !c->seg[SEG_CS].db)
            raise_error(c, NULL, "16-bit code (CS.D=0) is not implemented");
        memset(c->jc, 0, sizeof(c->jc));
        c->exec_mode = mode;
        seg_update_bases(c); /* which segments add a base changed with it */
    }
    uint64_t pa;
    struct tlbe *e = itlb_entry(c, va);
    if (likely(e->tag_x == (va & ~TLBF_MASK))) {
        unsigned m = (unsigned)(c->itlb - &c->tlbs[0][0]) / TLB_SIZE;
        pa = c->tlbxs[m][TLB_INDEX(va)].pa | (va & 0xfff);
    } else {
        int64_t r = mmu_translate_exec(c, va, &pa);
        if (r < 0)
            raise_exc(c, NULL, EXC_GP, 0);
        if (r > 0) {
            c->cr2 = va;
            raise_exc(c, NULL, EXC_PF, (int)(r & 0xffff));
        }
    }
    unsigned j = jc_index(va);
    struct block *b = c->jc[j];
    if (!(b && b->valid && b->va == va && b->pa == pa && b->mode == mode)) {
        for (b = c->hash[hash_block(pa, va)]; b; b = b->hnext)
            if (b->pa == pa && b->va == va && b->valid && b->mode == mode)
                break;
        if (!b)
            b = block_build(c, va, pa);
        c->jc[j] = b;
    }
    c->smc_short = false; /* for the block after a rewritten one only */
    if (unlikely(b->pa2 != ~0ull)) {
        uint64_t p2;
        uint64_t va2 = (va & ~0xfffull) + 4096;
        if (mmu_translate_exec(c, va2, &p2) != 0 || (p2 & ~0xfffull) != b->pa2) {
            /* the second page changed: this block no longer applies */
            block_invalidate(c, b);
            c->jc[j] = NULL;
            b = block_build(c, va, pa);
            c->jc[j] = b;
        }
    }
    return b;
}
