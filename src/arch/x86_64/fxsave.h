/* Byte offsets in the 512-byte FXSAVE area (64-bit format), shared by
 * everything that reads or writes a vCPU's x87/SSE state as that image. */
#ifndef EMBER_ARCH_X86_64_FXSAVE_H
#define EMBER_ARCH_X86_64_FXSAVE_H

#define FX_FCW 0
#define FX_FSW 2
#define FX_FTW 4
#define FX_FOP 6
#define FX_FIP 8
#define FX_FDP 16
#define FX_MXCSR 24
#define FX_MXCSR_MASK 28
#define FX_ST0 32
#define FX_XMM0 160

#endif
