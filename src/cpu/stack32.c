/* The stack in 32-bit code (a 64-bit kernel's 32-bit processes, flat
 * segments): PUSH/POP, near CALL/RET, indirect JMP/CALL, LEAVE and
 * PUSHA/POPA (ENTER: ctl.c's, with 32-bit wrapping) with 4-byte slots (2 with a 66 prefix) and ESP, which wraps
 * at 4 GiB. A 16-bit stack (SS.B = 0)
 * is not run. As in ctl.c, nothing is committed before the last access that
 * can fault. The translator leaves 32-bit blocks to these handlers. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

static inline uint32_t esp_of(struct cpu *c, const struct insn *i)
{
    if (unlikely(!c->seg[SEG_SS].db))
        raise_unsupported(c, i, "a 16-bit stack (SS.B = 0) in 32-bit code");
    return (uint32_t)c->r[4];
}

static inline void push32(struct cpu *c, const struct insn *i, uint64_t v)
{
    uint32_t sp = esp_of(c, i) - 4;
    st_ss(c, i, sp, (uint32_t)v, 2);
    c->r[4] = sp;
}

static HANDLER(push_r32)
{
    push32(c, i, c->r[i->reg]);
    NEXT;
}

static HANDLER(push_i32)
{
    push32(c, i, i->imm);
    NEXT;
}

static HANDLER(push_m32)
{
    uint64_t v = ld32(c, i, ea(c, i));
    push32(c, i, v);
    NEXT;
}

static HANDLER(pop_r32)
{
    uint32_t sp = esp_of(c, i);
    uint64_t v = ld_ss(c, i, sp, 2);
    c->r[4] = (uint32_t)(sp + 4);
    c->r[i->reg] = (uint32_t)v; /* POP ESP: the popped value wins */
    NEXT;
}

static HANDLER(pop_m32)
{
    uint32_t sp = esp_of(c, i);
    uint64_t v = ld_ss(c, i, sp, 2);
    /* the address is computed with ESP already incremented */
    c->r[4] = (uint32_t)(sp + 4);
    uint64_t va = ea(c, i);
    c->r[4] = sp;
    st32(c, i, va, v);
    c->r[4] = (uint32_t)(sp + 4);
    NEXT;
}

static HANDLER(call32)
{
    push32(c, i, next_rip(c, i));
    retire_to(c, i, i->imm);
}

static HANDLER(ret32)
{
    uint32_t sp = esp_of(c, i);
    uint64_t t = ld_ss(c, i, sp, 2);
    c->r[4] = (uint32_t)(sp + 4 + i->imm);
    retire_to(c, i, t);
}

static HANDLER(jmp_r32)
{
    retire_to(c, i, (uint32_t)c->r[i->base]);
}

static HANDLER(jmp_m32)
{
    retire_to(c, i, ld32(c, i, ea(c, i)));
}

static HANDLER(call_r32)
{
    uint32_t t = (uint32_t)c->r[i->base];
    push32(c, i, next_rip(c, i));
    retire_to(c, i, t);
}

static HANDLER(call_m32)
{
    uint32_t t = (uint32_t)ld32(c, i, ea(c, i));
    push32(c, i, next_rip(c, i));
    retire_to(c, i, t);
}

static HANDLER(leave32)
{
    uint32_t bp = (uint32_t)c->r[5];
    uint64_t v = ld_ss(c, i, bp, 2);
    c->r[4] = (uint32_t)(bp + 4);
    c->r[5] = (uint32_t)v;
    NEXT;
}

/* PUSHA: EAX ECX EDX EBX, ESP as it was, EBP ESI EDI; the highest slot is
 * written first, as the pushes one by one would. */
static HANDLER(pusha32)
{
    unsigned lg = i->aux, n = 1u << lg;
    uint32_t sp = esp_of(c, i);
    for (unsigned r = 0; r < 8; r++)
        st_ss(c, i, sp - (r + 1) * n, c->r[r], lg);
    c->r[4] = (uint32_t)(sp - 8 * n);
    NEXT;
}

/* POPA: the reverse, the saved ESP skipped; every load before any write */
static HANDLER(popa32)
{
    unsigned lg = i->aux, n = 1u << lg;
    uint32_t sp = esp_of(c, i);
    uint64_t v[8];
    for (unsigned r = 0; r < 8; r++)
        v[7 - r] = ld_ss(c, i, (uint32_t)(sp + r * n), lg);
    for (unsigned r = 0; r < 8; r++) {
        if (r == 4)
            continue;
        if (lg == 2)
            c->r[r] = (uint32_t)v[r];
        else
            SET16(r, (uint16_t)v[r]);
    }
    c->r[4] = (uint32_t)(sp + 8 * n);
    NEXT;
}

const insn_fn h_pusha32 = pusha32, h_popa32 = popa32;
const insn_fn h_push_r32 = push_r32, h_push_i32 = push_i32, h_push_m32 = push_m32,
              h_pop_r32 = pop_r32, h_pop_m32 = pop_m32, h_call32 = call32, h_ret32 = ret32,
              h_jmp_r32 = jmp_r32, h_jmp_m32 = jmp_m32, h_call_r32 = call_r32,
              h_call_m32 = call_m32, h_leave32 = leave32;
