/* ember-jailer: runs ember (or any program) jailed as Firecracker's jailer
 * runs Firecracker. See src/jailer/ and README "Jailer". */
#include <stdio.h>
#include <string.h>

#include "jailer/args.h"
#include "jailer/jail.h"

#ifndef EMBER_VERSION
#define EMBER_VERSION "unknown"
#endif

int main(int argc, char **argv)
{
    jail_sanitize_process();
    static struct jailer_args args;
    if (jailer_parse(argc, argv, &args)) {
        fprintf(stderr, "ember-jailer: %s (--help for usage)\n", err_msg());
        return 2;
    }
    if (args.command == JAILER_HELP) {
        jailer_print_usage();
        return 0;
    }
    if (args.command == JAILER_VERSION) {
        printf("Jailer v%s\n", EMBER_VERSION);
        return 0;
    }
    if (args.has_node)
        fprintf(stderr, "ember-jailer: warning: --node is ignored (an older jailer's NUMA "
                        "placement; --cgroup cpuset.mems=N --cgroup cpuset.cpus=LIST says it)\n");
    static struct jail jail;
    if (!jail_prepare(&jail, &args))
        (void)!jail_run(&jail); /* returns only on failure */
    fprintf(stderr, "ember-jailer: %s\n", err_msg());
    return 1;
}
