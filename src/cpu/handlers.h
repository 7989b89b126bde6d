/* Handler tables the builder picks from. */
#ifndef EMBER_CPU_HANDLERS_H
#define EMBER_CPU_HANDLERS_H

#include "cpu/internal.h"

enum { ALU_RR, ALU_RM, ALU_RI, ALU_MR, ALU_MI, ALU_MRL, ALU_MIL, ALU_FORMS };

/* alu.c */
extern const insn_fn h_alu[ALU_FORMS][8][4];
extern const insn_fn h_test[4][4];      /* rr, mr, ri, mi */
extern const insn_fn h_unop[3][4][4];   /* [r, m, locked m][inc dec not neg][lg] */
extern const insn_fn h_mov[5][4];       /* rr rm mr ri mi */
extern const insn_fn h_ext[2][2][3][4];
extern const insn_fn h_lea[4];
extern const insn_fn h_xchg[2][4];
extern const insn_fn h_nop;
extern const insn_fn h_cbw[4], h_cwd[4];
extern const insn_fn h_cmc, h_clc, h_stc, h_cld, h_std, h_lahf, h_sahf;
extern const insn_fn h_setcc[2];
extern const insn_fn h_cmov[2][4];
extern const insn_fn h_bswap[4];
extern const insn_fn h_movbe[2][4];
extern const insn_fn h_movnti[4];
extern const insn_fn h_shift[2][4];
extern const insn_fn h_shd[2][4];
extern const insn_fn h_muldiv[2][4];
extern const insn_fn h_imul[4][4];
extern const insn_fn h_bt[4][4];        /* rr ri mr mi */
extern const insn_fn h_bitscan[2][4];
extern const insn_fn h_crc32[2];
extern const insn_fn h_adx[2];       /* ADCX/ADOX: r, m */
extern const insn_fn h_cmpxchg[2][4];
extern const insn_fn h_cmpxchg8b;
extern const insn_fn h_xadd[2][4];
extern const insn_fn h_xlat;
extern const insn_fn h_mov_sr[2];
insn_fn fast_mem_variant(insn_fn fn);

/* bmi.c: aux = lg | BMI_* << 2 */
enum { BMI_ANDN, BMI_BEXTR, BMI_BLSR, BMI_BLSMSK, BMI_BLSI, BMI_BZHI, BMI_TZCNT, BMI_PDEP,
       BMI_PEXT, BMI_MULX, BMI_SHLX, BMI_SARX, BMI_SHRX, BMI_RORX };
extern const insn_fn h_bmi[2]; /* r, m */

/* ctl.c */
extern const insn_fn h_push_r[4], h_pop_r[4], h_push_i[4], h_push_m[4], h_pop_m[4];
extern const insn_fn h_jcc[16];
extern const insn_fn h_jmp, h_call, h_ret, h_ret_i, h_jmp_r, h_jmp_m, h_call_r,
    h_call_m, h_loop[3], h_jrcxz, h_enter, h_enter32, h_leave, h_pushf, h_popf;
extern const insn_fn h_jmp16, h_call16, h_ret16;

/* stack32.c: the stack in 32-bit code */
extern const insn_fn h_push_r32, h_push_i32, h_push_m32, h_pop_r32, h_pop_m32, h_call32,
    h_ret32, h_jmp_r32, h_jmp_m32, h_call_r32, h_call_m32, h_leave32, h_pusha32, h_popa32;

/* legacy32.c: what only 32-bit code has */
extern const insn_fn h_bcd, h_into, h_bound, h_arpl, h_salc;

/* str.c: [op][lg]; op: movs cmps stos lods scas ins outs, [rep] */
extern const insn_fn h_str[7][4][3]; /* [op][lg][0 plain, 1 rep/repe, 2 repne] */

/* sys.c */
extern const insn_fn h_sys[OP_COUNT];

/* seg.c (in h_sys) */
HANDLER(h_jmpf);
HANDLER(h_jmpf_d);
HANDLER(h_callf);
HANDLER(h_callf_d);
HANDLER(h_retf);
HANDLER(h_iret);
HANDLER(h_mov_rs);
HANDLER(h_push_sreg);
HANDLER(h_pop_sreg);
HANDLER(h_lseg);

/* fpu.c */
extern const insn_fn h_hx, h_fwait, h_emms, h_maskmov, h_fxsave, h_fxrstor, h_ldmxcsr,
    h_stmxcsr;

#endif
