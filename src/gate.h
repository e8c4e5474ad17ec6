/*
 * gate.h - inside the engine: sleeping until a word changes, and waking
 * every sleeper at once.
 *
 * A follower that sleeps on a condition variable must take the mutex
 * back when it wakes, so a broadcast to 63 followers becomes 63 turns at
 * one lock, one after another. The engine's followers instead sleep on
 * their flight's state word, without any lock, and the leader wakes all
 * of them with one call. On Linux that is a futex; elsewhere the sleeper
 * naps and looks again.
 */
#ifndef SC_GATE_H
#define SC_GATE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#ifdef __linux__
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/*
 * Sleeps while *word == seen, until woken, or until the absolute
 * CLOCK_MONOTONIC deadline (NULL: none). Returns 0 (woken, or the word
 * had already changed; the caller looks again) or ETIMEDOUT. A
 * cancellation point: the thread can be cancelled only while it sleeps.
 */
static inline int gate_wait(atomic_uint *word, unsigned seen,
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

/* Wakes every thread asleep on word. */
static inline void gate_wake_all(atomic_uint *word)
{
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
            NULL, 0);
#else
    (void)word; /* the sleepers look again by themselves */
#endif
}

#endif /* SC_GATE_H */
