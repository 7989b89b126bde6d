/* sigdfl COMMAND [ARGS...]: run COMMAND with every signal at its default
 * disposition and none blocked.
 *
 * The guest's init (a shell, PID 1) starts the console shell as an
 * asynchronous command so that its Ctrl-Alt-Del trap runs at once; a shell
 * without job control starts such commands with SIGINT and SIGQUIT ignored,
 * and a shell may not un-ignore a signal it was started with ignored. So
 * Ctrl-C would never stop a command typed at the console. This program sits
 * between the two and gives the console shell what a login would. */
#include <signal.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sigdfl COMMAND [ARGS...]\n");
        return 2;
    }
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP and gaps */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[1], argv + 1);
    fprintf(stderr, "sigdfl: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
