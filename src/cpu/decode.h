/* x86-64 instruction decoder: bytes -> struct dec (length, operands, the
 * semantic op) for 64-bit mode. Validity follows what the engine
 * implements: an opcode the engine does not execute decodes as #UD. */
#ifndef EMBER_CPU_DECODE_H
#define EMBER_CPU_DECODE_H

#include <stdbool.h>
#include <stdint.h>

/* Table flags */
#define D_M 0x1u         /* ModRM follows */
#define D_IB 0x2u        /* imm8 */
#define D_IW 0x4u        /* imm16 */
#define D_IZ 0x8u        /* imm16/32 by operand size (sign-extended to 64) */
#define D_IV 0x10u       /* imm16/32/64 by operand size (MOV r, imm) */
#define D_B 0x20u        /* byte operands */
#define D_D64 0x40u      /* default operand size 64 (0x66 -> 16) */
#define D_NO64 0x80u     /* invalid in 64-bit mode */
#define D_LOCK 0x100u    /* LOCK allowed (memory destination) */
#define D_MEM 0x200u     /* ModRM must be a memory operand */
#define D_REG 0x400u     /* ModRM must be a register */
#define D_GRP 0x800u     /* id is a group: ModRM.reg selects */
#define D_J 0x1000u      /* relative branch: imm is a displacement */
#define D_MOFFS 0x2000u  /* 64-bit (or 32 with 0x67) absolute offset */
#define D_SSE 0x4000u    /* id indexes an SSE table by mandatory prefix */
#define D_END 0x8000u    /* ends the block */
#define D_W64 0x10000u   /* operand size 64 always (0x66 ignored) */
#define D_IB2 0x20000u   /* ENTER: imm16 + imm8 */
#define D_GRPR 0x40000u  /* group with separate register-form table */
#define D_RM8 0x80000u   /* r/m operand is 8-bit (MOVZX/MOVSX Eb, SETcc) */
#define D_RM16 0x100000u /* r/m operand is 16-bit (MOVZX Ew, Sreg ops) */
#define D_X87 0x200000u
#define D_NOREP 0x400000u /* (SSE) */

enum op_id {
    OP_INVALID = 0,
    OP_ALU,       /* 00-3d: sub-op = op >> 3 */
    OP_ALU_I,     /* 80/81/83: sub-op = reg */
    OP_PUSH_R, OP_POP_R, OP_MOVSXD, OP_PUSH_I, OP_IMUL3, OP_INS, OP_OUTS, OP_JCC,
    OP_TEST, OP_XCHG, OP_MOV, OP_MOV_SR, OP_LEA, OP_MOV_RS, OP_POP_E, OP_NOP90,
    OP_XCHG_AX, OP_CBW, OP_CWD, OP_FWAIT, OP_PUSHF, OP_POPF, OP_SAHF, OP_LAHF,
    OP_MOV_MOFFS, OP_MOVS, OP_CMPS, OP_STOS, OP_LODS, OP_SCAS, OP_MOV_RI, OP_SHIFT,
    OP_RET_I, OP_RET, OP_MOV_EI, OP_ENTER, OP_LEAVE, OP_RETF, OP_INT3, OP_INT,
    OP_IRET, OP_XLAT, OP_LOOP, OP_JRCXZ, OP_IN, OP_OUT, OP_CALL, OP_JMP, OP_INT1,
    OP_HLT, OP_CMC, OP_TEST_I, OP_NOT, OP_NEG, OP_MUL, OP_IMUL1, OP_DIV, OP_IDIV,
    OP_CLC, OP_STC, OP_CLI, OP_STI, OP_CLD, OP_STD, OP_INC, OP_DEC, OP_CALL_E,
    OP_CALLF, OP_JMP_E, OP_JMPF, OP_PUSH_E,
    /* 0F */
    OP_SLDT, OP_STR, OP_LLDT, OP_LTR, OP_VERR, OP_VERW, OP_SGDT, OP_SIDT, OP_LGDT,
    OP_LIDT, OP_SMSW, OP_LMSW, OP_INVLPG, OP_SWAPGS, OP_RDTSCP, OP_LAR, OP_LSL,
    OP_SYSCALL, OP_CLTS, OP_SYSRET, OP_INVD, OP_WBINVD, OP_NOPM, OP_MOV_FROM_CR,
    OP_MOV_FROM_DR, OP_MOV_TO_CR, OP_MOV_TO_DR, OP_WRMSR, OP_RDTSC, OP_RDMSR,
    OP_RDPMC, OP_CMOV, OP_SETCC, OP_PUSH_SREG, OP_POP_SREG, OP_CPUID, OP_BT,
    OP_BT_I, OP_SHLD, OP_SHRD, OP_IMUL2, OP_CMPXCHG, OP_LSEG, OP_MOVZX, OP_MOVSX,
    OP_POPCNT, OP_BSF, OP_BSR, OP_LZCNT, OP_XADD, OP_MOVNTI, OP_CMPXCHG8B,
    OP_RDRAND, OP_RDPID, OP_BSWAP, OP_FXSAVE, OP_FXRSTOR, OP_LDMXCSR, OP_STMXCSR,
    OP_CLFLUSH, OP_FENCE, OP_PAUSE, OP_MOVBE, OP_CRC32, OP_ADCX, OP_ADOX, OP_FSGSBASE, OP_UD, OP_RSM_UD,
    OP_HX,        /* generic host-executed x87/MMX/SSE instruction */
    OP_EMMS, OP_MASKMOV, OP_X87_CTL,
    OP_JMPF_D,    /* JMP ptr16:32 (32-bit code only) */
    OP_BCD,       /* DAA DAS AAA AAS AAM AAD (32-bit code only) */
    OP_PUSHA, OP_POPA, OP_INTO, /* (32-bit code only) */
    OP_CALLF_D,   /* CALL ptr16:32 (32-bit code only) */
    OP_BOUND, OP_ARPL, OP_SALC, /* (32-bit code only) */
    /* BMI1/BMI2 (VEX-encoded, general registers), and BMI1's TZCNT (F3 0F BC) */
    OP_ANDN, OP_BEXTR, OP_BLS, OP_BZHI, OP_PDEP, OP_PEXT, OP_MULX, OP_SHIFTX, OP_RORX,
    OP_TZCNT,
    OP_COUNT
};

/* SSE operand kinds: what ModRM.reg and a register r/m name. */
enum {
    K_X = 0,   /* xmm */
    K_M,       /* mmx */
    K_G,       /* general register (32, or 64 with REX.W) */
    K_G32,     /* general register, 32-bit regardless of REX.W */
};

struct sse_ent {
    uint16_t id;       /* OP_HX, OP_INVALID or a special op */
    uint8_t kreg, krm; /* operand kinds (K_*) */
    uint8_t msize;     /* memory operand size in bytes */
    uint8_t fl;        /* S_* */
};
#define S_IMM 1u       /* imm8 */
#define S_ALIGN 2u     /* 16-byte aligned memory operand (#GP) */
#define S_MEMONLY 4u
#define S_REGONLY 8u
#define S_WMEM 16u     /* memory operand is written */
#define S_NORMEM 32u   /* memory operand is not read (pure store) */
#define S_FLAGS 64u    /* writes RFLAGS (COMISS, PTEST, PCMPxSTRx) */
#define S_GREG 128u    /* ModRM.reg is a general register that is written */

/* decode_sse.c: index by [opcode][mandatory prefix: none, 66, F3, F2] */
extern const struct sse_ent sse0f[256][4], sse0f38[256][4], sse0f3a[256][4];

enum { DEC_OK = 0, DEC_UD, DEC_GP, DEC_SHORT, DEC_NOIMPL /* 32-bit code the engine does not run */ };

struct dec {
    uint8_t len;
    uint8_t map;        /* 0: one-byte, 1: 0F, 2: 0F38, 3: 0F3A */
    uint8_t op;
    uint8_t modrm, mod, reg, rm; /* reg and rm (register form) include REX bits */
    uint8_t rex;
    uint8_t seg;        /* SEG_* of the effective override (SEG_NONE: none) */
    bool p66, p67, lock;
    bool a16;           /* 32-bit code with 0x67: 16-bit addresses (p67 set too) */
    uint8_t rep;        /* 0, 0xf2 or 0xf3 (last one) */
    uint8_t mand;       /* mandatory prefix: 0 none, 1 66, 2 F3, 3 F2 */
    uint8_t lg;         /* operand size: log2 bytes */
    uint8_t base, index, scale;
    bool riprel, has_mem;
    bool mode32;        /* decoded as 32-bit code */
    bool vex, vex_l;    /* VEX-encoded (C4/C5); its L bit */
    uint8_t vvvv;       /* VEX's extra register operand */
    int64_t disp;
    uint64_t imm, imm2;
    uint8_t imm_len, pos_op, pos_modrm, pos_disp, pos_imm;
    uint16_t id;
    uint32_t fl;
    struct sse_ent sse;
    uint8_t bytes[16];
};

/* Decode at most 'avail' bytes (<= 15 are looked at) of 64-bit code. */
int decode(const uint8_t *bytes, unsigned avail, struct dec *d);
/* The same, of 32-bit code when 'mode32' (32-bit operands and addresses,
 * 40-4F are INC/DEC, mod 0 r/m 5 is an absolute disp32, EA is a far jump;
 * only the subset the engine runs there: the rest is DEC_NOIMPL). */
int decode_mode(const uint8_t *bytes, unsigned avail, struct dec *d, bool mode32);

/* Build the record for a decoded instruction at virtual address 'va'.
 * Returns true if the instruction ends the block. 'ok' is false if the
 * engine has no handler (the record then raises #UD). */
bool build_insn(struct cpu *c, const struct dec *d, uint64_t va, struct insn *rec, bool *ok);

const char *op_name(unsigned id);

/* decode_vex.c: at b[p] after the legacy prefixes, is it a VEX prefix; parse
 * it (its R/X/B/W into d->rex, map, pp into d->mand, vvvv, L) and step past
 * it; the table flags of a VEX opcode; the op it is (0: #UD). */
bool vex_present(const uint8_t *b, unsigned p, unsigned max, bool mode32);
int vex_prefix(const uint8_t *b, unsigned *p, unsigned max, struct dec *d);
uint32_t vex_layout(unsigned map, uint8_t op);
unsigned vex_op(const struct dec *d);
bool sse_scalar(const struct dec *d); /* scalar SSE FP op (fpu.c) */

#endif
