/* Hardware breakpoints as gdb uses them, in the guest: a traced child stops
 * itself; the parent puts a 4-byte write watchpoint on a variable (DR0) and
 * an instruction breakpoint on a function (DR1) into the child's debug
 * registers through PTRACE_POKEUSER, then continues it twice and checks it
 * stopped with SIGTRAP first right after the store and then at the
 * function, DR6 naming the breakpoint each time, and that the child then
 * ran to its end with the values it computed. Prints one line; exit 0 only
 * if all of that held. */
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int watched;

__attribute__((noinline)) static int target(int x)
{
    return x * 3 + 1;
}

static long debugreg(pid_t pid, int n)
{
    return ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, u_debugreg) + n * sizeof(long), 0);
}

static int set_debugreg(pid_t pid, int n, unsigned long v)
{
    return (int)ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_debugreg) + n * sizeof(long),
                       (void *)v);
}

static long rip_of(pid_t pid)
{
    return ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.rip), 0);
}

/* Continue the child; its next stop must be a SIGTRAP with DR6 bit 'bit'. */
static int expect_trap(pid_t pid, int bit, long *rip)
{
    int st;
    if (ptrace(PTRACE_CONT, pid, 0, 0) || waitpid(pid, &st, 0) != pid)
        return -1;
    if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP) {
        printf("hwwatch: expected SIGTRAP, got status %#x\n", st);
        return -1;
    }
    long dr6 = debugreg(pid, 6);
    *rip = rip_of(pid);
    printf("hwwatch: stop, dr6 %#lx\n", dr6);
    if (!(dr6 & (1L << bit)))
        return -1;
    set_debugreg(pid, 6, 0);
    return 0;
}

int main(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        watched = 42;
        int r = target(5);
        _exit(r == 16 && watched == 42 ? 0 : 3);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
        printf("hwwatch: the child did not stop\n");
        return 1;
    }
    /* DR7: L0, L1; RW0 = 01 (writes), LEN0 = 11 (4 bytes); RW1 = LEN1 = 00 */
    unsigned long dr7 = 1 | 4 | (1ul << 16) | (3ul << 18);
    if (set_debugreg(pid, 0, (unsigned long)&watched) ||
        set_debugreg(pid, 1, (unsigned long)target) || set_debugreg(pid, 7, dr7)) {
        printf("hwwatch: PTRACE_POKEUSER of the debug registers refused\n");
        return 1;
    }
    long rip1, rip2;
    if (expect_trap(pid, 0, &rip1) || expect_trap(pid, 1, &rip2)) {
        printf("hwwatch: FAILED\n");
        return 1;
    }
    if (rip2 != (long)target) {
        printf("hwwatch: the instruction breakpoint stopped at %#lx, not %p\n", rip2, (void *)target);
        return 1;
    }
    if (ptrace(PTRACE_CONT, pid, 0, 0) || waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
        printf("hwwatch: the child did not run to its end (status %#x)\n", st);
        return 1;
    }
    printf("hwwatch: write watchpoint and instruction breakpoint hit, child exit %d\n",
           WEXITSTATUS(st));
    return WEXITSTATUS(st) ? 1 : 0;
}
