/* Helpers shared by the integer-instruction files (alu.c, mulshift.c):
 * running a host instruction on the guest's flags, and the read-modify-write
 * access pattern. Private to src/cpu. */
#ifndef EMBER_CPU_ALU_INTERNAL_H
#define EMBER_CPU_ALU_INTERNAL_H

#include "cpu/internal.h"

/* Run host code with the guest's arithmetic flags loaded, capturing them
 * after. The stack pointer moves below the red zone first. */
#define HOST_PRE "sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t"
#define HOST_POST "\n\tpushfq\n\tpop %[f]\n\tadd $128, %%rsp"

static inline uint64_t host_flags_in(const struct cpu *c)
{
    return (cc_flags(c) & F_ARITH) | 2;
}

#define host_load hload
#define host_store hstore

/* Writable host pointer for an RMW access (fast path), or NULL. */
static inline void *rmw_ptr(struct cpu *c, uint64_t va, unsigned lg)
{
    struct tlbe *e = tlb_entry(c, va);
    if (likely(e->tag_w == ((va + (1u << lg) - 1) & ~TLBF_MASK)))
        return (void *)(va + e->addend);
    return NULL;
}

#define RMW_BEGIN(lg)                                                                   \
    uint64_t va = ea(c, i);                                                             \
    void *hp = rmw_ptr(c, va, lg);                                                      \
    uint64_t a = hp ? host_load(hp, lg) : mem_rmw_read_slow(c, i, va, 1u << (lg), ACC_W)
#define RMW_END(lg, v)                                                                  \
    do {                                                                                \
        if (hp)                                                                         \
            host_store(hp, v, lg);                                                      \
        else                                                                            \
            mem_write_slow(c, i, va, v, 1u << (lg), ACC_W);                             \
    } while (0)

#endif
