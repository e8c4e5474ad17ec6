/*
 * gate.c - sleeping until a word changes, and waking every sleeper at
 * once: a futex on Linux, a nap elsewhere. See gate.h.
 */
#define _GNU_SOURCE /* syscall() */

#include "gate.h"

#include <errno.h>
#include <pthread.h>

#ifdef __linux__
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Not instrumented by AddressSanitizer: a thread cancelled here unwinds
 * past this frame, and ASan does not clear the guard zones it set around
 * the frame's locals; the cleanup handler's frame then lands on them
 * (google/sanitizers issue 1399). */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize_address)
__attribute__((no_sanitize_address))
#endif
#endif
int sc__gate_wait(atomic_uint *word, unsigned seen,
                  const struct timespec *deadline)
{
#ifdef __linux__
    /* The futex call is no cancellation point of its own; asynchronous
     * cancellation for the length of the call makes it one, as glibc does
     * for its own blocking calls. Nothing is held while it is on. */
    int type;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &type);
    long rc = syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_BITSET_PRIVATE,
                      seen, deadline, NULL, FUTEX_BITSET_MATCH_ANY);
    int err = rc == 0 ? 0 : errno; /* EAGAIN: changed; EINTR: look again */
    pthread_setcanceltype(type, NULL);
    return err == ETIMEDOUT ? ETIMEDOUT : 0;
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (deadline != NULL &&
        (now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec)))
        return ETIMEDOUT;
    if (atomic_load(word) == seen) /* nanosleep: a cancellation point */
        nanosleep(&(struct timespec){0, 100000}, NULL);
    return 0;
#endif
}

void sc__gate_wake_all(atomic_uint *word)
{
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
            NULL, 0);
#else
    (void)word; /* the sleepers look again by themselves */
#endif
}
