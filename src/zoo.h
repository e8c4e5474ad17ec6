/*
 * zoo.h - the bug zoo: classic singleflight mistakes, one at a time.
 *
 * Building the port with -DSC_MUTANT=<name> puts one mistake into
 * sharedcalls.c, at the line where it would be made (look for MUTANT(name)
 * there); without the flag, MUTANT(name) is 0 and the port is the correct
 * one. scripts/zoo.sh runs each mutant under every race tool, and
 * scripts/zoo-expected.txt says which tools must catch it.
 *
 *   lookup_unlocked       a caller reads the map before taking the lock
 *   wait_no_predicate     a follower waits without checking done; it also
 *                         unlocks and relocks first, as Go's line 38 does,
 *                         which opens the window where the wake-up is lost
 *   early_free            the leader frees the record while followers read it
 *   publish_before_write  the leader signals done before it stores the
 *                         result (and stores it outside the lock, so the
 *                         race tools can see the two accesses collide)
 *   delete_unlocked       the leader deletes its key without the lock
 *   done_before_delete    go-zero's warning reversed: done first, delete in
 *                         a second critical section. No hang and no bad
 *                         memory access, but a caller arriving in between
 *                         gets a result published before it called: a
 *                         brief cache (book chapter 4)
 */
#ifndef SC_ZOO_H
#define SC_ZOO_H

#ifdef SC_MUTANT
#define SC_MUTANT_lookup_unlocked 1
#define SC_MUTANT_wait_no_predicate 2
#define SC_MUTANT_early_free 3
#define SC_MUTANT_publish_before_write 4
#define SC_MUTANT_delete_unlocked 5
#define SC_MUTANT_done_before_delete 6

#define SC_ZOO_CAT(a, b) a##b
#define SC_ZOO_ID(name) SC_ZOO_CAT(SC_MUTANT_, name)
#if SC_ZOO_ID(SC_MUTANT) == 0
#error "unknown SC_MUTANT: see the list in src/zoo.h"
#endif
#define MUTANT(name) (SC_ZOO_ID(SC_MUTANT) == SC_MUTANT_##name)
#else
#define MUTANT(name) 0
#endif

#endif /* SC_ZOO_H */
