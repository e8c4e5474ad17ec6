/*
 * gate.h - inside the engine (gate.c): sleeping until a word changes, and waking
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

#include <stdatomic.h>
#include <time.h>

/*
 * Sleeps while *word == seen, until woken, or until the absolute
 * CLOCK_MONOTONIC deadline (NULL: none). Returns 0 (woken, or the word
 * had already changed; the caller looks again) or ETIMEDOUT. A
 * cancellation point: the thread can be cancelled only while it sleeps.
 *
 * Out of line on purpose: the caller's cancellation cleanup handler must
 * be able to run from this call. glibc declares syscall() as unable to
 * unwind, so inlined the compiler may keep the handler's data where an
 * unwind does not find it.
 */
int sc__gate_wait(atomic_uint *word, unsigned seen,
                  const struct timespec *deadline);

/* Wakes every thread asleep on word. */
void sc__gate_wake_all(atomic_uint *word);

#endif /* SC_GATE_H */
