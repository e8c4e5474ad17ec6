/*
 * sharedcalls.pml - the reference port (src/sharedcalls.c) as a model for
 * Spin: one group, one key, N callers (3 unless -DN=4), each calling
 * sc_do once. Spin tries every interleaving of their steps.
 *
 * Each step names the C line it stands for with that line's tag: go:N for
 * go-zero's statement N, c-only for C's own lines. scripts/model.sh reads
 * the tags to print a counterexample as a timeline.
 *
 * -DMUTANT=<name> puts in one mistake of the bug zoo (src/zoo.h), at the
 * step where sharedcalls.c puts it; busy_wait is the model's own, to prove
 * the progress check can fail. The properties are asserted where they can
 * first fail (scripts/model.sh names them from the assertion's text):
 *   - one fn at a time for the key, and one flight in the map;
 *   - every caller returns its own flight's value (a follower's read
 *     before the store would see 0, which no flight returns);
 *   - no caller joins a flight that has ended: no result is cached;
 *   - a record is freed once, never touched after, and not while a caller
 *     sleeps on its condition variable; its count never goes below zero;
 *   - the map is never read or changed while a change is half way (a
 *     race: uthash's links would be torn);
 *   - only the holder unlocks the lock;
 *   - at the end: every record freed, the map empty.
 * Spin itself checks that no caller waits forever (an invalid end state)
 * and, with -DNP and pan -l, that no cycle runs without progress.
 *
 * Steps are cpp macros, not Promela inlines: a macro's steps keep the line
 * of the call, and so its tag, in a trail. The model's steps are never
 * coarser than the C's: what the C does apart, or without the lock, is a
 * step of its own here; some runs the C does under the lock are split
 * into several steps, which only adds interleavings.
 */
#ifndef N
#define N 3
#endif
#ifndef SPURIOUS
#define SPURIOUS 1 /* 1: spurious wake-ups, as POSIX allows; 0: none */
#endif

#define lookup_unlocked 1
#define wait_no_predicate 2
#define early_free 3
#define publish_before_write 4
#define delete_unlocked 5
#define done_before_delete 6
#define busy_wait 7
#ifndef MUTANT
#define MUTANT 0
#endif

#define NOBODY 255
#define NONE 255

/* One flight's record, struct sc_call. */
typedef Record {
    bool freed;
    bool ended; /* the C record's done flag; "done" is pan.c's own name */
    byte refs;  /* callers that have yet to read the result */
    byte res;   /* fn's value; 0 until stored, and no flight's value is 0 */
};

Record rec[N];       /* at most one flight per caller */
byte flights;        /* records made so far: the next one's number */
byte inmap = NONE;   /* the map's entry for the key: a record, or NONE */
bool map_changing;   /* a HASH_ADD or HASH_DEL is half way through */
byte owner = NOBODY; /* the caller holding the group lock */
byte infn;           /* callers inside fn now */
byte waits_on[N];    /* the record whose condition a caller sleeps on */
bool woken[N];       /* a broadcast woke this caller */
byte finished;       /* callers that have returned */

/* The lock, the map and the record, as the C uses them. */
#define LOCK(me) atomic { owner == NOBODY -> owner = me }
#define UNLOCK(me) atomic { assert(owner == me); owner = NOBODY }
#define FIND(r) atomic { assert(!map_changing); r = inmap }
/* uthash links or unlinks a record in several writes: another thread's
 * access in between finds the map torn. */
#define MAP_SET(v) atomic { assert(!map_changing); map_changing = true }; assert(inmap == NONE || v == NONE); inmap = v; map_changing = false
#define TOUCH(r) assert(!rec[r].freed)
#define FREE(r) atomic { assert(rec[r].freed == false); i = 0; do :: i < N -> assert(waits_on[i] != r); i++ :: else -> break od; rec[r].freed = true }
#define RELEASE(r) atomic { TOUCH(r); assert(rec[r].refs > 0); rec[r].refs--; last = rec[r].refs == 0 }
/* pthread_cond_wait: unlock and sleep in one step; wake on a broadcast,
 * or spuriously (a wake-up that is always possible, and so, for the
 * progress check, a step of progress); take the lock back. */
#if SPURIOUS
#define SPURIOUSLY(me) :: atomic { !woken[me] -> waits_on[me] = NONE }; progress_spurious: skip
#else
#define SPURIOUSLY(me)
#endif
#define COND_WAIT(me, r) atomic { TOUCH(r); assert(owner == me); waits_on[me] = r; woken[me] = false; owner = NOBODY }; if :: atomic { woken[me] -> waits_on[me] = NONE } SPURIOUSLY(me) fi; LOCK(me)
#define BROADCAST(r) d_step { TOUCH(r); i = 0; do :: i < N -> if :: waits_on[i] == r -> woken[i] = true :: else fi; i++ :: else -> break od }

proctype Caller(byte me)
{
    byte r, i, val;
    bool last, seen;
#if MUTANT == lookup_unlocked
    FIND(r); /* go:37 find, before locking */
    LOCK(me); /* go:36 lock */
#else
    LOCK(me); /* go:36 lock */
    FIND(r); /* go:37 find the key */
#endif
    if
    :: r != NONE -> /* a follower */
        atomic { TOUCH(r); assert(!rec[r].ended); rec[r].refs++ } /* c-only refs++: a follower */
#if MUTANT == wait_no_predicate
        UNLOCK(me); /* go:38 unlock, as Go does */
        LOCK(me); /* c-only lock again */
        COND_WAIT(me, r); /* go:39 wait, not looking */
#else
        do
        :: atomic { TOUCH(r); seen = rec[r].ended } /* go:39 done yet? */
           if
           :: seen -> break
#if MUTANT == busy_wait
           :: else -> UNLOCK(me); LOCK(me) /* c-only spin, not sleep */
#else
           :: else -> COND_WAIT(me, r) /* go:38 wait (unlocks) */
#endif
           fi
        od;
#endif
        atomic { TOUCH(r); val = rec[r].res } /* go:40 read the result */
        RELEASE(r); /* c-only refs--: leave */
        UNLOCK(me); /* c-only unlock */
        if
        :: last -> FREE(r) /* c-only last out: free */
        :: else
        fi;
        assert(val == r + 1); /* go:40 return the value */
    :: else -> /* the leader: make_call */
        atomic { r = flights; flights++; rec[r].refs = 1 } /* go:60 go:61 new record */
        MAP_SET(r); /* go:62 add to the map */
        UNLOCK(me); /* go:63 unlock */
        atomic { assert(infn == 0); infn++ } /* go:74 fn starts */
        atomic { infn--; val = r + 1 } /* go:74 fn returns */
#if MUTANT == delete_unlocked
        MAP_SET(NONE); /* go:69 delete, unlocked */
        LOCK(me); /* go:68 lock */
#elif MUTANT == done_before_delete
        LOCK(me); /* go:68 lock */
#else
        LOCK(me); /* go:68 lock */
        MAP_SET(NONE); /* go:69 delete the key */
#endif
#if MUTANT == publish_before_write
        atomic { TOUCH(r); rec[r].ended = true } /* go:71 done = true */
        BROADCAST(r); /* go:71 broadcast */
        UNLOCK(me); /* c-only unlock, early */
        atomic { TOUCH(r); rec[r].res = val } /* go:74 store result, late */
        LOCK(me); /* c-only lock again */
#else
        atomic { TOUCH(r); rec[r].res = val } /* go:74 store the result */
        atomic { TOUCH(r); rec[r].ended = true } /* go:71 done = true */
        BROADCAST(r); /* go:71 broadcast */
#endif
#if MUTANT == done_before_delete
        UNLOCK(me); /* c-only unlock, early */
        LOCK(me); /* c-only lock again */
        MAP_SET(NONE); /* go:69 delete, later */
#endif
        RELEASE(r); /* c-only refs--: leave */
#if MUTANT == early_free
        last = true; /* c-only free it anyway */
#endif
        UNLOCK(me); /* go:70 unlock */
        if
        :: last -> FREE(r) /* c-only last out: free */
        :: else
        fi;
        assert(val == r + 1); /* go:75 return the value */
    fi;
    finished++
}

init
{
    byte i;
    atomic {
        i = 0;
        do
        :: i < N -> waits_on[i] = NONE; run Caller(i); i++
        :: else -> break
        od
    }
    finished == N; /* blocks for good if a caller never returns */
    assert(inmap == NONE && !map_changing); /* the map is empty at the end */
    i = 0;
    do
    :: i < flights -> assert(rec[i].freed && rec[i].refs == 0); i++
    :: else -> break
    od
}
