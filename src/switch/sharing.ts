// Who may use this process's registry entries, control sockets and links besides its own user.
// Owner-only is the default. A server opts in with XWAY_ALLOW_GROUP=<gid> (members of that group:
// directory, entries and sockets are group-accessible, group `gid`) or XWAY_ALLOW_UIDS=<uid>,<uid>
// (those users: entries readable by all, sockets connectable by all — the server then checks each
// peer's credentials, SO_PEERCRED, mapped through user namespaces by the kernel, and refuses the
// others with a reason). A client applies the same settings to decide which owners of an entry and
// its control socket it trusts.

import { XwayRangeError } from '../errors.js';

export interface SharingPolicy {
  /** Users besides our own whose entries we trust and who may connect to us. */
  readonly uids: ReadonlySet<number>;
  /** A group whose members may connect to us, and whose entries we trust; null if none. */
  readonly gid: number | null;
}

const MAX_ID = 2 ** 32 - 2;

function parseId(text: string, name: string): number {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text)) throw new XwayRangeError(`${name} must list numeric ids, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > MAX_ID) throw new XwayRangeError(`${name}: id ${n} is out of range`);
  return n;
}

let cached: { key: string; policy: SharingPolicy } | undefined;

/** The policy from XWAY_ALLOW_UIDS and XWAY_ALLOW_GROUP, read at each call (cached while they do
 *  not change). */
export function sharingPolicy(): SharingPolicy {
  const uids = process.env.XWAY_ALLOW_UIDS ?? '';
  const gid = process.env.XWAY_ALLOW_GROUP ?? '';
  const key = `${uids}|${gid}`;
  if (cached?.key === key) return cached.policy;
  const policy: SharingPolicy = {
    uids: new Set(uids.trim() === '' ? [] : uids.split(',').map((u) => parseId(u.trim(), 'XWAY_ALLOW_UIDS'))),
    gid: gid.trim() === '' ? null : parseId(gid.trim(), 'XWAY_ALLOW_GROUP'),
  };
  cached = { key, policy };
  return policy;
}

/** Whether anyone besides our own user is allowed. */
export function isShared(policy: SharingPolicy = sharingPolicy()): boolean {
  return policy.uids.size > 0 || policy.gid !== null;
}

/** Whether a file owned by `uid`:`gid` may be trusted as an entry or control socket. */
export function trustedOwner(uid: number, gid: number, policy: SharingPolicy = sharingPolicy()): boolean {
  return uid === process.geteuid?.() || policy.uids.has(uid) || (policy.gid !== null && gid === policy.gid && isShared(policy));
}

/** Why a peer with these credentials may not connect, or null. */
export function peerRefusal(cred: { uid: number; gid: number; groups?: number[] }, policy: SharingPolicy = sharingPolicy()): string | null {
  if (cred.uid === process.geteuid?.() || policy.uids.has(cred.uid)) return null;
  if (policy.gid !== null && (cred.gid === policy.gid || cred.groups?.includes(policy.gid))) return null;
  const allowed = isShared(policy)
    ? `only uid ${process.geteuid?.()}${policy.uids.size ? `, ${[...policy.uids].join(', ')}` : ''}${policy.gid !== null ? ` and group ${policy.gid}` : ''} may connect (XWAY_ALLOW_UIDS / XWAY_ALLOW_GROUP)`
    : `only its own user (uid ${process.geteuid?.()}) may connect; the server can allow others with XWAY_ALLOW_UIDS or XWAY_ALLOW_GROUP`;
  return `uid ${cred.uid} (gid ${cred.gid}) is not allowed: ${allowed}`;
}

/** Why a client must not trust the server that answered on a control socket whose file is owned by
 *  `socketOwner`, or null. The listening process is who the kernel says (SO_PEERCRED): it must own
 *  the socket file (nobody planted one), and be our user, an allowed uid, or a member of the
 *  allowed group. Files alone cannot show group membership; the server's credentials do. */
export function serverRefusal(cred: { uid: number; gid: number; groups?: number[] }, socketOwner: number, policy: SharingPolicy = sharingPolicy()): string | null {
  if (cred.uid !== socketOwner) return `the control socket is owned by uid ${socketOwner}, but uid ${cred.uid} answers on it`;
  if (cred.uid === process.geteuid?.() || policy.uids.has(cred.uid)) return null;
  if (policy.gid !== null && (cred.gid === policy.gid || cred.groups?.includes(policy.gid))) return null;
  return `the server runs as uid ${cred.uid}, which is neither this user nor allowed (XWAY_ALLOW_UIDS / XWAY_ALLOW_GROUP)`;
}

/** Modes for what we create: owner-only by default, group-usable with a group, readable (entries)
 *  and connectable (sockets) by all with a uid list (the server's credential check then decides). */
export function modes(policy: SharingPolicy = sharingPolicy()): { dir: number; file: number; socket: number } {
  if (policy.gid !== null) return { dir: 0o770, file: 0o640, socket: 0o660 };
  if (policy.uids.size > 0) return { dir: 0o755, file: 0o644, socket: 0o666 };
  return { dir: 0o700, file: 0o600, socket: 0o600 };
}
