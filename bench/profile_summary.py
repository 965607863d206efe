"""A text summary of a py-spy ``--format raw`` recording (one ``frame;frame;... count`` line per stack): the
frames holding the most samples, inclusive (the frame or anything it called) and self (the frame itself), and
the same folded to the project's own code (``services/``, ``shared/``) so the share of each function shows."""

from __future__ import annotations

import collections
import re
import sys

IDLE = frozenset({"Condition.wait (threading.py)", "EpollSelector.select (selectors.py)",
                  "BaseSelector.select (selectors.py)", "Event.wait (threading.py)", "Queue.get (queue.py)"})
LINE = re.compile(r":\d+\)$")


def summarize(raw: str, top: int = 40) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    own_self: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [LINE.sub(")", frame) for frame in stack.split(";")]  # per function, not per line
        if frames[-1] in IDLE:
            continue  # a thread waiting: py-spy counts a pool thread blocked on its queue as busy
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        ours = [f for f in frames if "services/" in f or "shared/" in f]
        for frame in set(ours):
            own[frame] += n
        own_self[ours[-1] if ours else "(outside the project's code: event loop, server, drivers)"] += n
    if total == 0:
        return "no samples\n"

    def table(title: str, counter: collections.Counter[str]) -> list[str]:
        return [f"== {title} ==", *(f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)), ""]

    return "\n".join([f"samples: {total} (busy only: threads waiting on a lock, a queue or the selector left out)", "",
                      *table("project functions, inclusive", own),
                      *table("innermost project function on the stack (time spent in it or in libraries it called)",
                             own_self),
                      *table("all frames, inclusive", inclusive)])


if __name__ == "__main__":
    print(summarize(open(sys.argv[1]).read()))
