/**
 * Who each run is on the host. Slot i of the pool runs as uid `firstUid + i`, so that limits the
 * kernel counts per user, RLIMIT_NPROC above all, are per run: a program that forks until its limit
 * refuses exhausts its own slot's count, never another run's. A slot holds one run at a time, so
 * its uid is never shared by two. Pure: the host's files come in as text.
 */

/** The host uid slot `slot` runs as. */
export function slotUid(firstUid: number, slot: number): number {
  return firstUid + slot;
}

export type UidCheck = { ok: true } | { ok: false; reason: string };

/** The uid ranges a file of `name:first:count` lines (/etc/subuid) hands out. */
function subordinateRanges(text: string): { owner: string; first: number; count: number }[] {
  return text.split("\n").flatMap((line) => {
    const [owner, first, count] = line.trim().split(":");
    const start = Number(first);
    const size = Number(count);
    if (!owner || !Number.isSafeInteger(start) || !Number.isSafeInteger(size)) return [];
    return [{ owner, first: start, count: size }];
  });
}

/**
 * Whether `count` uids from `firstUid` are free for the sandbox: none is a user in `passwd`
 * (/etc/passwd), whose processes would count against a run's limit and who could signal it, and
 * none lies in a subordinate range of `subuid` (/etc/subuid), which a user's containers run as.
 */
export function checkSlotUids(
  firstUid: number,
  count: number,
  files: { passwd: string; subuid: string },
): UidCheck {
  const last = firstUid + count - 1;
  const range = `MCP3_SANDBOX_UID's range ${firstUid}-${last} (one uid per MCP3_CONCURRENCY slot)`;
  for (const line of files.passwd.split("\n")) {
    const [name, , uid] = line.split(":");
    const id = Number(uid);
    if (name && uid !== undefined && uid !== "" && id >= firstUid && id <= last) {
      return { ok: false, reason: `${range} includes uid ${id}, the user ${name} in /etc/passwd` };
    }
  }
  for (const { owner, first, count: size } of subordinateRanges(files.subuid)) {
    if (first <= last && first + size - 1 >= firstUid) {
      return {
        ok: false,
        reason: `${range} overlaps ${owner}'s subordinate uids ${first}-${first + size - 1} in /etc/subuid`,
      };
    }
  }
  return { ok: true };
}
