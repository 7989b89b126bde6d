/* cpuid LEAF [SUBLEAF]: what the CPU (a guest's vCPU) answers, as
 * "cpuid LEAF.SUBLEAF eax=... ebx=... ecx=... edx=..." in hex. Guest tests
 * use it where /proc/cpuinfo will not do: the kernel reads CPUID once at
 * boot, and a restored guest must see its template's values still. */
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: cpuid LEAF [SUBLEAF]\n");
        return 2;
    }
    unsigned leaf = (unsigned)strtoul(argv[1], NULL, 0);
    unsigned subleaf = argc == 3 ? (unsigned)strtoul(argv[2], NULL, 0) : 0;
    unsigned a, b, c, d;
    __cpuid_count(leaf, subleaf, a, b, c, d);
    printf("cpuid %#x.%u eax=%08x ebx=%08x ecx=%08x edx=%08x\n", leaf, subleaf, a, b, c, d);
    return 0;
}
