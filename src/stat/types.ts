// What `xway stat` and the visualizer's live mode see of this host: the endpoints the registry
// lists and the channels their processes publish. Everything here is read from files and from ring
// headers with plain loads; nothing an observer does can disturb the peers.

import type { RingStats } from '../ring/stats.js';

export interface EndpointStat {
  port: number;
  host: string;
  pid: number;
  controlPath: string;
  /** The server's network namespace and container (or host) name. */
  netns: string;
  container: string;
}

export type ConnectionState = 'open' | 'half-closed' | 'closed' | 'reset';

export interface ConnectionStat {
  /** Unique on this host while the connection lives: `${serverPid}:${n}`. */
  id: string;
  platform: 'host' | 'threads' | 'xen';
  /** The TCP port of the endpoint the client connected to. */
  port: number;
  serverPid: number;
  /** The client's process id (host platform) or domain id (xen). */
  clientPid: number;
  /** When set-up finished, ms since the epoch. */
  since: number;
  /** Where each end lives (network namespace, container or host name), where known. */
  serverNetns?: string;
  serverContainer?: string;
  clientNetns?: string;
  clientContainer?: string;
  state: ConnectionState;
  /** Ring A carries client→server bytes, ring B server→client. */
  clientToServer: RingStats;
  serverToClient: RingStats;
}

/** Why a connection of process `pid` took TCP instead of a ring (a limit, a refusal). */
export interface FallbackNote {
  pid: number;
  at: number;
  text: string;
}

export interface HostSnapshot {
  /** Date.now() when the snapshot was taken. */
  at: number;
  endpoints: EndpointStat[];
  connections: ConnectionStat[];
  /** Recent fallbacks to TCP, newest last. */
  notes: FallbackNote[];
}
