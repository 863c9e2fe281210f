// The ring side of a TCP listener, shared by XwayServer and the xway/register preload: once a
// server listens on a TCP port, a host control socket for that port plus a registry entry that
// points co-resident clients to it; and, for each channel set up there, the RingSocket that stands
// in for the TCP connection (published for observers — xway stat — while it is open).

import type net from 'node:net';
import type { ChannelEnd } from '../platform/types.js';
import { listenHost, type HostListener } from '../platform/host/listen.js';
import { HostChannelEnd } from '../platform/host/channel-end.js';
import { publishChannel, publishCopiedChannel } from '../stat/publish.js';
import { XenChannelEnd } from '../platform/xen/channel-end.js';
import { hostUnavailableReason } from '../platform/host/native.js';
import { registerEndpoint, controlPathFor, type Registration } from '../switch/registry.js';
import { RingSocket } from './ring-socket.js';
import { listenXen, type XenListener } from '../platform/xen/listen.js';
import { xenUnavailableReason } from '../platform/xen/native.js';

/** A net.Server carrying this symbol (set to true) is left alone by the xway/register preload:
 *  XwayServer's inner TCP server registers its endpoint itself. */
export const kNoRegister: unique symbol = Symbol.for('xway.noRegister') as never;

export interface RingEndpointOptions {
  /** Ring capacity clients use unless they ask for another (published in the entry). */
  ringCapacity?: number;
  /** Ring capacity granted to clients at most. */
  maxRingCapacity?: number;
}

export interface RingEndpoint {
  readonly controlPath: string;
  close(): void;
  ref(): void;
  unref(): void;
}

/** Why this process cannot serve rings at all (no host platform), or null. */
export function ringUnavailableReason(): string | null {
  return hostUnavailableReason();
}

/**
 * Listens for ring clients of the TCP listener at `address` and registers the endpoint. Throws
 * (with nothing left open) when either step fails — the caller keeps serving TCP. `onChannel`
 * gets each established channel end.
 */
export function openRingEndpoint(address: net.AddressInfo, options: RingEndpointOptions, onChannel: (end: ChannelEnd) => void): RingEndpoint {
  const controlPath = controlPathFor(address.port);
  let listener: HostListener | null = listenHost(controlPath, { maxCapacity: options.maxRingCapacity }, onChannel);
  let registration: Registration | null;
  try {
    registration = registerEndpoint({ port: address.port, host: address.address, controlPath, ringCapacity: options.ringCapacity });
  } catch (err) {
    listener.close();
    throw err;
  }
  // Clients in other Xen domains of this machine find the same server through XenStore. Where Xen
  // is absent, or the endpoint cannot be published, host clients are still served.
  let xen: XenListener | null = null;
  if (xenUnavailableReason() === null) {
    try {
      xen = listenXen(address.port, { maxCapacity: options.maxRingCapacity }, onChannel);
    } catch { /* no Xen endpoint: other domains use TCP */ }
  }
  return {
    controlPath,
    close() {
      registration?.close();
      registration = null;
      listener?.close();
      listener = null;
      xen?.close();
      xen = null;
    },
    ref: () => { listener?.ref(); xen?.ref(); },
    unref: () => { listener?.unref(); xen?.unref(); },
  };
}

/** The TCP-level view of an accepted ring connection: the listener's address, and a loopback peer. */
export function acceptedView(address: net.AddressInfo) {
  return {
    local: { address: address.address, port: address.port, family: address.family },
    remote: { address: address.family === 'IPv6' ? '::1' : '127.0.0.1', port: 0, family: address.family },
  };
}

/** The RingSocket for an accepted channel end; published for observers until it closes. */
export function acceptRingSocket(end: ChannelEnd, address: net.AddressInfo, allowHalfOpen: boolean | undefined): RingSocket {
  const socket = new RingSocket(end, { allowHalfOpen, ...acceptedView(address) });
  const unpublish = end instanceof HostChannelEnd && end.segmentFd !== null
    ? publishChannel({
      port: address.port, clientPid: end.peer.pid, segmentFd: end.segmentFd, size: end.size,
      capacityA: end.channel.capacityA, capacityB: end.channel.capacityB,
    })
    : end instanceof XenChannelEnd
      ? publishCopiedChannel({
        port: address.port, clientDomain: end.peer.domid,
        read: () => [end.channel.rx.stats(), end.channel.tx.stats()], // the acceptor reads ring A
      })
      : null;
  if (unpublish) socket.once('close', unpublish);
  return socket;
}
