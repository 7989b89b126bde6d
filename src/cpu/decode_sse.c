/* The decoder's SSE, SSSE3, SSE4, AES-NI, PCLMULQDQ and SHA tables (0F,
 * 0F38 and 0F3A maps): what each opcode takes with each mandatory prefix —
 * operand kinds, the memory operand's size, alignment and flags. */
#include "cpu/internal.h"

/* Tables set ranges first and refine single entries after. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* SSE tables: index by [opcode][mandatory prefix: none, 66, F3, F2] */
#define X_(ms, fl) {OP_HX, K_X, K_X, ms, fl}
#define M_(ms, fl) {OP_HX, K_M, K_M, ms, fl}
#define XA16 X_(16, S_ALIGN)
#define MX(mmx_ms) {M_(mmx_ms, 0), XA16, {0}, {0}} /* MMX + SSE2 integer op */
#define PS_PD_SS_SD {XA16, XA16, X_(4, 0), X_(8, 0)}
#define PS_PD {XA16, XA16, {0}, {0}}
#define X66(e) {{0}, e, {0}, {0}}

const struct sse_ent sse0f[256][4] = {
    [0x10] = {X_(16, 0), X_(16, 0), X_(4, 0), X_(8, 0)},
    [0x11] = {X_(16, S_WMEM | S_NORMEM), X_(16, S_WMEM | S_NORMEM), X_(4, S_WMEM | S_NORMEM),
              X_(8, S_WMEM | S_NORMEM)},
    [0x12] = {X_(8, 0), X_(8, S_MEMONLY), X_(16, S_ALIGN), X_(8, 0)},
    [0x13] = {X_(8, S_MEMONLY | S_WMEM | S_NORMEM), X_(8, S_MEMONLY | S_WMEM | S_NORMEM), {0},
              {0}},
    [0x14] = PS_PD,
    [0x15] = PS_PD,
    [0x16] = {X_(8, 0), X_(8, S_MEMONLY), X_(16, S_ALIGN), {0}},
    [0x17] = {X_(8, S_MEMONLY | S_WMEM | S_NORMEM), X_(8, S_MEMONLY | S_WMEM | S_NORMEM), {0},
              {0}},
    [0x28] = PS_PD,
    [0x29] = {X_(16, S_ALIGN | S_WMEM | S_NORMEM), X_(16, S_ALIGN | S_WMEM | S_NORMEM), {0}, {0}},
    [0x2a] = {{OP_HX, K_X, K_M, 8, 0}, {OP_HX, K_X, K_M, 8, 0}, {OP_HX, K_X, K_G, 4, 0},
              {OP_HX, K_X, K_G, 4, 0}},
    [0x2b] = {X_(16, S_ALIGN | S_MEMONLY | S_WMEM | S_NORMEM),
              X_(16, S_ALIGN | S_MEMONLY | S_WMEM | S_NORMEM), {0}, {0}},
    [0x2c] = {{OP_HX, K_M, K_X, 8, 0}, {OP_HX, K_M, K_X, 16, S_ALIGN},
              {OP_HX, K_G, K_X, 4, S_GREG}, {OP_HX, K_G, K_X, 8, S_GREG}},
    [0x2d] = {{OP_HX, K_M, K_X, 8, 0}, {OP_HX, K_M, K_X, 16, S_ALIGN},
              {OP_HX, K_G, K_X, 4, S_GREG}, {OP_HX, K_G, K_X, 8, S_GREG}},
    [0x2e] = {X_(4, S_FLAGS), X_(8, S_FLAGS), {0}, {0}},
    [0x2f] = {X_(4, S_FLAGS), X_(8, S_FLAGS), {0}, {0}},
    [0x50] = {{OP_HX, K_G, K_X, 0, S_REGONLY | S_GREG}, {OP_HX, K_G, K_X, 0, S_REGONLY | S_GREG},
              {0}, {0}},
    [0x51] = PS_PD_SS_SD,
    [0x52] = {XA16, {0}, X_(4, 0), {0}},
    [0x53] = {XA16, {0}, X_(4, 0), {0}},
    [0x54 ... 0x57] = PS_PD,
    [0x58 ... 0x59] = PS_PD_SS_SD,
    [0x5a] = {X_(8, 0), XA16, X_(4, 0), X_(8, 0)},
    [0x5b] = {XA16, XA16, XA16, {0}},
    [0x5c ... 0x5f] = PS_PD_SS_SD,
    [0x60 ... 0x62] = MX(4),
    [0x63 ... 0x6b] = MX(8),
    [0x6c ... 0x6d] = X66(XA16),
    [0x6e] = {{OP_HX, K_M, K_G, 4, 0}, {OP_HX, K_X, K_G, 4, 0}, {0}, {0}},
    [0x6f] = {M_(8, 0), XA16, X_(16, 0), {0}},
    [0x70] = {M_(8, S_IMM), X_(16, S_ALIGN | S_IMM), X_(16, S_ALIGN | S_IMM),
              X_(16, S_ALIGN | S_IMM)},
    /* 71-73: shift-by-immediate groups, validated in decode() */
    [0x71 ... 0x73] = {{OP_HX, K_M, K_M, 0, S_REGONLY | S_IMM},
                       {OP_HX, K_X, K_X, 0, S_REGONLY | S_IMM}, {0}, {0}},
    [0x74 ... 0x76] = MX(8),
    [0x7c ... 0x7d] = {{0}, XA16, {0}, XA16},
    [0x7e] = {{OP_HX, K_M, K_G, 4, S_WMEM | S_NORMEM}, {OP_HX, K_X, K_G, 4, S_WMEM | S_NORMEM},
              X_(8, 0), {0}},
    [0x7f] = {M_(8, S_WMEM | S_NORMEM), X_(16, S_ALIGN | S_WMEM | S_NORMEM),
              X_(16, S_WMEM | S_NORMEM), {0}},
    [0xc2] = {X_(16, S_ALIGN | S_IMM), X_(16, S_ALIGN | S_IMM), X_(4, S_IMM), X_(8, S_IMM)},
    [0xc4] = {{OP_HX, K_M, K_G32, 2, S_IMM}, {OP_HX, K_X, K_G32, 2, S_IMM}, {0}, {0}},
    [0xc5] = {{OP_HX, K_G32, K_M, 0, S_REGONLY | S_IMM | S_GREG},
              {OP_HX, K_G32, K_X, 0, S_REGONLY | S_IMM | S_GREG}, {0}, {0}},
    [0xc6] = {X_(16, S_ALIGN | S_IMM), X_(16, S_ALIGN | S_IMM), {0}, {0}},
    [0xd0] = {{0}, XA16, {0}, XA16},
    [0xd1 ... 0xd5] = MX(8),
    [0xd6] = {{0}, X_(8, S_WMEM | S_NORMEM), {OP_HX, K_X, K_M, 0, S_REGONLY},
              {OP_HX, K_M, K_X, 0, S_REGONLY}},
    [0xd7] = {{OP_HX, K_G32, K_M, 0, S_REGONLY | S_GREG},
              {OP_HX, K_G32, K_X, 0, S_REGONLY | S_GREG}, {0}, {0}},
    [0xd8 ... 0xdf] = MX(8),
    [0xe0 ... 0xe5] = MX(8),
    [0xe6] = {{0}, XA16, X_(8, 0), XA16},
    [0xe7] = {M_(8, S_MEMONLY | S_WMEM | S_NORMEM), X_(16, S_ALIGN | S_MEMONLY | S_WMEM | S_NORMEM),
              {0}, {0}},
    [0xe8 ... 0xef] = MX(8),
    [0xf0] = {{0}, {0}, {0}, X_(16, S_MEMONLY)},
    [0xf1 ... 0xf6] = MX(8),
    [0xf7] = {{OP_MASKMOV, K_M, K_M, 0, S_REGONLY}, {OP_MASKMOV, K_X, K_X, 0, S_REGONLY}, {0}, {0}},
    [0xf8 ... 0xfe] = MX(8),
};

const struct sse_ent sse0f38[256][4] = {
    [0x00 ... 0x0b] = MX(8),
    [0x1c ... 0x1e] = MX(8),
    [0x10] = X66(XA16),
    [0x14 ... 0x15] = X66(XA16),
    [0x17] = X66(X_(16, S_ALIGN | S_FLAGS)),
    [0x20] = X66(X_(8, 0)),
    [0x21] = X66(X_(4, 0)),
    [0x22] = X66(X_(2, 0)),
    [0x23] = X66(X_(8, 0)),
    [0x24] = X66(X_(4, 0)),
    [0x25] = X66(X_(8, 0)),
    [0x28 ... 0x29] = X66(XA16),
    [0x2a] = X66(X_(16, S_ALIGN | S_MEMONLY)),
    [0x2b] = X66(XA16),
    [0x30] = X66(X_(8, 0)),
    [0x31] = X66(X_(4, 0)),
    [0x32] = X66(X_(2, 0)),
    [0x33] = X66(X_(8, 0)),
    [0x34] = X66(X_(4, 0)),
    [0x35] = X66(X_(8, 0)),
    [0x37 ... 0x41] = X66(XA16),
    [0xdb ... 0xdf] = X66(XA16), /* AESIMC AESENC AESENCLAST AESDEC AESDECLAST */
    [0xc8 ... 0xcd] = {X_(16, 0), {0}, {0}, {0}}, /* SHA1NEXTE ... SHA256MSG2 (unaligned: measured) */
};

#define XI(ms, fl) X_(ms, (fl) | S_IMM)
const struct sse_ent sse0f3a[256][4] = {
    [0x0f] = {M_(8, S_IMM), XI(16, S_ALIGN), {0}, {0}},
    [0x08 ... 0x09] = X66(XI(16, S_ALIGN)),
    [0x0a] = X66(XI(4, 0)),
    [0x0b] = X66(XI(8, 0)),
    [0x0c ... 0x0e] = X66(XI(16, S_ALIGN)),
    [0x14] = X66(((struct sse_ent){OP_HX, K_X, K_G32, 1, S_IMM | S_WMEM | S_NORMEM})),
    [0x15] = X66(((struct sse_ent){OP_HX, K_X, K_G32, 2, S_IMM | S_WMEM | S_NORMEM})),
    [0x16] = X66(((struct sse_ent){OP_HX, K_X, K_G, 4, S_IMM | S_WMEM | S_NORMEM})),
    [0x17] = X66(((struct sse_ent){OP_HX, K_X, K_G32, 4, S_IMM | S_WMEM | S_NORMEM})),
    [0x20] = X66(((struct sse_ent){OP_HX, K_X, K_G32, 1, S_IMM})),
    [0x21] = X66(XI(4, 0)),
    [0x22] = X66(((struct sse_ent){OP_HX, K_X, K_G, 4, S_IMM})),
    [0x40 ... 0x42] = X66(XI(16, S_ALIGN)),
    [0x60 ... 0x63] = X66(XI(16, S_FLAGS)),
    [0x44] = X66(XI(16, S_ALIGN)), /* PCLMULQDQ */
    [0xdf] = X66(XI(16, S_ALIGN)), /* AESKEYGENASSIST */
    [0xcc] = {XI(16, 0), {0}, {0}, {0}}, /* SHA1RNDS4 (unaligned: measured) */
};
