/* The translator's shared parts: a minimal x86-64 instruction encoder
 * (only the forms jit.c emits), and the instruction forms it knows
 * (jit_forms.c). Host registers are numbered as in ModRM (rax 0 .. r15 15);
 * memory operands are always [base + disp32]. Needs cpu/internal.h first. */
#ifndef EMBER_CPU_JIT_INTERNAL_H
#define EMBER_CPU_JIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11 };

/* Guest registers a run of host code keeps in host registers: r8..r11
 * first (free across a run: nothing but exits leaves host code, and every
 * exit stores the changed ones back first), then rbx and r12..r15. A run
 * using any of those five ("dirty", rc_dirty) saves all five in the vCPU
 * where C enters it and restores them where it leaves for C; one dirty
 * run chaining into another jumps past the save (struct block's
 * host_entry), so host code that stays in host code pays for them once.
 * A clean run keeps C's values there: its host_entry restores them first.
 * A dry pass over the run counts each register's uses; the real pass
 * caches the most used. */
#define RC_SLOTS 9
static const uint8_t rc_slot_host[RC_SLOTS] = {R8, R9, R10, R11, RBX, 12, 13, 14, 15};
static inline bool rc_callee_saved(unsigned h)
{
    return h == RBX || h >= 12;
}
static inline unsigned rc_callee_index(unsigned h) /* in c->jit_callee_saved */
{
    return h == RBX ? 0 : h - 11;
}
struct regcache {
    int8_t host[16];  /* guest register -> host register, or -1: in c->r[] */
    uint16_t dirty;   /* guest registers changed since the run loaded them */
    bool counting;    /* the dry pass: count, do not cache */
    uint16_t high;    /* registers used as AH..BH (never cached) */
    uint16_t uses[16];
};

struct emit {
    uint8_t *p;     /* next byte, in the writable view */
    uint8_t *end;
    intptr_t delta; /* executable view - writable view */
    struct regcache *rc; /* NULL: every guest register in memory */
    const uint8_t *to_c; /* the arena's stubs (jit.c: emit_to_c_stubs) */
};

/* The arena's shared ways out of a dirty run to C, after the five
 * callee-saved registers are restored: offsets from e->to_c. */
enum { TO_C_JMP_RAX = 0, TO_C_JMP_RECORD = 48, TO_C_RET = 96, TO_C_STUBS_SIZE = 144 };

/* The host register caching guest register 'g' when an operation on it
 * at 2^lg bytes can work on that register in place: 32 or 64 bits (a
 * 32-bit host op zero-extends as the guest's does), and not in the dry
 * pass, whose uses then count as the copying forms' do. -1 otherwise. */
static inline int in_place(struct emit *e, unsigned g, unsigned lg)
{
    if (lg < 2 || !e->rc || e->rc->counting)
        return -1;
    return e->rc->host[g];
}

static inline void mark_dirty(struct emit *e, unsigned g)
{
    e->rc->dirty |= (uint16_t)(1u << g);
}

static inline void e8(struct emit *e, unsigned v)
{
    *e->p++ = (uint8_t)v;
}

static inline void e32(struct emit *e, uint32_t v)
{
    memcpy(e->p, &v, 4);
    e->p += 4;
}

static inline void e64(struct emit *e, uint64_t v)
{
    memcpy(e->p, &v, 8);
    e->p += 8;
}

/* Prefixes for operand size 'sz' (0 byte, 1 word, 2 dword, 3 qword). A byte
 * operand in spl..dil needs a REX to mean that register and not ah..bh. */
static inline void prefix(struct emit *e, unsigned sz, unsigned reg, unsigned rm, bool rm_is_reg)
{
    if (sz == 1)
        e8(e, 0x66);
    unsigned rex = 0x40 | (sz == 3 ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((rm >> 3) & 1);
    bool byte_hi = sz == 0 && ((reg >= 4 && reg < 8) || (rm_is_reg && rm >= 4 && rm < 8));
    if (rex != 0x40 || byte_hi)
        e8(e, rex);
}

static inline void opcode(struct emit *e, unsigned opc)
{
    if (opc > 0xff)
        e8(e, opc >> 8); /* 0x0Fxx */
    e8(e, opc & 0xff);
}

/* op reg, rm (register-direct) */
static inline void op_rr(struct emit *e, unsigned sz, unsigned opc, unsigned reg, unsigned rm)
{
    prefix(e, sz, reg, rm, true);
    opcode(e, opc);
    e8(e, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

/* op reg, [base + disp32] */
static inline void op_rm(struct emit *e, unsigned sz, unsigned opc, unsigned reg, unsigned base,
                         int32_t disp)
{
    prefix(e, sz, reg, base, false);
    opcode(e, opc);
    e8(e, 0x80 | (reg & 7) << 3 | (base & 7));
    if ((base & 7) == RSP)
        e8(e, 0x24);
    e32(e, (uint32_t)disp);
}

/* lea reg, [base + index * 2^scale + disp32] (64-bit; index RSP: none) */
static inline void lea_sib(struct emit *e, unsigned reg, unsigned base, unsigned index,
                           unsigned scale, int32_t disp)
{
    e8(e, 0x48 | ((reg >> 3) & 1) << 2 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1));
    e8(e, 0x8d);
    e8(e, 0x84 | (reg & 7) << 3);
    e8(e, scale << 6 | (index & 7) << 3 | (base & 7));
    e32(e, (uint32_t)disp);
}

/* Group-2 shift (C1 /ext ib) of a 64-bit register */
static inline void shift_ri(struct emit *e, unsigned ext, unsigned reg, unsigned count)
{
    op_rr(e, 3, 0xc1, ext, reg);
    e8(e, count);
}

/* Group-1 ALU (81 /ext id) with a sign-extended imm32 */
static inline void alu_ri(struct emit *e, unsigned sz, unsigned ext, unsigned reg, int32_t imm)
{
    op_rr(e, sz, 0x81, ext, reg);
    e32(e, (uint32_t)imm);
}

static inline bool fits_s32(uint64_t v)
{
    return (uint64_t)(int64_t)(int32_t)v == v;
}

static inline void mov_imm(struct emit *e, unsigned reg, uint64_t v)
{
    if (v <= 0xffffffffu) { /* B8+r id: zero-extends */
        if (reg >= 8)
            e8(e, 0x41);
        e8(e, 0xb8 + (reg & 7));
        e32(e, (uint32_t)v);
    } else if (fits_s32(v)) {
        op_rr(e, 3, 0xc7, 0, reg); /* C7 /0 id: sign-extends */
        e32(e, (uint32_t)v);
    } else {
        e8(e, 0x48 | ((reg >> 3) & 1));
        e8(e, 0xb8 + (reg & 7));
        e64(e, v);
    }
}

/* jcc rel32 with a displacement to patch; returns where it goes */
static inline uint8_t *jcc32(struct emit *e, unsigned cc)
{
    e8(e, 0x0f);
    e8(e, 0x80 | cc);
    e32(e, 0);
    return e->p - 4;
}

/* jmp rel32 with a displacement to patch */
static inline uint8_t *jmp32(struct emit *e)
{
    e8(e, 0xe9);
    e32(e, 0);
    return e->p - 4;
}

static inline void patch32(uint8_t *at, const uint8_t *target)
{
    int32_t rel = (int32_t)(target - (at + 4));
    memcpy(at, &rel, 4);
}

#define CPU_OFF(field) ((int32_t)offsetof(struct cpu, field))

/* rcx = &table[TLB_INDEX(rax)], 'table' the cpu field CPU_OFF(tlb) (the
 * current mode's data entries) or CPU_OFF(itlb) (its instruction ones):
 * the index pre-shifted to the entry's size. */
static inline void emit_tlb_entry(struct emit *e, int32_t table)
{
    op_rr(e, 3, 0x89, RAX, RCX);
    shift_ri(e, 5, RCX, 12 - 5);
    alu_ri(e, 2, 4, RCX, (TLB_SIZE - 1) << 5);
    op_rm(e, 3, 0x03, RCX, RDI, table);
}

/* Call C function 'fn'(c) from host code: rdi kept, rax its result. At a
 * handler's entry rsp is 8 mod 16, so the push aligns the call. */
static inline void emit_call_c(struct emit *e, const void *fn)
{
    e8(e, 0x57); /* push rdi */
    mov_imm(e, RAX, (uint64_t)(uintptr_t)fn);
    e8(e, 0xff); /* call rax */
    e8(e, 0xd0);
    e8(e, 0x5f); /* pop rdi */
}

/* The same in the middle of a run: the cached registers r8..r11 kept
 * (five pushes keep the call aligned). */
static inline void emit_call_c_keeping_cache(struct emit *e, const void *fn)
{
    for (unsigned r = R8; r <= R11; r++) {
        e8(e, 0x41);
        e8(e, 0x50 + (r & 7)); /* push r8..r11 */
    }
    emit_call_c(e, fn);
    for (unsigned r = R11 + 1; r-- > R8;) {
        e8(e, 0x41);
        e8(e, 0x58 + (r & 7)); /* pop r11..r8 */
    }
}

/* jit_chain.c: retire record 'idx' (a direct transfer to 't') and enter
 * the block in chain slot 'slot' when chain_ok() allows and it is the
 * valid block for 't'; else the jump cache, else back to the run loop. */
void emit_chain(struct emit *e, unsigned idx, uint64_t t, struct block **slot);
void emit_chain_rax(struct emit *e, unsigned idx, struct block **slot);
void emit_self_loop(struct emit *e, unsigned idx, const struct block *b, uint8_t *loop_at);
void emit_linked_entries(struct emit *e, const struct block *b, uint8_t *c_entry,
                         uint8_t *host_entry, uint8_t *linked[2]);

/* --- instruction forms (jit_forms.c) -------------------------------------------- */
enum {
    K_NONE, K_MOV_RR, K_MOV_RM, K_MOV_MR, K_MOV_RI, K_MOV_MI, K_ALU_RR, K_ALU_RI, K_ALU_RM,
    K_CMP_MR, K_CMP_MI, K_TEST_RR, K_TEST_RI, K_TEST_MR, K_TEST_MI, K_LEA, K_PUSH, K_POP,
    K_EXT_R, K_EXT_M, K_SHIFT_RI, K_IMUL_RR, K_IMUL_RI, K_SETCC, K_CMOV, K_INCDEC, K_NOP,
    K_ALU_MR, K_ALU_MI, /* ADD/OR/AND/SUB/XOR into memory (read-modify-write) */
    K_NOT, K_NEG,       /* of a register */
    K_PUSH_I,           /* PUSH imm (64-bit) */
    K_PUSH_M,           /* PUSH m64, its address not from RSP */
};

struct jform {
    insn_fn fn;
    uint8_t kind, op, lg, slg, sx;
};

void jit_forms_init(void);
/* The form of record 'rec' (NULL: not translated; a fused pair's: NULL) */
const struct jform *form_of(const struct insn *rec);
/* A fused compare-and-branch's first half, its Jcc's condition in *cond */
const struct jform *fused_form(const struct insn *rec, unsigned *cond);
bool is_carry_op(const struct jform *f);
const struct jform *flags_writer(const struct jform *f, const struct jform *w);
const struct jform *usable(const struct jform *f, const struct jform *w);
void flags_dead_after(const struct block *b, bool *dead);
void flags_deferred(const struct block *b, const bool *dead, bool *defer, uint8_t *end);

/* --- shared emitters (jit.c) and flag consumers (jit_flags.c) -------------------- */
#define JIT_INSN_MAX 512 /* bytes of host code one record can take, its exits included */
#define JIT_BLOCK_MAX ((BLOCK_MAX_INSNS + 1) * JIT_INSN_MAX)
void emit_ea(struct emit *e, const struct insn *rec);
uint8_t *emit_probe(struct emit *e, unsigned lg, bool write);
uint8_t *emit_probe_len(struct emit *e, unsigned len, bool write);
void emit_stack_group(struct emit *e, const struct insn *rec, unsigned n, bool push,
                      uint8_t *miss[2]);
void emit_store(struct emit *e, unsigned h, unsigned lg);
void emit_insn(struct emit *e, const struct insn *rec, const struct jform *f, bool dead,
               const struct jform *w, uint8_t **miss);
void emit_cache_load(struct emit *e, const struct regcache *rc);
void emit_cache_store(struct emit *e, const struct regcache *rc, uint16_t dirty);
bool rc_dirty(const struct regcache *rc);
void emit_save_callee(struct emit *e);
void emit_restore_callee(struct emit *e);
void emit_to_c(struct emit *e, unsigned how);
void emit_to_c_stubs(uint8_t *at);
void emit_host_flags(struct emit *e, unsigned op, unsigned lg);
void rd_greg(struct emit *e, unsigned h, unsigned g, unsigned lg);
void wr_greg(struct emit *e, unsigned g, unsigned h, unsigned lg);
void emit_mem_load(struct emit *e, const struct insn *rec, unsigned h, unsigned lg,
                   uint8_t **miss);
void emit_carry_op(struct emit *e, const struct insn *rec, const struct jform *f,
                   const struct jform *w, bool dead, uint8_t **miss);
void emit_branch_flags(struct emit *e, const struct jform *ff);
void emit_lone_jcc_flags(struct emit *e, const struct jform *w);
void emit_incdec(struct emit *e, const struct insn *rec, const struct jform *f,
                 const struct jform *w, bool dead);
void emit_cond_reader(struct emit *e, const struct insn *rec, const struct jform *f,
                      const struct jform *w);
void emit_flags_of(struct emit *e, const struct insn *rec, const struct jform *f);

#endif
