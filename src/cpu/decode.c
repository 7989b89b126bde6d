/* x86-64 decoder: prefixes, REX, the one-byte, 0F, 0F38 and 0F3A maps, for
 * 64-bit mode and for 32-bit code (compatibility mode and protected mode
 * with a 32-bit code segment). 32-bit code is decoded for the subset the
 * engine runs there (decode32_supported): the rest decodes as DEC_NOIMPL. */
#include "cpu/internal.h"

/* Tables set ranges first and refine single entries after. */
#pragma GCC diagnostic ignored "-Woverride-init"

struct opent {
    uint16_t id;
    uint32_t fl;
};

#define E(id, fl) {(id), (fl)}
#define ALU6(base_)                                                                \
    [base_ + 0] = E(OP_ALU, D_M | D_B | D_LOCK), [base_ + 1] = E(OP_ALU, D_M | D_LOCK), \
    [base_ + 2] = E(OP_ALU, D_M | D_B), [base_ + 3] = E(OP_ALU, D_M),              \
    [base_ + 4] = E(OP_ALU, D_B | D_IB), [base_ + 5] = E(OP_ALU, D_IZ)

/* Group numbers (ids of D_GRP entries) */
enum {
    G1_80, G1_81, G1_83, G1A_8F, G2_C0, G2_C1, G2_D0, G2_D1, G2_D2, G2_D3, G11_C6,
    G11_C7, G3_F6, G3_F7, G4_FE, G5_FF, G6_0F00, G7_0F01, G8_0FBA, G9_0FC7,
    G15_0FAE, G16_0F18, GP_0F0D, G_COUNT
};

static const struct opent map1[256] = {
    ALU6(0x00), ALU6(0x08), ALU6(0x10), ALU6(0x18), ALU6(0x20), ALU6(0x28), ALU6(0x30),
    ALU6(0x38),
    [0x38] = E(OP_ALU, D_M | D_B), [0x39] = E(OP_ALU, D_M), /* CMP: no LOCK */
    /* 06 07 0e 16 17 1e 1f 27 2f 37 3f: invalid in 64-bit mode (zero entries) */
    [0x50 ... 0x57] = E(OP_PUSH_R, D_D64),
    [0x58 ... 0x5f] = E(OP_POP_R, D_D64),
    [0x63] = E(OP_MOVSXD, D_M),
    [0x68] = E(OP_PUSH_I, D_D64 | D_IZ),
    [0x69] = E(OP_IMUL3, D_M | D_IZ),
    [0x6a] = E(OP_PUSH_I, D_D64 | D_IB),
    [0x6b] = E(OP_IMUL3, D_M | D_IB),
    [0x6c] = E(OP_INS, D_B),
    [0x6d] = E(OP_INS, 0),
    [0x6e] = E(OP_OUTS, D_B),
    [0x6f] = E(OP_OUTS, 0),
    [0x70 ... 0x7f] = E(OP_JCC, D_J | D_IB | D_D64 | D_END),
    [0x80] = E(G1_80, D_GRP | D_M | D_B | D_IB),
    [0x81] = E(G1_81, D_GRP | D_M | D_IZ),
    [0x83] = E(G1_83, D_GRP | D_M | D_IB),
    [0x84] = E(OP_TEST, D_M | D_B),
    [0x85] = E(OP_TEST, D_M),
    [0x86] = E(OP_XCHG, D_M | D_B | D_LOCK),
    [0x87] = E(OP_XCHG, D_M | D_LOCK),
    [0x88] = E(OP_MOV, D_M | D_B),
    [0x89] = E(OP_MOV, D_M),
    [0x8a] = E(OP_MOV, D_M | D_B),
    [0x8b] = E(OP_MOV, D_M),
    [0x8c] = E(OP_MOV_SR, D_M),
    [0x8d] = E(OP_LEA, D_M | D_MEM),
    [0x8e] = E(OP_MOV_RS, D_M | D_RM16 | D_END),
    [0x8f] = E(G1A_8F, D_GRP | D_M | D_D64),
    [0x90] = E(OP_NOP90, 0),
    [0x91 ... 0x97] = E(OP_XCHG_AX, 0),
    [0x98] = E(OP_CBW, 0),
    [0x99] = E(OP_CWD, 0),
    [0x9b] = E(OP_FWAIT, 0),
    [0x9c] = E(OP_PUSHF, D_D64),
    [0x9d] = E(OP_POPF, D_D64 | D_END),
    [0x9e] = E(OP_SAHF, 0),
    [0x9f] = E(OP_LAHF, 0),
    [0xa0] = E(OP_MOV_MOFFS, D_B | D_MOFFS),
    [0xa1] = E(OP_MOV_MOFFS, D_MOFFS),
    [0xa2] = E(OP_MOV_MOFFS, D_B | D_MOFFS),
    [0xa3] = E(OP_MOV_MOFFS, D_MOFFS),
    [0xa4] = E(OP_MOVS, D_B),
    [0xa5] = E(OP_MOVS, 0),
    [0xa6] = E(OP_CMPS, D_B),
    [0xa7] = E(OP_CMPS, 0),
    [0xa8] = E(OP_TEST, D_B | D_IB),
    [0xa9] = E(OP_TEST, D_IZ),
    [0xaa] = E(OP_STOS, D_B),
    [0xab] = E(OP_STOS, 0),
    [0xac] = E(OP_LODS, D_B),
    [0xad] = E(OP_LODS, 0),
    [0xae] = E(OP_SCAS, D_B),
    [0xaf] = E(OP_SCAS, 0),
    [0xb0 ... 0xb7] = E(OP_MOV_RI, D_B | D_IB),
    [0xb8 ... 0xbf] = E(OP_MOV_RI, D_IV),
    [0xc0] = E(G2_C0, D_GRP | D_M | D_B | D_IB),
    [0xc1] = E(G2_C1, D_GRP | D_M | D_IB),
    [0xc2] = E(OP_RET_I, D_IW | D_D64 | D_END),
    [0xc3] = E(OP_RET, D_D64 | D_END),
    [0xc6] = E(G11_C6, D_GRP | D_M | D_B | D_IB),
    [0xc7] = E(G11_C7, D_GRP | D_M | D_IZ),
    [0xc8] = E(OP_ENTER, D_IB2 | D_D64),
    [0xc9] = E(OP_LEAVE, D_D64),
    [0xca] = E(OP_RETF, D_IW | D_END),
    [0xcb] = E(OP_RETF, D_END),
    [0xcc] = E(OP_INT3, D_END),
    [0xcd] = E(OP_INT, D_IB | D_END),
    [0xcf] = E(OP_IRET, D_END),
    [0xd0] = E(G2_D0, D_GRP | D_M | D_B),
    [0xd1] = E(G2_D1, D_GRP | D_M),
    [0xd2] = E(G2_D2, D_GRP | D_M | D_B),
    [0xd3] = E(G2_D3, D_GRP | D_M),
    [0xd7] = E(OP_XLAT, D_B),
    [0xd8 ... 0xdf] = E(OP_HX, D_M | D_X87),
    [0xe0 ... 0xe2] = E(OP_LOOP, D_J | D_IB | D_D64 | D_END),
    [0xe3] = E(OP_JRCXZ, D_J | D_IB | D_D64 | D_END),
    [0xe4] = E(OP_IN, D_B | D_IB),
    [0xe5] = E(OP_IN, D_IB),
    [0xe6] = E(OP_OUT, D_B | D_IB),
    [0xe7] = E(OP_OUT, D_IB),
    [0xe8] = E(OP_CALL, D_J | D_IZ | D_D64 | D_END),
    [0xe9] = E(OP_JMP, D_J | D_IZ | D_D64 | D_END),
    [0xeb] = E(OP_JMP, D_J | D_IB | D_D64 | D_END),
    [0xec] = E(OP_IN, D_B),
    [0xed] = E(OP_IN, 0),
    [0xee] = E(OP_OUT, D_B),
    [0xef] = E(OP_OUT, 0),
    [0xf1] = E(OP_INT1, D_END),
    [0xf4] = E(OP_HLT, D_END),
    [0xf5] = E(OP_CMC, 0),
    [0xf6] = E(G3_F6, D_GRP | D_M | D_B),
    [0xf7] = E(G3_F7, D_GRP | D_M),
    [0xf8] = E(OP_CLC, 0),
    [0xf9] = E(OP_STC, 0),
    [0xfa] = E(OP_CLI, 0),
    [0xfb] = E(OP_STI, 0),
    [0xfc] = E(OP_CLD, 0),
    [0xfd] = E(OP_STD, 0),
    [0xfe] = E(G4_FE, D_GRP | D_M | D_B),
    [0xff] = E(G5_FF, D_GRP | D_M),
};

/* One-byte opcodes only 32-bit code has (invalid in 64-bit mode). */
static const struct opent map1_compat[256] = {
    [0x06] = E(OP_PUSH_SREG, D_D64), [0x0e] = E(OP_PUSH_SREG, D_D64),
    [0x16] = E(OP_PUSH_SREG, D_D64), [0x1e] = E(OP_PUSH_SREG, D_D64),
    [0x07] = E(OP_POP_SREG, D_D64 | D_END), [0x17] = E(OP_POP_SREG, D_D64 | D_END),
    [0x1f] = E(OP_POP_SREG, D_D64 | D_END),
    [0x27] = E(OP_BCD, 0), [0x2f] = E(OP_BCD, 0), [0x37] = E(OP_BCD, 0), [0x3f] = E(OP_BCD, 0),
    [0xd4] = E(OP_BCD, D_IB), [0xd5] = E(OP_BCD, D_IB),
    [0x60] = E(OP_PUSHA, 0), [0x61] = E(OP_POPA, 0),
    [0xce] = E(OP_INTO, 0),
    [0x82] = E(G1_80, D_GRP | D_M | D_B | D_IB), /* an alias of 80 */
    [0x62] = E(OP_BOUND, D_M | D_MEM), /* (with mod 3: EVEX, no AVX-512 offered) */
    [0xc4] = E(OP_LSEG, D_M | D_MEM | D_END), /* LES (mod 3: VEX) */
    [0xc5] = E(OP_LSEG, D_M | D_MEM | D_END), /* LDS */
    [0xd6] = E(OP_SALC, 0),
};

static const struct opent map2[256] = {
    [0x00 ... 0xff] = E(0, D_SSE | D_M),
    [0xf0] = E(OP_MOVBE, D_M), /* and CRC32 with F2: resolved in decode() */
    [0xf1] = E(OP_MOVBE, D_M),
};

static const struct opent map3[256] = {
    [0x00 ... 0xff] = E(0, D_SSE | D_M | D_IB),
};

static const struct opent map0f[256] = {
    [0x00] = E(G6_0F00, D_GRP | D_M),
    [0x01] = E(G7_0F01, D_GRP | D_GRPR | D_M),
    [0x02] = E(OP_LAR, D_M | D_RM16),
    [0x03] = E(OP_LSL, D_M | D_RM16),
    [0x05] = E(OP_SYSCALL, D_END),
    [0x06] = E(OP_CLTS, D_END),
    [0x07] = E(OP_SYSRET, D_END),
    [0x08] = E(OP_INVD, D_END),
    [0x09] = E(OP_WBINVD, D_END),
    [0x0b] = E(OP_UD, 0),
    [0x0d] = E(GP_0F0D, D_GRP | D_M),
    [0x10 ... 0x17] = E(0, D_SSE | D_M),
    [0x18] = E(G16_0F18, D_GRP | D_M),
    [0x19 ... 0x1f] = E(OP_NOPM, D_M),
    [0x20] = E(OP_MOV_FROM_CR, D_M | D_W64),
    [0x21] = E(OP_MOV_FROM_DR, D_M | D_W64),
    [0x22] = E(OP_MOV_TO_CR, D_M | D_W64 | D_END),
    [0x23] = E(OP_MOV_TO_DR, D_M | D_W64 | D_END),
    [0x28 ... 0x2f] = E(0, D_SSE | D_M),
    [0x30] = E(OP_WRMSR, D_END),
    [0x31] = E(OP_RDTSC, 0),
    [0x32] = E(OP_RDMSR, 0),
    [0x33] = E(OP_RDPMC, 0),
    [0x40 ... 0x4f] = E(OP_CMOV, D_M),
    [0x50 ... 0x76] = E(0, D_SSE | D_M),
    [0x77] = E(OP_EMMS, 0),
    [0x7c ... 0x7f] = E(0, D_SSE | D_M),
    [0x80 ... 0x8f] = E(OP_JCC, D_J | D_IZ | D_D64 | D_END),
    [0x90 ... 0x9f] = E(OP_SETCC, D_M | D_B),
    [0xa0] = E(OP_PUSH_SREG, D_D64),
    [0xa1] = E(OP_POP_SREG, D_D64 | D_END),
    [0xa2] = E(OP_CPUID, 0),
    [0xa3] = E(OP_BT, D_M),
    [0xa4] = E(OP_SHLD, D_M | D_IB),
    [0xa5] = E(OP_SHLD, D_M),
    [0xa8] = E(OP_PUSH_SREG, D_D64),
    [0xa9] = E(OP_POP_SREG, D_D64 | D_END),
    [0xab] = E(OP_BT, D_M | D_LOCK),
    [0xac] = E(OP_SHRD, D_M | D_IB),
    [0xad] = E(OP_SHRD, D_M),
    [0xae] = E(G15_0FAE, D_GRP | D_GRPR | D_M),
    [0xaf] = E(OP_IMUL2, D_M),
    [0xb0] = E(OP_CMPXCHG, D_M | D_B | D_LOCK),
    [0xb1] = E(OP_CMPXCHG, D_M | D_LOCK),
    [0xb2] = E(OP_LSEG, D_M | D_MEM | D_END),
    [0xb3] = E(OP_BT, D_M | D_LOCK),
    [0xb4 ... 0xb5] = E(OP_LSEG, D_M | D_MEM | D_END),
    [0xb6] = E(OP_MOVZX, D_M | D_RM8),
    [0xb7] = E(OP_MOVZX, D_M | D_RM16),
    [0xb8] = E(OP_POPCNT, D_M),     /* F3 only: checked in decode() */
    [0xba] = E(G8_0FBA, D_GRP | D_M | D_IB),
    [0xbb] = E(OP_BT, D_M | D_LOCK),
    [0xbc] = E(OP_BSF, D_M),
    [0xbd] = E(OP_BSR, D_M),
    [0xbe] = E(OP_MOVSX, D_M | D_RM8),
    [0xbf] = E(OP_MOVSX, D_M | D_RM16),
    [0xc0] = E(OP_XADD, D_M | D_B | D_LOCK),
    [0xc1] = E(OP_XADD, D_M | D_LOCK),
    [0xc2] = E(0, D_SSE | D_M),
    [0xc3] = E(OP_MOVNTI, D_M | D_MEM),
    [0xc4 ... 0xc6] = E(0, D_SSE | D_M),
    [0xc7] = E(G9_0FC7, D_GRP | D_GRPR | D_M),
    [0xc8 ... 0xcf] = E(OP_BSWAP, 0),
    [0xd0 ... 0xfe] = E(0, D_SSE | D_M),
};

/* Groups: [group][reg] for memory forms (and register forms unless D_GRPR). */
static const struct opent grp_mem[G_COUNT][8] = {
    [G1_80] = {[0 ... 6] = E(OP_ALU_I, D_LOCK), [7] = E(OP_ALU_I, 0)},
    [G1_81] = {[0 ... 6] = E(OP_ALU_I, D_LOCK), [7] = E(OP_ALU_I, 0)},
    [G1_83] = {[0 ... 6] = E(OP_ALU_I, D_LOCK), [7] = E(OP_ALU_I, 0)},
    [G1A_8F] = {[0] = E(OP_POP_E, 0)},
    [G2_C0] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G2_C1] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G2_D0] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G2_D1] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G2_D2] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G2_D3] = {[0 ... 7] = E(OP_SHIFT, 0)},
    [G11_C6] = {[0] = E(OP_MOV_EI, 0)},
    [G11_C7] = {[0] = E(OP_MOV_EI, 0)},
    [G3_F6] = {[0 ... 1] = E(OP_TEST_I, D_IB), [2] = E(OP_NOT, D_LOCK), [3] = E(OP_NEG, D_LOCK),
               [4] = E(OP_MUL, 0), [5] = E(OP_IMUL1, 0), [6] = E(OP_DIV, 0),
               [7] = E(OP_IDIV, 0)},
    [G3_F7] = {[0 ... 1] = E(OP_TEST_I, D_IZ), [2] = E(OP_NOT, D_LOCK), [3] = E(OP_NEG, D_LOCK),
               [4] = E(OP_MUL, 0), [5] = E(OP_IMUL1, 0), [6] = E(OP_DIV, 0),
               [7] = E(OP_IDIV, 0)},
    [G4_FE] = {[0] = E(OP_INC, D_LOCK), [1] = E(OP_DEC, D_LOCK)},
    [G5_FF] = {[0] = E(OP_INC, D_LOCK), [1] = E(OP_DEC, D_LOCK), [2] = E(OP_CALL_E, D_D64 | D_END),
               [3] = E(OP_CALLF, D_MEM | D_END), [4] = E(OP_JMP_E, D_D64 | D_END),
               [5] = E(OP_JMPF, D_MEM | D_END), [6] = E(OP_PUSH_E, D_D64)},
    [G6_0F00] = {[0] = E(OP_SLDT, 0), [1] = E(OP_STR, 0), [2] = E(OP_LLDT, D_RM16 | D_END),
                 [3] = E(OP_LTR, D_RM16 | D_END), [4] = E(OP_VERR, D_RM16),
                 [5] = E(OP_VERW, D_RM16)},
    [G7_0F01] = {[0] = E(OP_SGDT, 0), [1] = E(OP_SIDT, 0), [2] = E(OP_LGDT, D_END),
                 [3] = E(OP_LIDT, D_END), [4] = E(OP_SMSW, 0), [6] = E(OP_LMSW, D_END),
                 [7] = E(OP_INVLPG, D_END)},
    [G8_0FBA] = {[4] = E(OP_BT_I, 0), [5 ... 7] = E(OP_BT_I, D_LOCK)},
    [G9_0FC7] = {[1] = E(OP_CMPXCHG8B, D_LOCK)},
    [G15_0FAE] = {[0] = E(OP_FXSAVE, 0), [1] = E(OP_FXRSTOR, 0), [2] = E(OP_LDMXCSR, 0),
                  [3] = E(OP_STMXCSR, 0), [7] = E(OP_CLFLUSH, 0)},
    [G16_0F18] = {[0 ... 7] = E(OP_NOPM, 0)},
    [GP_0F0D] = {[0 ... 7] = E(OP_NOPM, D_MEM)}, /* AMD: #UD with a register */
};

/* Register forms of D_GRPR groups: [group][reg] (0F01 is special-cased). */
static const struct opent grp_reg[G_COUNT][8] = {
    [G9_0FC7] = {[6] = E(OP_RDRAND, 0), [7] = E(OP_RDPID, 0)},
    [G15_0FAE] = {[5 ... 7] = E(OP_FENCE, 0)},
};

/* x87 register forms that are invalid: bit (modrm & 0x3f) per escape. */
static bool x87_reg_valid(uint8_t esc, uint8_t modrm)
{
    unsigned r = modrm & 0x3f, reg = r >> 3;
    switch (esc) {
    case 0xd9:
        if (reg == 2) return r == 0x10;                         /* FNOP */
        if (reg == 4) return r == 0x20 || r == 0x21 || r == 0x24 || r == 0x25;
        if (reg == 5) return r != 0x2f;
        return true;
    case 0xda:
        if (reg < 4) return true;
        return r == 0x29;                                       /* FUCOMPP */
    case 0xdb:
        if (reg < 4 || reg == 5 || reg == 6) return true;
        if (reg == 4) return r <= 0x24;                         /* FENI..FSETPM */
        return false;
    case 0xdd:
        return reg != 6 && reg != 7;
    case 0xde:
        if (reg == 3) return r == 0x19;                         /* FCOMPP */
        return true;
    case 0xdf:
        if (reg == 4) return r == 0x20;                         /* FNSTSW AX */
        return reg != 7;
    default:
        return true;
    }
}

static int x87_mem_valid(uint8_t esc, unsigned reg)
{
    switch (esc) {
    case 0xd9: return reg != 1;
    case 0xdb: return reg != 4 && reg != 6;
    case 0xdd: return reg != 5;
    default: return 1;
    }
}

/* 32-bit code: what the engine runs there. Integer and control-register
 * work with 32-bit addresses; nothing that uses the stack (its width
 * follows SS there), moves IP to a run-time target, or reads a
 * descriptor-table register (their 32-bit forms differ). Enough for the
 * short stretches of 32-bit code a 64-bit kernel runs (Linux's AP
 * trampoline); the rest stops the engine with an error, not a guess. */
static bool decode32_supported(unsigned id)
{
    switch (id) {
    case OP_ALU: case OP_ALU_I: case OP_MOV: case OP_MOV_RI: case OP_MOV_EI:
    case OP_MOV_MOFFS: case OP_LEA: case OP_TEST: case OP_TEST_I: case OP_XCHG:
    case OP_XCHG_AX: case OP_INC: case OP_DEC: case OP_NOT: case OP_NEG: case OP_SHIFT:
    case OP_BT: case OP_BT_I: case OP_JCC: case OP_JMP: case OP_LOOP: case OP_JRCXZ:
    case OP_CMOV: case OP_SETCC: case OP_MOVZX: case OP_MOVSX: case OP_MOV_SR:
    case OP_MOV_RS: case OP_MOV_TO_CR: case OP_MOV_FROM_CR: case OP_RDMSR: case OP_WRMSR:
    case OP_CPUID: case OP_JMPF: case OP_JMPF_D: case OP_NOP90: case OP_PAUSE:
    case OP_CLD: case OP_STD: case OP_CLC: case OP_STC: case OP_CMC: case OP_CLI:
    case OP_IN: case OP_OUT: case OP_CBW: case OP_CWD: case OP_IMUL2: case OP_IMUL3:
    case OP_RDTSC: case OP_XADD: case OP_CMPXCHG: case OP_BSWAP: case OP_BSF: case OP_BSR:
    case OP_MOVS: case OP_STOS: case OP_LODS: case OP_CMPS: case OP_SCAS: case OP_WBINVD:
    case OP_INT: /* delivered in IA-32e mode as from 64-bit code */
    case OP_SYSCALL: /* to CSTAR */
    case OP_HX: case OP_EMMS: case OP_X87_CTL: /* x87/MMX/SSE on host stubs, as in 64-bit code */
    case OP_PUSH_R: case OP_POP_R: case OP_PUSH_I: case OP_PUSH_E: case OP_POP_E:
    case OP_CALL: case OP_RET: case OP_RET_I: case OP_JMP_E: case OP_CALL_E: case OP_LEAVE:
    case OP_PUSHF: case OP_POPF: case OP_ENTER: case OP_PUSH_SREG: case OP_POP_SREG:
    case OP_PUSHA: case OP_POPA: case OP_BCD: case OP_INTO: case OP_CALLF: case OP_CALLF_D:
    case OP_RETF: case OP_LSEG: case OP_BOUND: case OP_ARPL: case OP_SALC:
    /* what runs as its 32-bit-operand form in 64-bit code does here too */
    case OP_SAHF: case OP_LAHF: case OP_INT3: case OP_INT1: case OP_HLT: case OP_STI:
    case OP_MUL: case OP_IMUL1: case OP_DIV: case OP_IDIV: case OP_NOPM: case OP_SHLD:
    case OP_SHRD: case OP_POPCNT: case OP_LZCNT: case OP_MOVNTI: case OP_CMPXCHG8B:
    case OP_RDRAND: case OP_RDPID: case OP_RDTSCP: case OP_FXSAVE: case OP_FXRSTOR:
    case OP_LDMXCSR: case OP_STMXCSR: case OP_CLFLUSH: case OP_FENCE: case OP_MOVBE:
    case OP_CRC32: case OP_UD: case OP_FWAIT: case OP_MASKMOV: case OP_LAR: case OP_LSL:
    case OP_VERR: case OP_VERW: case OP_SLDT: case OP_STR: case OP_SMSW:
    case OP_XLAT: case OP_INS: case OP_OUTS: case OP_IRET: case OP_ADCX: case OP_ADOX:
    case OP_ANDN: case OP_BEXTR: case OP_BLS: case OP_BZHI: case OP_PDEP: case OP_PEXT:
    case OP_MULX: case OP_SHIFTX: case OP_RORX: case OP_TZCNT:
        return true;
    default:
        return false;
    }
}

int decode(const uint8_t *b, unsigned avail, struct dec *d)
{
    return decode_mode(b, avail, d, false);
}

/* JMP ptr16:32 (EA) and CALL ptr16:32 (9A), which only 32-bit code has. */
static int decode_jmpf_direct(const uint8_t *b, unsigned p, unsigned max, struct dec *d,
                              unsigned id)
{
    if (d->p66 || p + 6 > max)
        return p + 6 > 15 ? (d->len = 15, DEC_GP) : d->p66 ? DEC_NOIMPL : DEC_SHORT;
    d->imm = le32_load(b + p);
    d->imm2 = le16_load(b + p + 4);
    d->pos_imm = (uint8_t)p;
    d->imm_len = 6;
    d->len = (uint8_t)(p + 6);
    memcpy(d->bytes, b, d->len);
    d->id = (uint16_t)id;
    d->fl = D_END;
    d->lg = 2;
    return d->lock ? DEC_UD : DEC_OK;
}

/* INC/DEC r16/32 (40-4F), REX prefixes in 64-bit mode. */
static int decode_incdec_reg(const uint8_t *b, unsigned p, struct dec *d, uint8_t op)
{
    d->id = op < 0x48 ? OP_INC : OP_DEC;
    d->mod = 3;
    d->rm = op & 7;
    d->lg = d->p66 ? 1 : 2;
    d->len = (uint8_t)p;
    memcpy(d->bytes, b, p);
    d->fl = D_M;
    return d->lock ? DEC_UD : DEC_OK;
}

int decode_mode(const uint8_t *b, unsigned avail, struct dec *d, bool mode32)
{
    memset(d, 0, sizeof(*d));
    d->mode32 = mode32;
    d->seg = SEG_NONE;
    d->base = d->index = NOREG;
    unsigned max = avail < 15 ? avail : 15;
    unsigned p = 0;
#define NEED(n)                                                                 \
    do {                                                                        \
        if (p + (n) > max)                                                      \
            return p + (n) > 15 ? (d->len = 15, DEC_GP) : DEC_SHORT;            \
    } while (0)

    /* prefixes */
    for (;;) {
        NEED(1);
        uint8_t x = b[p];
        switch (x) {
        case 0x26: case 0x2e: case 0x36: case 0x3e:
            /* ignored in 64-bit mode, even after FS/GS (measured) */
            if (d->seg != SEG_FS && d->seg != SEG_GS)
                d->seg = x == 0x26 ? SEG_ES : x == 0x2e ? SEG_CS : x == 0x36 ? SEG_SS : SEG_DS;
            break;
        case 0x64: d->seg = SEG_FS; break;
        case 0x65: d->seg = SEG_GS; break;
        case 0x66: d->p66 = true; break;
        case 0x67: d->p67 = true; break;
        case 0xf0: d->lock = true; break;
        case 0xf2: case 0xf3: d->rep = x; break;
        default:
            if (!mode32 && (x & 0xf0) == 0x40) {
                d->rex = x;
                p++;
                continue;
            }
            goto opcode;
        }
        d->rex = 0; /* a legacy prefix after REX cancels it */
        p++;
    }
opcode:;
    const struct opent *tab = map1;
    struct opent e;
    uint8_t op;
    NEED(1);
    if (mode32) {
        d->a16 = d->p67;       /* 0x67: 16-bit addresses */
        d->p67 = true;         /* not 64-bit ones, as 0x67 gives 64-bit code */
    }
    if (vex_present(b, p, max, mode32)) {
        int r = vex_prefix(b, &p, max, d);
        if (r != DEC_OK)
            return r == DEC_GP ? (d->len = 15, DEC_GP) : r;
        NEED(1);
        op = b[p++];
        d->op = op;
        d->pos_op = (uint8_t)(p - 1);
        e = (struct opent)E(0, vex_layout(d->map, op));
        goto modrm;
    }
    op = b[p++];
    d->map = 0;
    if (mode32) {
        if ((op & 0xf0) == 0x40)
            return decode_incdec_reg(b, p, d, op);
        if (op == 0xea || op == 0x9a)
            return decode_jmpf_direct(b, p, max, d, op == 0x9a ? OP_CALLF_D : OP_JMPF_D);
    }
    if (op == 0x0f) {
        NEED(1);
        op = b[p++];
        tab = map0f;
        d->map = 1;
        if (op == 0x38 || op == 0x3a) {
            d->map = op == 0x38 ? 2 : 3;
            tab = op == 0x38 ? map2 : map3;
            NEED(1);
            op = b[p++];
        }
    }
    d->op = op;
    d->pos_op = (uint8_t)(p - 1);
    if (d->map == 0 && op == 0x8f && p < max && (b[p] & 0x1f) >= 8) {
        /* an XOP prefix (no XOP offered): #UD, or #GP when the encoding it
         * would have is longer than 15 bytes (measured: maps 8, 9, 0Ah
         * with imm8, none, imm32) */
        unsigned m = b[p] & 0x1f, q = p + 2;
        if (m > 10 || q + 2 > max || d->rex) /* measured: REX before it, #UD first */
            return DEC_UD;
        uint8_t modrm = b[q + 1];
        unsigned mod = modrm >> 6, rm = modrm & 7, n = q + 2;
        if (mod != 3 && rm == 4) {
            if (q + 3 > max)
                return max < 15 && avail < 15 ? DEC_SHORT : DEC_GP;
            n += 1 + ((mod == 0 && (b[q + 2] & 7) == 5) ? 4 : 0);
        }
        else if (mod == 0 && rm == 5)
            n += 4;
        n += mod == 1 ? 1 : mod == 2 ? 4 : 0;
        n += m == 8 ? 1 : m == 10 ? 4 : 0;
        d->len = (uint8_t)(n > 15 ? 15 : n);
        return n > 15 ? DEC_GP : DEC_UD;
    }
    e = tab[op];
    if (mode32 && d->map == 0 && !e.id && !e.fl) /* (group 0, G1_80, has id 0) */
        e = map1_compat[op];
    if (mode32 && d->map == 0 && op == 0x63)
        e = (struct opent)E(OP_ARPL, D_M); /* not MOVSXD */
    d->mand = d->rep == 0xf3 ? 2 : d->rep == 0xf2 ? 3 : d->p66 ? 1 : 0;

modrm:;
    /* ModRM and the memory operand */
    bool w = d->rex & 8;
    if (e.fl & (D_M | D_GRP)) {
        NEED(1);
        d->pos_modrm = (uint8_t)p;
        uint8_t m = b[p++];
        d->modrm = m;
        d->mod = m >> 6;
        d->reg = ((m >> 3) & 7) | ((d->rex & 4) << 1);
        d->rm = m & 7;
        if (d->map == 1 && op >= 0x20 && op <= 0x23)
            d->mod = 3; /* MOV CR/DR: the mod field is ignored */
        if (d->mod == 3) {
            d->rm |= (d->rex & 1) << 3;
        } else if (d->a16) { /* BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP or disp16, BX */
            static const uint8_t base16[8] = {3, 3, 5, 5, 6, 7, 5, 3};
            static const uint8_t index16[8] = {6, 7, 6, 7, NOREG, NOREG, NOREG, NOREG};
            d->has_mem = true;
            d->base = base16[d->rm];
            d->index = index16[d->rm];
            unsigned dsz = d->mod == 1 ? 1 : d->mod == 2 ? 2 : 0;
            if (d->mod == 0 && d->rm == 6) {
                d->base = NOREG;
                dsz = 2;
            }
            d->pos_disp = (uint8_t)p;
            NEED(dsz);
            if (dsz == 1)
                d->disp = (int8_t)b[p];
            else if (dsz == 2)
                d->disp = (int16_t)le16_load(b + p);
            p += dsz;
        } else {
            d->has_mem = true;
            unsigned dsz = d->mod == 1 ? 1 : d->mod == 2 ? 4 : 0;
            if (d->rm == 4) {
                NEED(1);
                uint8_t sib = b[p++];
                d->scale = sib >> 6;
                unsigned idx = ((sib >> 3) & 7) | ((d->rex & 2) << 2);
                d->index = idx == 4 ? NOREG : (uint8_t)idx;
                d->base = (sib & 7) | ((d->rex & 1) << 3);
                if ((sib & 7) == 5 && d->mod == 0) {
                    d->base = NOREG;
                    dsz = 4;
                }
            } else if (d->rm == 5 && d->mod == 0) {
                d->riprel = !mode32; /* 32-bit code: an absolute disp32 */
                dsz = 4;
            } else {
                d->base = d->rm | ((d->rex & 1) << 3);
            }
            d->pos_disp = (uint8_t)p;
            NEED(dsz);
            if (dsz == 1)
                d->disp = (int8_t)b[p];
            else if (dsz == 4)
                d->disp = (int32_t)le32_load(b + p);
            p += dsz;
        }
    }

    /* resolve groups and mandatory-prefix tables */
    uint32_t fl = e.fl;
    unsigned id = e.id;
    if (fl & D_GRP) {
        unsigned g = id;
        if (g == G7_0F01 && d->mod == 3) {
            unsigned r = d->modrm & 0x3f;
            id = 0;
            fl = D_M | D_REG;
            if (r >= 0x20 && r <= 0x27) id = OP_SMSW;
            else if (r >= 0x30 && r <= 0x37) { id = OP_LMSW; fl |= D_END; }
            else if (r == 0x38) id = OP_SWAPGS;
            else if (r == 0x39) id = OP_RDTSCP;
        } else {
            const struct opent *ge = (fl & D_GRPR) && d->mod == 3 ? &grp_reg[g][d->reg & 7]
                                                                   : &grp_mem[g][d->reg & 7];
            id = ge->id;
            fl = (fl & ~(D_GRP | D_GRPR | D_LOCK)) | ge->fl;
            if ((e.fl & D_GRPR) && d->mod != 3)
                fl |= D_MEM;
        }
    }
    if (d->vex)
        id = vex_op(d);
    else if (d->map == 2 && (op == 0xf0 || op == 0xf1)) {
        if (d->rep == 0xf2) {
            id = OP_CRC32;
            fl = D_M | (op == 0xf0 ? D_B : 0);
        } else if (d->rep == 0xf3) {
            id = 0;
        } else {
            fl |= D_MEM;
        }
    }
    if (!d->vex && d->map == 2 && op == 0xf6 && (d->mand == 1 || d->mand == 2)) {
        id = d->mand == 1 ? OP_ADCX : OP_ADOX; /* 66: ADCX, F3: ADOX (ADX) */
        fl = D_M;
    }
    if (d->map == 1 && op == 0xb8 && d->rep != 0xf3)
        id = 0;
    if (!d->vex && d->map == 1 && op == 0xbd && d->rep == 0xf3)
        id = OP_LZCNT; /* (BSR where CPUID hides LZCNT: the builder decides) */
    if (!d->vex && d->map == 1 && op == 0xbc && d->rep == 0xf3)
        id = OP_TZCNT; /* (BSF where CPUID hides BMI1) */
    if (fl & D_X87) {
        if (d->mod == 3 ? !x87_reg_valid(op, d->modrm) : !x87_mem_valid(op, d->reg & 7))
            id = 0;
    }
    if (fl & D_SSE) {
        const struct sse_ent *se;
        if (d->map == 1)
            se = &sse0f[op][d->mand];
        else if (d->map == 2)
            se = &sse0f38[op][d->mand];
        else
            se = &sse0f3a[op][d->mand];
        d->sse = *se;
        id = se->id;
        if (se->fl & S_IMM)
            fl |= D_IB;
        if (se->fl & S_MEMONLY)
            fl |= D_MEM;
        if (se->fl & S_REGONLY)
            fl |= D_REG;
        if (d->map == 1 && op >= 0x71 && op <= 0x73) {
            unsigned r = d->reg & 7;
            bool ok = op == 0x73 ? (r == 2 || r == 6 || ((r == 3 || r == 7) && d->mand == 1))
                                 : (r == 2 || r == 4 || r == 6);
            if (!ok)
                id = 0;
        }
        /* the REX.W variants with a general register operand */
        if (id && (d->sse.kreg == K_G || d->sse.krm == K_G) && w && d->sse.msize == 4)
            d->sse.msize = 8;
    }
    if (d->map == 1 && op == 0xc7 && id == OP_RDPID && d->rep != 0xf3)
        id = 0;
    if (d->map == 1 && op == 0xc7 && id == OP_RDRAND && d->rep)
        id = 0;
    if (d->map == 1 && op == 0xae && d->mod == 3 && (d->rep || d->p66))
        id = d->rep == 0xf3 && !mode32 && (d->reg & 7) < 4 ? OP_FSGSBASE : 0; /* RD/WR FS/GS BASE */
    if (d->map == 1 && op == 0xae && d->mod != 3 && (d->rep || d->p66))
        id = (d->p66 && !d->rep && (d->reg & 7) == 7) ? OP_CLFLUSH : 0; /* CLFLUSHOPT */
    if (d->map == 1 && (op == 0x77 || op == 0xc3) && (d->rep || d->p66))
        id = 0; /* EMMS, MOVNTI: no 66/F2/F3 (measured) */
    if (d->map == 1 && (op == 0x20 || op == 0x22) && d->reg != 0 && d->reg != 2 &&
        d->reg != 3 && d->reg != 4 && d->reg != 8)
        id = 0; /* no such control register */
    if (d->map == 1 && (op == 0x21 || op == 0x23) && d->reg > 7)
        id = 0;
    if (d->map == 0 && op == 0x8e && ((d->reg & 7) == 1 || (d->reg & 7) > 5))
        id = 0;
    if (d->map == 0 && op == 0x8c && (d->reg & 7) > 5)
        id = 0;
    if (d->map == 0 && op == 0x90) {
        if (d->rex & 1)
            id = OP_XCHG_AX;
        else if (d->rep == 0xf3)
            id = OP_PAUSE;
    }

    /* operand size */
    if (fl & D_B)
        d->lg = 0;
    else if (fl & D_W64)
        d->lg = mode32 ? 2 : 3;
    else if (w)
        d->lg = 3;
    else if (fl & D_D64)
        d->lg = d->p66 ? 1 : mode32 ? 2 : 3;
    else
        d->lg = d->p66 ? 1 : 2;

    /* immediates */
    unsigned isz = 0;
    if (fl & D_IB)
        isz = 1;
    else if (fl & D_IW)
        isz = 2;
    else if (fl & D_IZ)
        isz = d->lg == 1 ? 2 : 4;
    else if (fl & D_IV)
        isz = 1u << d->lg;
    else if (fl & D_MOFFS)
        isz = d->a16 ? 2 : d->p67 ? 4 : 8;
    else if (fl & D_IB2)
        isz = 3;
    d->pos_imm = (uint8_t)p;
    NEED(isz);
    switch (isz) {
    case 1: d->imm = (uint64_t)(int64_t)(int8_t)b[p]; break;
    case 2: d->imm = (uint64_t)(int64_t)(int16_t)le16_load(b + p); break;
    case 3: d->imm = le16_load(b + p); d->imm2 = b[p + 2]; break;
    case 4: d->imm = (uint64_t)(int64_t)(int32_t)le32_load(b + p); break;
    case 8: d->imm = le32_load(b + p) | (uint64_t)le32_load(b + p + 4) << 32; break;
    default: break;
    }
    if ((fl & D_MOFFS) && isz == 4)
        d->imm = (uint32_t)d->imm;
    if ((fl & D_MOFFS) && isz == 2)
        d->imm = (uint16_t)d->imm;
    d->imm_len = (uint8_t)isz;
    p += isz;
    d->len = (uint8_t)p;
    memcpy(d->bytes, b, p);
    d->id = (uint16_t)id;
    d->fl = fl;

    if (mode32 && !id && d->map == 1 && (op == 0x34 || op == 0x35))
        return DEC_UD; /* SYSENTER/SYSEXIT: #UD in long mode on AMD, as the engine is */
    if (mode32 && d->vex && !id)
        return DEC_UD; /* AVX and the like: not offered, as in 64-bit code */
    if (mode32 && id == OP_SWAPGS)
        return DEC_UD; /* 64-bit code only */
    if (mode32 && (!id || !decode32_supported(id)))
        return DEC_NOIMPL;
    if (mode32 && id == OP_NOPM && d->map == 1 && (op == 0x1a || op == 0x1b))
        return DEC_NOIMPL; /* MPX's encodings there, which Zydis and CPUs disagree on */
    if (!id)
        return DEC_UD;
    if ((fl & D_NO64) || ((fl & D_MEM) && d->mod == 3) || ((fl & D_REG) && d->mod != 3))
        return DEC_UD;
    if (!mode32 && d->lock && d->map == 1 && (op == 0x20 || op == 0x22) && (d->reg & 7) == 0)
        return DEC_OK; /* AMD AltMovCr8: LOCK MOV CR0 is MOV CR8 */
    if (!mode32 && d->lock && d->map == 1 && op == 0x00 && (d->reg & 7) == 5 && d->mod != 3)
        return DEC_OK; /* measured (64-bit code): LOCK VERW m16 executes on the host */
    if (d->lock && (!(fl & D_LOCK) || d->mod == 3))
        return DEC_UD;
    return DEC_OK;
#undef NEED
}
