/* ember's own start-up, step by step: when each step ended, for the boot
 * profile. ember -v logs it once, as the first vCPU enters the guest, so
 * what ember costs before the guest runs (and what the kernel's
 * KVM_CREATE_VM costs) can be told apart from the guest's own boot. */
#ifndef EMBER_UTIL_TIMELINE_H
#define EMBER_UTIL_TIMELINE_H

/* Notes that 'step' (a string literal) ended now. The first mark is the
 * start (main); marks past the table's end are dropped. Any thread. */
void timeline_mark(const char *step);

/* Marks 'step' and logs the whole timeline at info level: once per
 * process, whoever calls first. */
void timeline_report(const char *step);

#endif
