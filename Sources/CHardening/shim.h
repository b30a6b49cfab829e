#ifndef CHARDENING_SHIM_H
#define CHARDENING_SHIM_H
// Process protections the bridge sets at start (docs/product.md section 7: no core file holds
// the password). Only what Swift cannot call directly lives here; each helper is
// prefixed CHardening_ and says why it exists.

#ifdef __linux__
#include <sys/prctl.h>

// prctl(2) is declared variadic, and Swift does not import variadic C functions.
// PR_SET_DUMPABLE 0: no core dump, and only root may ptrace or read /proc/PID/mem.
static inline int CHardening_set_not_dumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

// PR_GET_DUMPABLE: 1 when the process may dump core (the default), 0 after the above.
static inline int CHardening_is_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
#else
// Elsewhere RLIMIT_CORE (set from Swift) is the protection; nothing more here.
static inline int CHardening_set_not_dumpable(void) { return 0; }
static inline int CHardening_is_dumpable(void) { return 0; }
#endif

// malloc_trim(3) (glibc's <malloc.h>, which Swift's Glibc module does not import): gives
// the free pages inside the heap back to the system once the planner's inputs are gone
// (issue 13: the peak resident set of a million-user run). Elsewhere a no-op.
#if defined(__GLIBC__)
#include <malloc.h>
static inline int CHardening_release_free_memory(void) { return malloc_trim(0); }
#else
static inline int CHardening_release_free_memory(void) { return 0; }
#endif

// An unnamed regular file (mode 0600) in the folder `dirfd`: O_TMPFILE, which Swift's Glibc
// module does not import. A run record is written into one while the directory answers
// the writes and is given its name only when the run ends, so a run that dies leaves no
// half-written record behind. -1 with errno set where the kernel or the file system has
// none: the caller then writes the record the ordinary way.
#include <fcntl.h>
#include <errno.h>
static inline int CHardening_open_unnamed_file(int dirfd) {
#if defined(O_TMPFILE)
    return openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
#elif defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
    // __O_TMPFILE is 020000000 on these two; O_TMPFILE adds O_DIRECTORY.
    return openat(dirfd, ".", 020000000 | O_DIRECTORY | O_WRONLY | O_CLOEXEC, 0600);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

#endif
