/* From a decoded instruction to its record: pick the specialised handler
 * (operation x operand form x size) and lay out the operands. */
#include "cpu/internal.h"
#include "cpu/handlers.h"

/* Byte offset in r[] of an 8-bit register: AH..BH without REX. */
static uint8_t r8(unsigned n, bool rex)
{
    if (!rex && n >= 4 && n < 8)
        return (uint8_t)((n - 4) * 8 + 1);
    return (uint8_t)(n * 8);
}

/* The segment whose base a memory operand adds: in 64-bit code FS or GS
 * when named, else none (SEG_NONE); in 32-bit code the one named, else
 * 'dflt'. */
static unsigned mem_seg(const struct dec *d, unsigned dflt)
{
    if (d->mode32)
        return d->seg != SEG_NONE ? d->seg : dflt;
    return (d->seg == SEG_FS || d->seg == SEG_GS) ? d->seg : SEG_NONE;
}

/* MF_ADDR32, and MF_ADDR16 with it, for the address size 0x67 gave */
static uint8_t addr_flags(const struct dec *d)
{
    return (uint8_t)((d->p67 ? MF_ADDR32 : 0) | (d->a16 ? MF_ADDR16 : 0));
}

static void set_mem(const struct dec *d, uint64_t va, struct insn *rec, bool keep_seg)
{
    rec->base = d->base;
    rec->index = d->index;
    /* FS/GS add a base; SS (explicit, or RSP/RBP as base) faults with #SS;
     * in 64-bit code other overrides are ignored (measured) */
    bool stack = !d->riprel && (d->base == 4 || d->base == 5);
    unsigned seg = keep_seg ? mem_seg(d, stack ? SEG_SS : SEG_DS) : SEG_NONE;
    if (seg == SEG_NONE && stack)
        seg = SEG_SS;
    rec->mf = (uint8_t)(d->scale | (seg << MF_SEG_SHIFT) | addr_flags(d));
    if (d->riprel) {
        rec->base = NOREG;
        rec->index = NOREG;
        uint64_t next = va + d->len;
        rec->disp = (int64_t)(next + (uint64_t)d->disp);
        if (d->p67)
            rec->disp = (int64_t)(uint32_t)rec->disp;
    } else {
        rec->disp = d->disp;
    }
}

/* BMI1/BMI2 (bmi.c), each where CPUID offers its set; without BMI1,
 * F3 0F BC is BSF. */
static void build_bmi(const struct cpu *c, const struct dec *d, struct insn *rec, bool mem,
                      unsigned lg, insn_fn *fn, bool *ok)
{
    static const uint8_t shiftx[4] = {0, BMI_SHLX, BMI_SARX, BMI_SHRX}; /* by pp */
    static const uint8_t bls[4] = {0, BMI_BLSR, BMI_BLSMSK, BMI_BLSI};  /* by /reg */
    bool bmi1 = c->feat7_ebx & (1u << 3), bmi2 = c->feat7_ebx & (1u << 8), set2 = true;
    unsigned op;
    switch (d->id) {
    case OP_ANDN: op = BMI_ANDN; set2 = false; break;
    case OP_BEXTR: op = BMI_BEXTR; set2 = false; break;
    case OP_BLS: op = bls[d->reg & 3]; set2 = false; break;
    case OP_TZCNT: op = BMI_TZCNT; set2 = false; break;
    case OP_BZHI: op = BMI_BZHI; break;
    case OP_PDEP: op = BMI_PDEP; break;
    case OP_PEXT: op = BMI_PEXT; break;
    case OP_MULX: op = BMI_MULX; break;
    case OP_SHIFTX: op = shiftx[d->mand]; break;
    default: op = BMI_RORX; break;
    }
    rec->reg = d->reg;
    if (!mem)
        rec->base = d->rm;
    if (d->id == OP_TZCNT && !bmi1) { /* BSF, as a CPU without BMI1 reads it */
        rec->aux = 0;
        *fn = h_bitscan[mem][lg];
        return;
    }
    if (set2 ? !bmi2 : !bmi1) {
        *ok = false;
        return;
    }
    /* (vvvv's bit 3 names no register in 32-bit code, measured by Zydis) */
    rec->imm = d->id == OP_RORX ? d->imm & 0xff : d->mode32 ? d->vvvv & 7 : d->vvvv;
    rec->aux = (uint8_t)(lg | op << 2);
    *fn = h_bmi[mem];
}

/* The r/m register operand: index, or byte offset for 8-bit operands. */
static uint8_t rm_reg(const struct dec *d, unsigned lg)
{
    return lg == 0 ? r8(d->rm, d->rex) : d->rm;
}

static uint8_t reg_reg(const struct dec *d, unsigned lg)
{
    return lg == 0 ? r8(d->reg, d->rex) : d->reg;
}

static uint64_t branch_target(const struct dec *d, uint64_t va)
{
    uint64_t t = va + d->len + d->imm;
    if (d->lg == 1)
        t &= 0xffff;
    else if (d->mode32)
        t &= 0xffffffff;
    return t;
}

static unsigned sreg_of(unsigned n)
{
    return n; /* ModRM.reg encoding ES CS SS DS FS GS = SEG_* order */
}

extern bool sse_feature_ok(struct cpu *c, const struct dec *d);
extern void hx_prepare(struct cpu *c, const struct dec *d, struct insn *rec, uint64_t va);

bool build_insn(struct cpu *c, const struct dec *d, uint64_t va, struct insn *rec, bool *ok)
{
    bool mem = d->has_mem;
    unsigned lg = d->lg;
    bool end = (d->fl & D_END) != 0;
    insn_fn fn = NULL;
    uint8_t low3 = d->op & 7;
    *ok = true;
    memset(rec, 0, sizeof(*rec));
    rec->len = d->len;
    rec->base = rec->index = NOREG;
    if (mem)
        set_mem(d, va, rec, true);
    else if (d->fl & (D_M | D_GRP))
        rec->base = rm_reg(d, lg);

    switch (d->id) {
    case OP_ALU: {
        unsigned op = d->op >> 3;
        uint64_t m = sz_mask(lg);
        switch (low3) {
        case 0: case 1: /* Eb,Gb / Ev,Gv */
            if (mem) {
                fn = h_alu[d->lock ? ALU_MRL : ALU_MR][op][lg];
                rec->reg = reg_reg(d, lg);
            } else {
                fn = h_alu[ALU_RR][op][lg];
                rec->reg = rm_reg(d, lg);
                rec->base = reg_reg(d, lg);
            }
            break;
        case 2: case 3: /* Gb,Eb / Gv,Ev */
            rec->reg = reg_reg(d, lg);
            fn = h_alu[mem ? ALU_RM : ALU_RR][op][lg];
            break;
        default: /* AL/rAX, imm */
            rec->reg = lg == 0 ? 0 : 0;
            rec->imm = d->imm & m;
            fn = h_alu[ALU_RI][op][lg];
            break;
        }
        break;
    }
    case OP_ALU_I: {
        unsigned op = d->reg & 7;
        rec->imm = d->imm & sz_mask(lg);
        if (mem) {
            fn = h_alu[d->lock ? ALU_MIL : ALU_MI][op][lg];
        } else {
            rec->reg = rm_reg(d, lg);
            fn = h_alu[ALU_RI][op][lg];
        }
        break;
    }
    case OP_TEST:
        if (d->fl & (D_IB | D_IZ)) { /* A8/A9 */
            rec->reg = 0;
            rec->imm = d->imm & sz_mask(lg);
            fn = h_test[2][lg];
        } else if (mem) {
            rec->reg = reg_reg(d, lg);
            fn = h_test[1][lg];
        } else {
            rec->reg = reg_reg(d, lg);
            fn = h_test[0][lg];
        }
        break;
    case OP_TEST_I:
        rec->imm = d->imm & sz_mask(lg);
        if (mem) {
            fn = h_test[3][lg];
        } else {
            rec->reg = rm_reg(d, lg);
            fn = h_test[2][lg];
        }
        break;
    case OP_INC: case OP_DEC: case OP_NOT: case OP_NEG: {
        unsigned op = d->id == OP_INC ? 0 : d->id == OP_DEC ? 1 : d->id == OP_NOT ? 2 : 3;
        if (mem) {
            fn = h_unop[d->lock ? 2 : 1][op][lg];
        } else {
            rec->reg = rm_reg(d, lg);
            fn = h_unop[0][op][lg];
        }
        break;
    }
    case OP_MOV:
        if (d->op == 0x88 || d->op == 0x89) {
            if (mem) {
                rec->reg = reg_reg(d, lg);
                fn = h_mov[2][lg];
            } else {
                rec->reg = rm_reg(d, lg);
                rec->base = reg_reg(d, lg);
                fn = h_mov[0][lg];
            }
        } else {
            rec->reg = reg_reg(d, lg);
            fn = h_mov[mem ? 1 : 0][lg];
        }
        break;
    case OP_MOV_EI:
        rec->imm = d->imm & sz_mask(lg);
        if (mem) {
            fn = h_mov[4][lg];
        } else {
            rec->reg = rm_reg(d, lg);
            fn = h_mov[3][lg];
        }
        break;
    case OP_MOV_RI: {
        unsigned r = low3 | ((d->rex & 1) << 3);
        rec->reg = lg == 0 ? r8(r, d->rex) : (uint8_t)r;
        rec->imm = d->imm & sz_mask(lg);
        fn = h_mov[3][lg];
        break;
    }
    case OP_MOV_MOFFS: {
        /* A0/A1 load, A2/A3 store; the absolute offset as displacement */
        rec->base = rec->index = NOREG;
        rec->mf = (uint8_t)(mem_seg(d, SEG_DS) << MF_SEG_SHIFT | addr_flags(d));
        rec->disp = (int64_t)d->imm;
        rec->reg = 0;
        fn = h_mov[(d->op & 2) ? 2 : 1][lg];
        break;
    }
    case OP_MOVZX: case OP_MOVSX: {
        unsigned slg = (d->fl & D_RM8) ? 0 : 1;
        if (lg < 1)
            lg = 1;
        rec->reg = d->reg;
        if (!mem)
            rec->base = slg == 0 ? r8(d->rm, d->rex) : d->rm;
        if (slg >= lg) /* movzx r16, r/m16 */
            fn = mem ? h_mov[1][1] : h_mov[0][1];
        else
            fn = h_ext[d->id == OP_MOVSX][mem][slg][lg];
        break;
    }
    case OP_MOVSXD:
        rec->reg = d->reg;
        if (lg == 3)
            fn = h_ext[1][mem][2][3];
        else
            fn = h_ext[0][mem][2][lg];
        break;
    case OP_LEA:
        rec->reg = d->reg;
        rec->mf &= ~(7u << MF_SEG_SHIFT);
        rec->mf |= SEG_NONE << MF_SEG_SHIFT;
        fn = h_lea[lg];
        break;
    case OP_XCHG:
        rec->reg = reg_reg(d, lg);
        fn = h_xchg[mem][lg];
        break;
    case OP_XCHG_AX:
        rec->reg = (uint8_t)(low3 | ((d->rex & 1) << 3));
        rec->base = 0;
        fn = h_xchg[0][lg];
        break;
    case OP_NOP90: case OP_NOPM: case OP_PAUSE: case OP_FENCE:
        fn = d->id == OP_PAUSE ? h_sys[OP_PAUSE] : d->id == OP_FENCE ? h_sys[OP_FENCE] : h_nop;
        break;
    case OP_CBW: fn = h_cbw[lg]; break;
    case OP_CWD: fn = h_cwd[lg]; break;
    case OP_CMC: fn = h_cmc; break;
    case OP_CLC: fn = h_clc; break;
    case OP_STC: fn = h_stc; break;
    case OP_CLD: fn = h_cld; break;
    case OP_STD: fn = h_std; break;
    case OP_LAHF: case OP_SAHF:
        if (!(c->ext1_ecx & 1)) {
            *ok = false;
            break;
        }
        fn = d->id == OP_LAHF ? h_lahf : h_sahf;
        break;
    case OP_SETCC:
        rec->aux = d->op & 15;
        if (!mem)
            rec->base = r8(d->rm, d->rex);
        fn = h_setcc[mem];
        break;
    case OP_CMOV:
        rec->aux = d->op & 15;
        rec->reg = d->reg;
        fn = h_cmov[mem][lg];
        break;
    case OP_BSWAP:
        rec->reg = (uint8_t)(low3 | ((d->rex & 1) << 3));
        fn = h_bswap[lg];
        break;
    case OP_MOVBE:
        if (!(c->feat1_ecx & (1u << 22))) {
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        fn = h_movbe[d->op & 1][lg];
        break;
    case OP_MOVNTI:
        if (lg < 2) {
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        fn = h_movnti[lg];
        break;
    case OP_ADCX: case OP_ADOX:
        if (!(c->feat7_ebx & (1u << 19))) { /* ADX */
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        rec->aux = (uint8_t)(((d->rex & 8) ? 3 : 2) | (d->id == OP_ADOX ? 4 : 0));
        if (!mem)
            rec->base = d->rm;
        fn = h_adx[mem];
        break;
    case OP_ANDN: case OP_BEXTR: case OP_BLS: case OP_BZHI: case OP_PDEP: case OP_PEXT:
    case OP_MULX: case OP_SHIFTX: case OP_RORX: case OP_TZCNT:
        build_bmi(c, d, rec, mem, lg, &fn, ok);
        break;
    case OP_CRC32:
        if (!(c->feat1_ecx & (1u << 20))) {
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        rec->aux = (uint8_t)((d->op == 0xf0 ? 0 : (d->rex & 8) ? 3 : d->p66 ? 1 : 2) |
                             ((d->rex & 8) ? 4 : 0));
        if (!mem)
            rec->base = d->op == 0xf0 ? r8(d->rm, d->rex) : d->rm;
        fn = h_crc32[mem];
        break;
    case OP_SHIFT: {
        rec->aux = (uint8_t)((d->reg & 7) | ((d->op == 0xd2 || d->op == 0xd3) ? 8 : 0));
        rec->imm = (d->op == 0xd0 || d->op == 0xd1) ? 1 : (d->imm & 0xff);
        if (!mem)
            rec->reg = rm_reg(d, lg);
        fn = h_shift[mem][lg];
        break;
    }
    case OP_SHLD: case OP_SHRD:
        rec->aux = (uint8_t)((d->id == OP_SHRD) | ((d->op & 1) ? 8 : 0));
        rec->imm = d->imm & 0xff;
        rec->reg = d->reg;
        fn = h_shd[mem][lg];
        break;
    case OP_MUL: case OP_IMUL1: case OP_DIV: case OP_IDIV:
        rec->aux = (uint8_t)(d->id == OP_MUL ? 0 : d->id == OP_IMUL1 ? 1 : d->id == OP_DIV ? 2 : 3);
        fn = h_muldiv[mem][lg];
        break;
    case OP_IMUL2:
        rec->reg = d->reg;
        fn = h_imul[mem][lg];
        break;
    case OP_IMUL3:
        rec->reg = d->reg;
        rec->imm = d->imm & sz_mask(lg);
        fn = h_imul[2 + mem][lg];
        break;
    case OP_BT: {
        static const uint8_t ops[4] = {0, 1, 2, 3}; /* A3 bt, AB bts, B3 btr, BB btc */
        rec->aux = ops[(d->op >> 3) & 3];
        if (d->lock)
            rec->aux |= 4;
        rec->reg = d->reg;
        fn = h_bt[mem ? 2 : 0][lg];
        break;
    }
    case OP_BT_I:
        rec->aux = (uint8_t)((d->reg & 3) | (d->lock ? 4 : 0));
        rec->imm = d->imm & ((8u << lg) - 1);
        fn = h_bt[mem ? 3 : 1][lg];
        break;
    case OP_BSF: case OP_BSR: case OP_POPCNT: case OP_LZCNT:
        if ((d->id == OP_POPCNT && !(c->feat1_ecx & (1u << 23))) ||
            (d->id == OP_LZCNT && !(c->ext1_ecx & (1u << 5)))) {
            if (d->id == OP_LZCNT) { /* without LZCNT, F3 0F BD is BSR */
                rec->reg = d->reg;
                rec->aux = 1;
                fn = h_bitscan[mem][lg];
                break;
            }
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        rec->aux = (uint8_t)(d->id == OP_BSF ? 0 : d->id == OP_BSR ? 1 : d->id == OP_POPCNT ? 2 : 3);
        fn = h_bitscan[mem][lg];
        break;
    case OP_CMPXCHG:
        rec->reg = reg_reg(d, lg);
        fn = h_cmpxchg[mem][lg];
        break;
    case OP_CMPXCHG8B:
        rec->aux = (d->rex & 8) ? 1 : 0;
        if (rec->aux && !(c->feat1_ecx & (1u << 13))) {
            *ok = false;
            break;
        }
        fn = h_cmpxchg8b;
        break;
    case OP_XADD:
        rec->reg = reg_reg(d, lg);
        fn = h_xadd[mem][lg];
        break;
    case OP_XLAT:
        rec->mf = (uint8_t)((mem_seg(d, SEG_DS) << MF_SEG_SHIFT) | addr_flags(d));
        fn = h_xlat;
        break;
    case OP_MOV_SR:
        if ((d->reg & 7) > 5) {
            *ok = false;
            break;
        }
        rec->aux = (uint8_t)sreg_of(d->reg & 7);
        rec->imm = lg;
        fn = h_mov_sr[mem];
        break;
    case OP_MOV_RS: {
        unsigned s = d->reg & 7;
        if (s == SEG_CS || s > 5) {
            *ok = false;
            break;
        }
        rec->aux = (uint8_t)s;
        if (!mem)
            rec->mf = MF_REGFORM;
        fn = h_sys[OP_MOV_RS];
        break;
    }
    /* --- stack and branches --- */
    /* (lg 2 is 32-bit code's default: its stack, stack32.c) */
    case OP_PUSH_R:
        rec->reg = (uint8_t)(low3 | ((d->rex & 1) << 3));
        fn = lg == 2 ? h_push_r32 : h_push_r[lg];
        break;
    case OP_POP_R:
        rec->reg = (uint8_t)(low3 | ((d->rex & 1) << 3));
        fn = lg == 2 ? h_pop_r32 : h_pop_r[lg];
        break;
    case OP_PUSH_I:
        rec->imm = d->imm & sz_mask(lg);
        fn = lg == 2 ? h_push_i32 : h_push_i[lg];
        break;
    case OP_PUSH_E:
        if (!mem) {
            rec->reg = d->rm;
            fn = lg == 2 ? h_push_r32 : h_push_r[lg];
        } else {
            fn = lg == 2 ? h_push_m32 : h_push_m[lg];
        }
        break;
    case OP_POP_E:
        if (!mem) {
            rec->reg = d->rm;
            fn = lg == 2 ? h_pop_r32 : h_pop_r[lg];
        } else {
            fn = lg == 2 ? h_pop_m32 : h_pop_m[lg];
        }
        break;
    case OP_JCC:
        rec->aux = d->op & 15;
        rec->imm = branch_target(d, va);
        rec->link = NULL;
        fn = h_jcc[d->op & 15];
        end = false; /* the block goes on with the fall-through path */
        break;
    case OP_JMP:
        rec->imm = branch_target(d, va);
        fn = h_jmp;
        break;
    case OP_CALL:
        rec->imm = branch_target(d, va);
        fn = lg == 1 ? h_call16 : lg == 2 ? h_call32 : h_call;
        break;
    case OP_RET: case OP_RET_I:
        rec->imm = d->id == OP_RET_I ? (d->imm & 0xffff) : 0;
        fn = lg == 1 ? h_ret16 : lg == 2 ? h_ret32 : h_ret;
        break;
    case OP_JMP_E: case OP_CALL_E:
        rec->aux = lg == 1;
        if (lg == 2)
            fn = d->id == OP_JMP_E ? (mem ? h_jmp_m32 : h_jmp_r32)
                                   : (mem ? h_call_m32 : h_call_r32);
        else if (d->id == OP_JMP_E)
            fn = mem ? h_jmp_m : h_jmp_r;
        else
            fn = mem ? h_call_m : h_call_r;
        break;
    case OP_LOOP: case OP_JRCXZ: {
        unsigned cond = d->op & 3;
        /* measured on the host (Zen 3): a REP prefix picks LOOPcc's condition,
         * F2 -> LOOPNE, F3 -> LOOPE */
        if (d->id == OP_LOOP && cond < 2 && d->rep)
            cond = d->rep == 0xf3 ? 1 : 0;
        rec->aux = (uint8_t)((d->id == OP_LOOP ? cond : 0) | (d->p67 ? 4 : 0) | (d->a16 ? 8 : 0));
        rec->imm = branch_target(d, va);
        fn = d->id == OP_LOOP ? h_loop[d->op & 3] : h_jrcxz;
        break;
    }
    case OP_ENTER:
        rec->imm = d->imm & 0xffff;
        rec->aux = (uint8_t)d->imm2;
        rec->disp = lg == 1;
        fn = d->mode32 ? h_enter32 : h_enter;
        break;
    case OP_LEAVE:
        rec->aux = lg == 1;
        fn = lg == 2 ? h_leave32 : h_leave;
        break;
    case OP_PUSHF: /* aux: 0 the 64-bit form, else the operand lg (16, or 32-bit code's) */
        rec->aux = lg == 3 ? 0 : (uint8_t)lg;
        fn = h_pushf;
        break;
    case OP_POPF:
        rec->aux = lg == 3 ? 0 : (uint8_t)lg;
        fn = h_popf;
        break;
    /* --- strings --- */
    case OP_MOVS: case OP_CMPS: case OP_STOS: case OP_LODS: case OP_SCAS: case OP_INS:
    case OP_OUTS: {
        static const uint8_t which[] = {[OP_MOVS] = 0, [OP_CMPS] = 1, [OP_STOS] = 2,
                                        [OP_LODS] = 3, [OP_SCAS] = 4, [OP_INS] = 5, [OP_OUTS] = 6};
        unsigned rep = d->rep == 0xf3 ? 1 : d->rep == 0xf2 ? 2 : 0;
        if (d->id == OP_INS || d->id == OP_OUTS) {
            if (lg == 3)
                lg = 2;
        }
        rec->mf = (uint8_t)((mem_seg(d, SEG_DS) << MF_SEG_SHIFT) | addr_flags(d));
        fn = h_str[which[d->id]][lg][rep];
        break;
    }
    /* --- system --- */
    case OP_IN: case OP_OUT:
        if (lg == 3)
            lg = 2;
        rec->index = (uint8_t)lg;
        rec->aux = (d->fl & D_IB) ? 0 : 1;
        rec->imm = d->imm & 0xff;
        fn = h_sys[d->id];
        break;
    case OP_INT:
        rec->imm = d->imm & 0xff;
        fn = h_sys[OP_INT];
        break;
    case OP_IRET: case OP_RETF:
        rec->aux = lg;
        rec->imm = d->id == OP_RETF && (d->fl & D_IW) ? (d->imm & 0xffff) : 0;
        fn = h_sys[d->id];
        break;
    case OP_JMPF_D: case OP_CALLF_D: /* imm: the offset; the selector in 'disp' */
        rec->imm = d->imm;
        rec->disp = (int64_t)d->imm2;
        fn = h_sys[d->id];
        break;
    case OP_JMPF: case OP_CALLF: case OP_LSEG:
        /* AMD: REX.W is ignored, far pointers are m16:32 at most */
        rec->imm = lg == 3 ? 2 : lg;
        rec->reg = d->reg;
        if (d->id == OP_LSEG && d->map == 0) /* 32-bit code's LES, LDS */
            rec->aux = d->op == 0xc4 ? SEG_ES : SEG_DS;
        else if (d->id == OP_LSEG)
            rec->aux = d->op == 0xb2 ? SEG_SS : d->op == 0xb4 ? SEG_FS : SEG_GS;
        fn = h_sys[d->id];
        break;
    case OP_PUSH_SREG: case OP_POP_SREG: /* aux: the segment, imm: lg */
        if (d->map == 1)
            rec->aux = d->op < 0xa8 ? SEG_FS : SEG_GS;
        else
            rec->aux = (uint8_t)(d->op < 0x08 ? SEG_ES : d->op < 0x10 ? SEG_CS
                                 : d->op < 0x18 ? SEG_SS : SEG_DS);
        rec->imm = lg;
        fn = h_sys[d->id];
        break;
    case OP_PUSHA: case OP_POPA: /* aux: lg */
        rec->aux = (uint8_t)lg;
        fn = d->id == OP_PUSHA ? h_pusha32 : h_popa32;
        break;
    case OP_BCD: /* aux: which; imm: AAM/AAD's base */
        rec->aux = (uint8_t)(d->op == 0xd4 ? 4 : d->op == 0xd5 ? 5 : (d->op >> 3) - 4);
        rec->imm = d->imm & 0xff;
        fn = h_bcd;
        break;
    case OP_INTO:
        fn = h_into;
        break;
    case OP_BOUND: /* reg: the index register; aux: lg */
        rec->reg = d->reg;
        rec->aux = (uint8_t)lg;
        fn = h_bound;
        break;
    case OP_ARPL: /* reg: the source register; base: the r/m register, or memory */
        rec->reg = d->reg;
        if (!mem)
            rec->mf = MF_REGFORM;
        fn = h_arpl;
        break;
    case OP_SALC:
        fn = h_salc;
        break;
    case OP_MOV_FROM_CR: case OP_MOV_TO_CR: case OP_MOV_FROM_DR: case OP_MOV_TO_DR:
        rec->aux = d->reg;
        if (d->lock) {
            /* AltMovCr8 (CPUID 8000_0001 ECX bit 4): LOCK MOV CR0 = MOV CR8 */
            if (!(c->ext1_ecx & (1u << 4)) || d->id == OP_MOV_FROM_DR ||
                d->id == OP_MOV_TO_DR || d->reg != 0) {
                *ok = false;
                break;
            }
            rec->aux = 8;
        }
        rec->base = d->rm;
        fn = h_sys[d->id];
        break;
    case OP_SLDT: case OP_STR: case OP_SMSW:
        rec->aux = d->id == OP_STR;
        rec->imm = lg;
        if (!mem)
            rec->mf = MF_REGFORM;
        fn = h_sys[d->id];
        break;
    case OP_LLDT: case OP_LTR: case OP_LMSW:
        if (!mem)
            rec->mf = MF_REGFORM;
        fn = h_sys[d->id];
        break;
    case OP_LAR: case OP_LSL: case OP_VERR: case OP_VERW:
        rec->aux = (uint8_t)(d->id == OP_LAR ? 0 : d->id == OP_LSL ? 1 : d->id == OP_VERR ? 2 : 3);
        rec->imm = lg;
        rec->reg = d->reg;
        if (!mem)
            rec->mf = MF_REGFORM;
        fn = h_sys[d->id];
        break;
    case OP_LGDT: case OP_LIDT: case OP_SGDT: case OP_SIDT:
        rec->aux = d->id == OP_LIDT || d->id == OP_SIDT;
        fn = h_sys[d->id];
        break;
    case OP_SYSRET:
        rec->aux = (d->rex & 8) ? 1 : 0;
        fn = h_sys[OP_SYSRET];
        break;
    case OP_RDRAND:
        rec->aux = lg;
        fn = h_sys[OP_RDRAND];
        break;
    case OP_RDPID:
        rec->base = d->rm;
        fn = h_sys[OP_RDPID];
        break;
    case OP_FSGSBASE: /* aux: 0 RDFSBASE, 1 RDGSBASE, 2 WRFSBASE, 3 WRGSBASE; 4: REX.W */
        if (!(c->feat7_ebx & 1u)) {
            *ok = false;
            break;
        }
        rec->base = d->rm;
        rec->aux = (uint8_t)((d->reg & 3) | ((d->rex & 8) ? 4 : 0));
        fn = h_sys[OP_FSGSBASE];
        break;
    case OP_RDTSCP:
    case OP_HLT: case OP_CLI: case OP_STI: case OP_INT3: case OP_INT1: case OP_UD:
    case OP_RDTSC: case OP_RDMSR: case OP_WRMSR: case OP_RDPMC: case OP_CPUID: case OP_CLTS:
    case OP_INVLPG: case OP_WBINVD: case OP_INVD: case OP_SWAPGS: case OP_SYSCALL:
        fn = h_sys[d->id];
        break;
    case OP_CLFLUSH:
        if (d->p66 && !(c->feat7_ebx & (1u << 23))) { /* CLFLUSHOPT */
            *ok = false;
            break;
        }
        fn = h_sys[d->id];
        break;
    /* --- x87/MMX/SSE --- */
    case OP_HX:
        if (!sse_feature_ok(c, d)) {
            *ok = false;
            break;
        }
        hx_prepare(c, d, rec, va);
        fn = rec->fn;
        if (!fn)
            *ok = false;
        break;
    case OP_FWAIT: fn = h_fwait; break;
    case OP_EMMS: fn = h_emms; break;
    case OP_MASKMOV:
        if (!sse_feature_ok(c, d)) {
            *ok = false;
            break;
        }
        rec->reg = d->reg;
        rec->base = d->rm;
        rec->aux = d->mand == 1;
        rec->mf = (uint8_t)((mem_seg(d, SEG_DS) << MF_SEG_SHIFT) | addr_flags(d));
        fn = h_maskmov;
        break;
    case OP_FXSAVE: case OP_FXRSTOR: case OP_LDMXCSR: case OP_STMXCSR:
        rec->aux = (d->rex & 8) ? 1 : 0;
        fn = d->id == OP_FXSAVE ? h_fxsave : d->id == OP_FXRSTOR ? h_fxrstor
           : d->id == OP_LDMXCSR ? h_ldmxcsr : h_stmxcsr;
        break;
    default:
        *ok = false;
        break;
    }
    if (!fn)
        *ok = false;
    if (!*ok) {
        rec->fn = h_ud;
        return true;
    }
    if (mem && rec->index == NOREG && !(rec->mf & MF_ADDR32) &&
        insn_seg(rec) != SEG_FS && insn_seg(rec) != SEG_GS)
        fn = fast_mem_variant(fn);
    rec->fn = fn;
    return end;
}
