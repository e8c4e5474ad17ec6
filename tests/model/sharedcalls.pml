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
 * step where sharedcalls.c puts it. The properties are asserted where they
 * can first fail; each assert's comment names its property:
 *   once      fn runs once per flight
 *   value     every caller returns its own flight's value
 *   fresh     no caller joins a flight that has already ended (a result
 *             is never served from a finished flight: no caching)
 *   freed     the record is freed exactly once, and never read after
 *   race      the map is never read or changed while another thread is
 *             changing it (uthash's links would be torn)
 *   lock      only the holder unlocks the group
 * and Spin itself checks that no caller waits forever: an invalid end
 * state is a caller blocked for good; -DNP and pan -l look for cycles.
 *
 * Steps are cpp macros, not Promela inlines: a macro's steps keep the line
 * of the call, and so its tag, in a trail.
 */
#ifndef N
#define N 3
#endif
#ifndef SPURIOUS
#define SPURIOUS 1 /* spurious wake-ups, in all: pthread_cond_wait allows them */
#endif

#define lookup_unlocked 1
#define wait_no_predicate 2
#define early_free 3
#define publish_before_write 4
#define delete_unlocked 5
#define done_before_delete 6
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
byte runs[N];        /* fn's runs, per flight */
byte waits_on[N];    /* the record whose condition a caller sleeps on */
bool woken[N];       /* a broadcast woke this caller */
byte spurious;       /* spurious wake-ups so far */
byte finished;       /* callers that have returned */

/* The lock, the map and the record, as the C uses them. */
#define LOCK(me) atomic { owner == NOBODY -> owner = me }
#define UNLOCK(me) atomic { assert(owner == me) /* lock */; owner = NOBODY }
#define FIND(r) atomic { assert(!map_changing) /* race */; r = inmap }
/* uthash links or unlinks a record in several writes: another thread's
 * access in between finds the map torn. */
#define MAP_SET(v) map_changing = true; assert(inmap == NONE || v == NONE); inmap = v; map_changing = false
#define TOUCH(r) assert(!rec[r].freed) /* freed */
#define FREE(r) atomic { assert(rec[r].freed == false) /* freed */; rec[r].freed = true }
/* pthread_cond_wait: unlock and sleep in one step; wake on a broadcast,
 * or spuriously; take the lock back. */
#define COND_WAIT(me, r) atomic { assert(owner == me); waits_on[me] = r; woken[me] = false; owner = NOBODY }; if :: atomic { woken[me] -> waits_on[me] = NONE } :: atomic { !woken[me] && spurious < SPURIOUS -> spurious++; waits_on[me] = NONE } fi; LOCK(me)
#define BROADCAST(r) d_step { i = 0; do :: i < N -> if :: waits_on[i] == r -> woken[i] = true :: else fi; i++ :: else -> break od }

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
        atomic { TOUCH(r); assert(!rec[r].ended) /* fresh */; rec[r].refs++ } /* c-only refs++: a follower */
#if MUTANT == wait_no_predicate
        UNLOCK(me); /* go:38 unlock, as Go does */
        LOCK(me); /* c-only lock again */
        COND_WAIT(me, r); /* go:39 wait, not looking */
#else
        do
        :: atomic { TOUCH(r); seen = rec[r].ended } /* go:39 done yet? */
           if
           :: seen -> break
           :: else -> COND_WAIT(me, r) /* go:38 wait (unlocks) */
           fi
        od;
#endif
        atomic { TOUCH(r); val = rec[r].res } /* go:40 read the result */
        atomic { TOUCH(r); rec[r].refs--; last = rec[r].refs == 0 } /* c-only refs--: leave */
        UNLOCK(me); /* c-only unlock */
        if
        :: last -> FREE(r) /* c-only last out: free */
        :: else
        fi
    :: else -> /* the leader: make_call */
        atomic { r = flights; flights++; rec[r].refs = 1 } /* go:60 go:61 new record */
        MAP_SET(r); /* go:62 add to the map */
        UNLOCK(me); /* go:63 unlock */
        atomic { runs[r]++; assert(runs[r] == 1) /* once */; val = r + 1 } /* go:74 run fn */
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
        UNLOCK(me); /* go:70 unlock */
        atomic { TOUCH(r); rec[r].res = val } /* go:74 store result, late */
        LOCK(me); /* c-only lock again */
#else
        atomic { TOUCH(r); rec[r].res = val } /* go:74 store the result */
        atomic { TOUCH(r); rec[r].ended = true } /* go:71 done = true */
        BROADCAST(r); /* go:71 broadcast */
#endif
#if MUTANT == done_before_delete
        UNLOCK(me); /* go:70 unlock */
        LOCK(me); /* c-only lock again */
        MAP_SET(NONE); /* go:69 delete, later */
#endif
        atomic { TOUCH(r); rec[r].refs--; last = rec[r].refs == 0 } /* c-only refs--: leave */
#if MUTANT == early_free
        last = true; /* c-only free it anyway */
#endif
        UNLOCK(me); /* go:70 unlock */
        if
        :: last -> FREE(r) /* c-only last out: free */
        :: else
        fi
    fi;
    assert(val == r + 1); /* value */
    finished++ /* go:75 return */
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
    assert(inmap == NONE); /* race */
    i = 0;
    do
    :: i < flights -> assert(rec[i].freed && runs[i] == 1) /* freed */; i++
    :: else -> break
    od
}
