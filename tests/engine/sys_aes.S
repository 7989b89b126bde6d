/* AES-NI, PCLMULQDQ and SHA (host stubs, offered where the host has them):
 * FIPS-197's AES-128 example (key 000102..0f, plaintext 00112233..ff,
 * ciphertext 69c4e0d8 6a7b0430 d8cdb780 70b4c55a) encrypted with a key
 * schedule from AESKEYGENASSIST and decrypted back with AESIMC'd keys;
 * carry-less products and a SHA1MSG1 (W0^W2, W1^W3, W2^W4, W3^W5) worked
 * out by hand. Where CPUID offers no AES (no SHA), an AESENC (a
 * SHA1MSG1) must be #UD instead. */
#include "guest.inc"

/* one AES-128 key-schedule step: xmm1 = the previous round key, \rcon */
.macro EXPAND rcon, slot
    aeskeygenassist $\rcon, %xmm1, %xmm2
    pshufd $0xff, %xmm2, %xmm2
    movdqa %xmm1, %xmm3
    pslldq $4, %xmm3
    pxor %xmm3, %xmm1
    pslldq $4, %xmm3
    pxor %xmm3, %xmm1
    pslldq $4, %xmm3
    pxor %xmm3, %xmm1
    pxor %xmm2, %xmm1
    movdqa %xmm1, keys + 16 * \slot(%rip)
.endm

    .code64
    .globl _start
_start:
    SET_GATE 6, ud_handler
    mov %cr4, %rax
    or $0x600, %rax                 /* OSFXSR, OSXMMEXCPT */
    mov %rax, %cr4
    mov $1, %eax
    cpuid
    bt $25, %ecx                    /* AES offered? */
    jc 1f
    lea 9f(%rip), %rax
    mov %rax, resume(%rip)
    aesenc %xmm0, %xmm0             /* not offered: #UD */
    FAIL 1
9:  cmpl $1, ud_count(%rip)
    CHECK_EQ 2
    PASS
1:  bt $1, %ecx                     /* PCLMULQDQ with it */
    setc %al
    cmp $1, %al
    CHECK_EQ 3

    movdqa key(%rip), %xmm1
    movdqa %xmm1, keys(%rip)
    EXPAND 0x01, 1
    EXPAND 0x02, 2
    EXPAND 0x04, 3
    EXPAND 0x08, 4
    EXPAND 0x10, 5
    EXPAND 0x20, 6
    EXPAND 0x40, 7
    EXPAND 0x80, 8
    EXPAND 0x1b, 9
    EXPAND 0x36, 10
    movdqa plain(%rip), %xmm0
    pxor keys(%rip), %xmm0
    lea keys + 16(%rip), %rsi
    mov $9, %ecx
2:  aesenc (%rsi), %xmm0            /* a memory operand */
    add $16, %rsi
    dec %ecx
    jnz 2b
    movdqa (%rsi), %xmm4
    aesenclast %xmm4, %xmm0
    pcmpeqb cipher(%rip), %xmm0
    pmovmskb %xmm0, %eax
    cmp $0xffff, %eax
    CHECK_EQ 4

    movdqa cipher(%rip), %xmm0       /* decrypt: the equivalent inverse cipher */
    pxor keys + 160(%rip), %xmm0
    lea keys + 144(%rip), %rsi
    mov $9, %ecx
3:  aesimc (%rsi), %xmm5
    aesdec %xmm5, %xmm0
    sub $16, %rsi
    dec %ecx
    jnz 3b
    aesdeclast keys(%rip), %xmm0
    pcmpeqb plain(%rip), %xmm0
    pmovmskb %xmm0, %eax
    cmp $0xffff, %eax
    CHECK_EQ 5

    movdqa clmul_a(%rip), %xmm0     /* (x^63 + 1) * x = x^64 + x */
    pclmulqdq $0x00, clmul_b(%rip), %xmm0
    movq %xmm0, %rax
    cmp $2, %rax
    CHECK_EQ 6
    pextrq $1, %xmm0, %rax
    cmp $1, %rax
    CHECK_EQ 7
    movdqa clmul_a(%rip), %xmm0     /* high qwords: 3 * 3 = 5 */
    pclmulqdq $0x11, clmul_b(%rip), %xmm0
    movq %xmm0, %rax
    cmp $5, %rax
    CHECK_EQ 8

    mov $7, %eax
    xor %ecx, %ecx
    cpuid
    movdqa sha_w0(%rip), %xmm1
    bt $29, %ebx                    /* SHA offered? */
    jc 4f
    lea 5f(%rip), %rax
    mov %rax, resume(%rip)
    sha1msg1 sha_w4(%rip), %xmm1    /* not offered: #UD */
    FAIL 9
5:  cmpl $1, ud_count(%rip)
    CHECK_EQ 10
    PASS
4:  sha1msg1 sha_w4(%rip), %xmm1
    pcmpeqd sha_want(%rip), %xmm1
    pmovmskb %xmm1, %eax
    cmp $0xffff, %eax
    CHECK_EQ 11
    PASS

    UD_RESUMER

    .data
    .balign 16
key:     .byte 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
         .byte 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f
plain:   .byte 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77
         .byte 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff
cipher:  .byte 0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30
         .byte 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a
clmul_a: .quad 0x8000000000000001, 3
clmul_b: .quad 2, 3
sha_w0:  .long 8, 4, 2, 1           /* dwords 0..3: W3 W2 W1 W0 */
sha_w4:  .long 128, 64, 32, 16      /* W7 W6 W5 W4 */
sha_want: .long 40, 20, 10, 5       /* W3^W5 W2^W4 W1^W3 W0^W2 */
keys:    .fill 176, 1, 0
