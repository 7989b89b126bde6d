/* An i386 C program linked statically with glibc (gcc -m32, Debian's
 * gcc-multilib): its start-up (TLS through GS, the vDSO's system call entry,
 * CPUID probes), stdio and a little arithmetic of each kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char buf[64];
    double x = 1.5;
    long long big = 1;
    for (int k = 0; k < 40; k++)
        big *= 2;
    snprintf(buf, sizeof(buf), "%s %d %.2f %lld", argc > 1 ? argv[1] : "-", (int)strlen(argv[0]),
             x * argc, big);
    printf("i386 glibc: %s\n", buf);
    return argc == 2 ? 7 : 1;
}
