"""Judge the LeakSanitizer logs of a test run: leaks allocated by convx's code fail, CPython's do not.

CPython (and PyTorch, imported by the reference tests) never free most of what they allocate at exit,
so a Python process under LeakSanitizer always reports thousands of leaks; a suppression entry for
them would also hide convx's (LeakSanitizer suppresses a report when *any* frame matches, and every
convx call comes from the interpreter). This script reads every log (``log_path``'s files, one per
process) and attributes each leak to the first frame below the allocator; a leak whose allocating
frame is convx's C code fails the run, unless it is one of the ``ALLOWED`` by-design allocations.
Any AddressSanitizer or UndefinedBehaviorSanitizer error in the logs fails too.

Usage::

    python tools/lsan_report.py LOG_PREFIX.*
"""

import collections
import re
import sys

# the allocator and the sanitizer's interceptors: skipped to find who asked for the memory
_ALLOCATOR = re.compile(r" in (malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|strdup|"
                        r"operator new\S*|_{2,3}interceptor_\w+|__libc_\w+)\b")
_CONVX = re.compile(r"(src/convx/|/convx/_kernels/)")
# Per-thread scratch (convx_common.h, cx_scratch): kept for the life of its thread on purpose (see the
# comment there). LeakSanitizer reports the OpenMP workers' buffers at exit: they hang off thread-local
# storage of a dlopen'ed module, which it does not appear to scan as a root.
ALLOWED = ("in cx_scratch ",)
_ERRORS = re.compile(r"ERROR: AddressSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer")


def _records(text):
    for block in re.split(r"\n(?=(?:Direct|Indirect) leak of )", text):
        if block.startswith(("Direct leak of ", "Indirect leak of ")):
            yield block


def _allocating_frames(block):
    frames = [line.strip() for line in block.splitlines() if re.match(r"\s*#\d+ ", line)]
    return [frame for frame in frames if not _ALLOCATOR.search(frame)]


def judge(paths):
    """(number of leak records, convx's leaks not allowed, allowed ones, sanitizer errors)."""
    total, ours, allowed, errors = 0, [], collections.Counter(), []
    for path in paths:
        with open(path, errors="replace") as f:
            text = f.read()
        errors += [f"{path}: {line.strip()}" for line in text.splitlines() if _ERRORS.search(line)]
        for block in _records(text):
            total += 1
            frames = _allocating_frames(block)
            if not frames or not _CONVX.search(frames[0]):
                continue
            reason = next((a for a in ALLOWED if any(a in frame for frame in frames)), None)
            if reason:
                allowed[reason] += 1
            else:
                ours.append(block)
    return total, ours, allowed, errors


def main(paths):
    total, ours, allowed, errors = judge(paths)
    print(f"LeakSanitizer: {len(paths)} log(s), {total} leak records; {len(ours)} allocated by convx code"
          f"{'; allowed by design: ' + dict(allowed).__repr__() if allowed else ''}")
    for block in ours[:20]:
        print(block)
    for line in errors[:20]:
        print(line)
    return 1 if ours or errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
