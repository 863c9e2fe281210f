// The connecting side of host channel set-up (see listen.ts for the exchange). The promise
// settles with an established channel end, or rejects with a typed error after releasing every
// mapping, port and descriptor it made.

import { Channel } from '../../ring/channel.js';
import { XwayError } from '../../errors.js';
import { HostChannelEnd } from './channel-end.js';
import { threadId } from 'node:worker_threads';
import type { ChannelEnd } from '../types.js';
import type { ThreadChannelEnd } from '../threads.js';
import { CtlLifeline, OfferReceiver } from './same-process.js';
import { bindPort, closePort, openPort } from './events.js';
import { pollWhileSettingUp, resolveOptions, segmentSize, type HostChannelOptions } from './limits.js';
import { closeReceived, nativeAddon } from './native.js';
import type { CtlSocket } from './native-api.js';
import { decode, encode, MessageType, ProtocolError } from './protocol.js';
import { regionPool } from './region-pool.js';
import { mapSegment, unmapSegment } from './mapping.js';
import type { Route } from '../../socket/identity.js';

export class SetupError extends XwayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_XWAY_SETUP', message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export interface HostConnectOptions extends HostChannelOptions {
  /** The listener is in this process: ask for a thread channel (see same-process.ts). */
  sameProcess?: boolean;
  /** The address connected to and the one connected from. Default: loopback. */
  route?: Route;
}

export function connectHost(path: string, options: HostConnectOptions & { sameProcess: true }): Promise<ThreadChannelEnd>;
export function connectHost(path: string, options?: HostConnectOptions & { sameProcess?: false }): Promise<HostChannelEnd>;
export function connectHost(path: string, options?: HostConnectOptions): Promise<ChannelEnd>;
export function connectHost(path: string, options: HostConnectOptions = {}): Promise<ChannelEnd> {
  const native = nativeAddon();
  const limits = resolveOptions(options);
  const capacityA = limits.capacity;
  const capacityB = limits.capacity;
  const route = options.route ?? { target: '127.0.0.1', source: '127.0.0.1' };

  return new Promise((resolve, reject) => {
    let made: { offset: number; size: number; port?: number } | undefined;
    let end: HostChannelEnd | undefined;
    let lifeline: CtlLifeline | undefined; // a thread channel's, once established
    let settled = false;
    let peerPid = 0;
    const receiver = options.sameProcess ? new OfferReceiver(path) : null;

    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      receiver?.close();
      ctl.close();
      if (made) {
        if (made.port !== undefined) closePort(made.port);
        unmapSegment(made.offset, made.size);
        made = undefined;
      }
      reject(err instanceof XwayError ? err : new SetupError(`host channel set-up failed: ${err.message}`, { cause: err }));
    };

    let port = 0; // the connection's ephemeral port, from ACCEPT
    const onAccept = (segmentFd: number, serverEventFd: number, bound: () => void) => {
      const size = segmentSize(capacityA, capacityB);
      const offset = mapSegment(segmentFd, size);
      made = { offset, size };
      // Checks the header the server wrote against what we asked for.
      const channel = Channel.attach(regionPool().memory, offset, { capacityA, capacityB }, 'initiator');
      const { port: eventPort, fd: eventFd } = openPort(() => end?.wake());
      made.port = eventPort;
      bindPort(eventPort, serverEventFd);
      bound();
      ctl.send(encode({ type: MessageType.Ready }), [eventFd]);
      settled = true;
      clearTimeout(timer);
      made = undefined;
      end = new HostChannelEnd({ channel, size, port: eventPort, ctl, pid: peerPid });
      end.connection = { port, route };
      resolve(end);
    };

    // Once ACCEPT_THREADS is here the channel exists (the server posted it first): a control
    // socket that closes before the memory arrives is a channel already reset, not a failed set-up.
    let acceptedThreads = false;
    let closedEarly = false;
    const onAcceptThreads = () => {
      acceptedThreads = true;
      receiver!.whenOffered((offer) => {
        if (settled) return;
        try {
          lifeline = new CtlLifeline(ctl);
          const threadEnd = OfferReceiver.attach(offer, capacityA, capacityB, lifeline, peerPid);
          threadEnd.connection = { port, route };
          settled = true;
          clearTimeout(timer);
          resolve(threadEnd);
          if (closedEarly) queueMicrotask(() => lifeline?.controlClosed());
        } catch (err) {
          lifeline = undefined;
          fail(err as Error);
        }
      });
    };

    let fd: number;
    try {
      fd = native.ctlConnect(path);
    } catch (err) {
      receiver?.close();
      throw err;
    }
    const ctl: CtlSocket = new native.CtlSocket(fd, (data, fds) => {
      let owned = fds;
      try {
        if (end || lifeline) throw new ProtocolError('malformed', 'control message after set-up');
        const message = decode(data, fds.length);
        if (message.type === MessageType.Refuse) {
          throw new SetupError(`the listener refused the channel (${message.reason}): ${message.text}`);
        }
        if (receiver && message.type === MessageType.AcceptThreads) {
          if (message.capacityA !== capacityA || message.capacityB !== capacityB) {
            throw new ProtocolError('capacity', `granted capacities ${message.capacityA}/${message.capacityB}, asked for ${capacityA}/${capacityB}`);
          }
          port = message.port;
          onAcceptThreads();
          return;
        }
        if (message.type !== MessageType.Accept) throw new ProtocolError('malformed', `unexpected message type ${message.type}`);
        if (message.capacityA !== capacityA || message.capacityB !== capacityB) {
          throw new ProtocolError('capacity', `granted capacities ${message.capacityA}/${message.capacityB}, asked for ${capacityA}/${capacityB}`);
        }
        port = message.port;
        const [segmentFd, serverEventFd] = fds;
        owned = [serverEventFd]; // until bindPort takes it over
        try {
          onAccept(segmentFd, serverEventFd, () => (owned = []));
        } finally {
          native.closeFd(segmentFd); // the mapping keeps the segment alive
        }
      } catch (err) {
        closeReceived(owned);
        if (end) end.controlClosed('EPROTO');
        else if (lifeline) lifeline.controlClosed();
        else fail(err as Error);
      }
    }, (code) => {
      if (end) end.controlClosed(code);
      else if (lifeline) lifeline.controlClosed();
      else if (acceptedThreads) closedEarly = true;
      else fail(new SetupError(`the listener closed the control socket during set-up (${code ?? 'EOF'})`));
    });
    peerPid = ctl.peerCredentials().pid;
    const timer = setTimeout(() => fail(new SetupError(`set-up not finished within ${limits.setupTimeoutMs} ms`)), limits.setupTimeoutMs);
    if (receiver) ctl.send(encode({ type: MessageType.HelloThreads, capacityA, capacityB, pid: process.pid, threadId, token: receiver.token, route }));
    else ctl.send(encode({ type: MessageType.Hello, capacityA, capacityB, pid: process.pid, route }));
    pollWhileSettingUp(ctl, () => settled);
  });
}
