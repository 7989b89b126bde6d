/* ember's process exit codes (documented in the README). */
#ifndef EMBER_VMM_EXIT_CODES_H
#define EMBER_VMM_EXIT_CODES_H

enum ember_exit_code {
    EMBER_EXIT_OK = 0,          /* guest powered off or rebooted; or Ctrl-A x */
    EMBER_EXIT_VMM_ERROR = 1,   /* ember failed while the VM was running */
    EMBER_EXIT_SETUP_ERROR = 2, /* bad option, missing or malformed file */
    EMBER_EXIT_GUEST_PANIC = 3, /* the guest reported a panic (pvpanic) */
    EMBER_EXIT_TRIPLE_FAULT = 4,/* a vCPU triple-faulted */
    EMBER_EXIT_HOST_UNSUITABLE = 5, /* no hardware KVM on this host */
    EMBER_EXIT_SIGNAL_BASE = 128, /* + signal number: stopped by a signal */
};

#endif
