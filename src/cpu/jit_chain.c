/* Leaving a translated block for the next one in host code (jit.c emits
 * it at block ends): the checks chain_next_slot() makes in the
 * interpreter, with the same slots, so that the interpreter and host code
 * link and follow each other's chains. */
#include <stddef.h>

#include "cpu/internal.h"
#include "cpu/jit_internal.h"

/* Called from host code when the slot did not hold the block, after the
 * retire and the event and limit checks: the jump cache, as
 * chain_next_slot() looks there, linking the slot on a hit; on a miss the
 * run loop finds the block and links it. */
static struct block *jit_chain_slow(struct cpu *c, struct block **slot)
{
    uint64_t t = c->rip;
    struct tlbe *e = itlb_entry(c, t);
    struct block *n = c->jc[jc_index(t)];
    if (e->tag_x != (t & ~TLBF_MASK) || !n || n->va != t || n->hptr != t + e->addend ||
        !n->valid) {
        c->link_slot = slot;
        return NULL;
    }
    if (slot)
        *slot = n;
    c->stats.chained++;
    c->cur_block = n;
    c->blk_va = t;
    c->blk_first = n->insns;
    c->rflags &= ~(uint64_t)F_RF;
    return n;
}

/* Jump to block 'blk''s first record (rsi = its address): from a dirty
 * run to the block's host_entry when it has one, the callee-saved
 * registers left as they are; else as C enters it. Clobbers rcx. */
static void emit_jump_into(struct emit *e, unsigned blk)
{
    if (rc_dirty(e->rc)) {
        op_rm(e, 3, 0x8b, RCX, blk, (int32_t)offsetof(struct block, host_entry));
        op_rr(e, 3, 0x85, RCX, RCX);
        uint8_t *none = jcc32(e, 0x4);
        e8(e, 0xff); /* jmp rcx */
        e8(e, 0xe1);
        patch32(none, e->p);
    }
    emit_to_c(e, TO_C_JMP_RECORD);
}

/* chain_next_slot()'s bookkeeping of entering block rdx at guest address
 * rax; rsi = its first record. */
static void emit_enter_state(struct emit *e)
{
    op_rm(e, 3, 0x83, 0, RDI, CPU_OFF(stats.chained));
    e8(e, 1);
    op_rm(e, 3, 0x89, RDX, RDI, CPU_OFF(cur_block));
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(blk_va));
    op_rm(e, 3, 0x8d, RSI, RDX, (int32_t)offsetof(struct block, insns));
    op_rm(e, 3, 0x89, RSI, RDI, CPU_OFF(blk_first));
    op_rm(e, 3, 0x81, 4, RDI, CPU_OFF(rflags)); /* the instruction completed: RF = 0 */
    e32(e, ~(uint32_t)F_RF);
}

/* Enter block rdx at guest address rax, as chain_next_slot()'s 'enter'. */
static void emit_enter(struct emit *e)
{
    emit_enter_state(e);
    emit_jump_into(e, RDX);
}

/* Enter the block the jump cache holds for guest address rax when the
 * current TLB maps rax executable to the host page it was built from (as
 * chain_next_slot() checks); else go on below. Clobbers rcx, rdx, rsi, r8. */
static void emit_follow_jump_cache(struct emit *e)
{
    emit_tlb_entry(e, CPU_OFF(itlb));
    op_rr(e, 3, 0x89, RAX, RDX);
    alu_ri(e, 3, 4, RDX, (int32_t)~TLBF_MASK);
    op_rm(e, 3, 0x3b, RDX, RCX, (int32_t)offsetof(struct tlbe, tag_x));
    uint8_t *not_x = jcc32(e, 0x5);
    op_rm(e, 3, 0x8b, R8, RCX, (int32_t)offsetof(struct tlbe, addend));
    op_rr(e, 3, 0x01, RAX, R8); /* r8 = the host address of rax */
    op_rr(e, 3, 0x89, RAX, RCX); /* rcx = &c->jc[jc_index(rax)] */
    shift_ri(e, 5, RCX, 12);
    op_rr(e, 3, 0x31, RAX, RCX);
    alu_ri(e, 2, 4, RCX, JC_SIZE - 1);
    shift_ri(e, 4, RCX, 3);
    op_rr(e, 3, 0x01, RDI, RCX);
    op_rm(e, 3, 0x8b, RDX, RCX, CPU_OFF(jc));
    op_rr(e, 3, 0x85, RDX, RDX);
    uint8_t *empty = jcc32(e, 0x4);
    op_rm(e, 3, 0x39, RAX, RDX, (int32_t)offsetof(struct block, va));
    uint8_t *other = jcc32(e, 0x5);
    op_rm(e, 3, 0x39, R8, RDX, (int32_t)offsetof(struct block, hptr));
    uint8_t *moved = jcc32(e, 0x5);
    op_rm(e, 0, 0x80, 7, RDX, (int32_t)offsetof(struct block, valid));
    e8(e, 0);
    uint8_t *stale = jcc32(e, 0x4);
    emit_enter(e);
    patch32(not_x, e->p);
    patch32(empty, e->p);
    patch32(other, e->p);
    patch32(moved, e->p);
    patch32(stale, e->p);
}

/* Block b's linked entries (struct block), after its code: what
 * emit_enter does, with b's own addresses as constants, then on to its
 * first record as C enters it ([0]) or its host_entry ([1]); both in the
 * writable view. */
void emit_linked_entries(struct emit *e, const struct block *b, uint8_t *c_entry,
                         uint8_t *host_entry, uint8_t *linked[2])
{
    for (unsigned k = 0; k < 2; k++) {
        linked[k] = e->p;
        mov_imm(e, RDX, (uint64_t)(uintptr_t)b);
        mov_imm(e, RAX, b->va);
        emit_enter_state(e);
        patch32(jmp32(e), k ? host_entry : c_entry);
    }
}

/* Called from host code: the direct jump at 'site' (a rel32 in the
 * writable view) now goes to block b's linked entry for a run that is
 * 'dirty' or not. Each block keeps the last four such jumps, to undo them
 * when it is invalidated (jit_unlink); a fifth undoes the oldest. */
static void jit_link_direct(struct cpu *c, uint8_t *site, uint64_t dirty, struct block *b)
{
    unsigned k = b->nincoming;
    if (k < ARRAY_SIZE(b->incoming)) {
        b->nincoming++;
    } else {
        k = b->next_out;
        b->next_out = (uint8_t)((k + 1) % ARRAY_SIZE(b->incoming));
        memset(b->incoming[k], 0, 4);
    }
    b->incoming[k] = site;
    const uint8_t *site_rx = site + (c->jit_rx - c->jit_rw);
    int32_t rel = (int32_t)((const uint8_t *)b->linked[dirty != 0] - (site_rx + 4));
    memcpy(site, &rel, 4);
}

/* Block b is invalid: the direct jumps to it go back to their chain
 * slot's checks (a rel32 of 0: the code right after the jump). */
void jit_unlink(struct block *b)
{
    for (unsigned k = 0; k < b->nincoming; k++)
        memset(b->incoming[k], 0, 4);
    b->nincoming = b->next_out = 0;
}

/* Enter the block in 'slot' (rax = its address) if it is the valid one,
 * first making the direct jump at 'site' go to it when it has a linked
 * entry (then on through that jump); else go on below with rsi = slot. */
static void emit_follow_slot(struct emit *e, struct block **slot, uint8_t *site)
{
    mov_imm(e, RCX, (uint64_t)(uintptr_t)slot);
    op_rm(e, 3, 0x8b, RDX, RCX, 0);
    op_rr(e, 3, 0x85, RDX, RDX);
    uint8_t *empty = jcc32(e, 0x4);
    op_rm(e, 3, 0x39, RAX, RDX, (int32_t)offsetof(struct block, va));
    uint8_t *other = jcc32(e, 0x5);
    op_rm(e, 0, 0x80, 7, RDX, (int32_t)offsetof(struct block, valid));
    e8(e, 0);
    uint8_t *stale = jcc32(e, 0x4);
    bool dirty = rc_dirty(e->rc);
    op_rm(e, 3, 0x83, 7, RDX, (int32_t)(offsetof(struct block, linked) + 8 * dirty));
    e8(e, 0); /* cmp qword [rdx + linked[dirty]], 0 */
    uint8_t *unlinkable = jcc32(e, 0x4);
    op_rr(e, 3, 0x89, RDX, RCX);
    mov_imm(e, RSI, (uint64_t)(uintptr_t)site);
    mov_imm(e, RDX, dirty);
    emit_call_c(e, (const void *)jit_link_direct);
    patch32(jmp32(e), site - 1);
    patch32(unlinkable, e->p);
    emit_enter(e);
    patch32(empty, e->p);
    patch32(other, e->p);
    patch32(stale, e->p);
    op_rr(e, 3, 0x89, RCX, RSI);
}

/* A direct transfer to 't' by record 'idx' of block 'b', through the chain
 * slot 'slot' (b->chain[] or a Jcc record's link; NULL: 't' is in another
 * page, the jump cache only): retire the instruction
 * as retire_to() does, then, when no event is pending, the instruction
 * limit is not reached and the slot holds the valid block for 't', enter
 * that block's first record as chain_next_slot() does. A slot without
 * it: the jump cache (jit_chain_slow). Otherwise return to the run loop
 * (cpu_run called the first handler; every handler and run since
 * jumped), which takes events and links the slot it is left. */
void emit_chain(struct emit *e, unsigned idx, uint64_t t, struct block **slot)
{
    mov_imm(e, RAX, t);
    emit_chain_rax(e, idx, slot);
}

/* The same for the target in rax: a slot, or with none the jump cache in
 * host code, then (with a slot) jit_chain_slow. */
void emit_chain_rax(struct emit *e, unsigned idx, struct block **slot)
{
    op_rm(e, 3, 0x89, RAX, RDI, CPU_OFF(rip));
    op_rm(e, 3, 0x81, 0, RDI, CPU_OFF(icount));
    e32(e, idx + 1);
    /* chain_ok(): an event stops chaining unless it is only an
     * interrupt while IF = 0 */
    op_rm(e, 2, 0x8b, RCX, RDI, CPU_OFF(events));
    op_rr(e, 2, 0x85, RCX, RCX);
    uint8_t *quiet = jcc32(e, 0x4);
    op_rr(e, 2, 0xf7, 0, RCX); /* test ecx, ~INTERRUPT */
    e32(e, ~(uint32_t)CPU_EVENT_INTERRUPT);
    uint8_t *busy = jcc32(e, 0x5);
    op_rm(e, 3, 0xf7, 0, RDI, CPU_OFF(rflags)); /* test qword [rflags], IF */
    e32(e, F_IF);
    uint8_t *busy_if = jcc32(e, 0x5);
    patch32(quiet, e->p);
    op_rm(e, 3, 0x8b, RCX, RDI, CPU_OFF(icount));
    op_rm(e, 3, 0x3b, RCX, RDI, CPU_OFF(limit_at));
    uint8_t *limit = jcc32(e, 0x3); /* jae */
    if (!slot) { /* the jump cache; a miss leaves it to the run loop */
        emit_follow_jump_cache(e);
        op_rm(e, 3, 0xc7, 0, RDI, CPU_OFF(link_slot));
        e32(e, 0);
        uint8_t *out = jmp32(e);
        patch32(busy, e->p);
        patch32(busy_if, e->p);
        patch32(limit, e->p);
        patch32(out, e->p);
        emit_to_c(e, TO_C_RET); /* to the run loop */
        return;
    }
    uint8_t *site = jmp32(e); /* rel32 0 until jit_link_direct makes it direct */
    emit_follow_slot(e, slot, site);
    emit_call_c(e, (const void *)jit_chain_slow);
    op_rr(e, 3, 0x85, RAX, RAX);
    uint8_t *none = jcc32(e, 0x4);
    op_rm(e, 3, 0x8d, RSI, RAX, (int32_t)offsetof(struct block, insns));
    emit_jump_into(e, RAX);
    patch32(none, e->p);
    patch32(busy, e->p);
    patch32(busy_if, e->p);
    patch32(limit, e->p);
    emit_to_c(e, TO_C_RET); /* to the run loop */
}


/* A block whose run (from its first record) ends in a branch back to
 * its own start: the checks emit_chain_rax makes (an event, the
 * instruction limit) and the block still valid, then on at 'loop_at' — the
 * run's code after its entry, with the cached registers still in host
 * registers. When a check fails it goes on below, where the caller leaves
 * the run for the run loop. */
void emit_self_loop(struct emit *e, unsigned idx, const struct block *b, uint8_t *loop_at)
{
    op_rm(e, 3, 0x81, 0, RDI, CPU_OFF(icount));
    e32(e, idx + 1);
    op_rm(e, 2, 0x8b, RCX, RDI, CPU_OFF(events));
    op_rr(e, 2, 0x85, RCX, RCX);
    uint8_t *quiet = jcc32(e, 0x4);
    op_rr(e, 2, 0xf7, 0, RCX); /* test ecx, ~INTERRUPT */
    e32(e, ~(uint32_t)CPU_EVENT_INTERRUPT);
    uint8_t *busy = jcc32(e, 0x5);
    op_rm(e, 3, 0xf7, 0, RDI, CPU_OFF(rflags)); /* test qword [rflags], IF */
    e32(e, F_IF);
    uint8_t *busy_if = jcc32(e, 0x5);
    patch32(quiet, e->p);
    op_rm(e, 3, 0x8b, RCX, RDI, CPU_OFF(icount));
    op_rm(e, 3, 0x3b, RCX, RDI, CPU_OFF(limit_at));
    uint8_t *limit = jcc32(e, 0x3); /* jae */
    mov_imm(e, RCX, (uint64_t)(uintptr_t)&b->valid);
    op_rm(e, 0, 0x80, 7, RCX, 0); /* cmp byte [rcx], 0 */
    e8(e, 0);
    uint8_t *stale = jcc32(e, 0x4);
    op_rm(e, 3, 0x83, 0, RDI, CPU_OFF(stats.chained));
    e8(e, 1);
    op_rm(e, 3, 0x81, 4, RDI, CPU_OFF(rflags)); /* the instruction completed: RF = 0 */
    e32(e, ~(uint32_t)F_RF);
    patch32(jmp32(e), loop_at);
    patch32(busy, e->p);
    patch32(busy_if, e->p);
    patch32(limit, e->p);
    patch32(stale, e->p);
}
