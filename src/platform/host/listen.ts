// The accepting side of host channel set-up. For each client on the control socket:
//   HELLO  -> check version, ring sizes and the route against our limits; take an ephemeral port
//          -> create a sealed segment, map it, lay out the channel, open an event port
//   ACCEPT -> the port, (segment fd, our event fd)
//   READY  <- (client's event fd) -> bind it: the channel is established
// Anything malformed, out of range or late is refused with a reason, and everything made for that
// client (mapping, port, descriptors) is released before the socket is closed.

import { Channel } from '../../ring/channel.js';
import { isValidCapacity } from '../../ring/layout.js';
import { HostChannelEnd } from './channel-end.js';
import type { ChannelEnd, ConnectionInfo } from '../types.js';
import { EphemeralPorts, type Route } from '../../socket/identity.js';
import { CtlLifeline, OfferPoster } from './same-process.js';
import { ThreadChannelEnd } from '../threads.js';
import { bindPort, closePort, openPort } from './events.js';
import { pollWhileSettingUp, resolveOptions, segmentSize, type HostChannelOptions } from './limits.js';
import { closeReceived, nativeAddon } from './native.js';
import type { CtlListener, CtlSocket } from './native-api.js';
import { decode, encode, MessageType, ProtocolError, type RefuseReason } from './protocol.js';
import { regionPool } from './region-pool.js';
import { mapSegment, unmapSegment } from './mapping.js';

export interface HostListener {
  readonly path: string;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface HostListenOptions extends HostChannelOptions {
  /** A client was refused (malformed hello, out-of-range sizes, timeout…); for logs and tests. */
  onRefused?: (reason: RefuseReason, message: string) => void;
  /** Why a client's route cannot reach this listener (null: it can). Default: every route. */
  admit?: (route: Route) => string | null;
  /** The listener's ephemeral ports (shared with its other platforms' listeners). */
  ports?: EphemeralPorts;
}

/** Listens on `path` (a Unix socket, created owner-only) and calls `onChannel` for each
 *  established channel: a HostChannelEnd, or a ThreadChannelEnd for a client in this process. */
export function listenHost(path: string, options: HostListenOptions, onChannel: (end: ChannelEnd) => void): HostListener {
  const native = nativeAddon();
  const limits = resolveOptions(options);
  let pending = 0;
  let poster: OfferPoster | null = null;
  const ports = options.ports ?? new EphemeralPorts();

  const listener: CtlListener = native.ctlListen(path, (fd) => {
    pending++;
    let stage: 'hello' | 'ready' | 'done' = 'hello';
    let made: { offset: number; size: number; port: number; segment: number; capacityA: number; capacityB: number } | undefined;
    let end: HostChannelEnd | undefined;
    let lifeline: CtlLifeline | undefined; // a thread channel's, once established
    let connection: ConnectionInfo | undefined; // its port is ours until the channel end closes

    const release = () => {
      if (connection) ports.release(connection.port);
      connection = undefined;
      if (!made) return;
      closePort(made.port);
      unmapSegment(made.offset, made.size);
      native.closeFd(made.segment);
      made = undefined;
    };
    const leaveSetup = () => {
      const wasInSetup = stage !== 'done';
      if (wasInSetup) {
        stage = 'done';
        pending--;
        clearTimeout(timer);
      }
      return wasInSetup;
    };
    const refuse = (reason: RefuseReason, message: string) => {
      if (!leaveSetup()) return;
      try {
        ctl.send(encode({ type: MessageType.Refuse, reason, text: message }));
      } catch { /* the client may already be gone */ }
      ctl.close();
      release();
      options.onRefused?.(reason, message);
    };
    const timer = setTimeout(() => refuse('malformed', `set-up not finished within ${limits.setupTimeoutMs} ms`), limits.setupTimeoutMs);

    const checkHello = (capacityA: number, capacityB: number, route: Route) => {
      if (pending > limits.maxPending) throw new ProtocolError('busy', `more than ${limits.maxPending} set-ups in progress`);
      for (const cap of [capacityA, capacityB]) {
        if (!isValidCapacity(cap) || cap > limits.maxCapacity) {
          throw new ProtocolError('capacity', `ring capacity ${cap} is not a power of two from 4096 to ${limits.maxCapacity}`);
        }
      }
      const refusal = options.admit?.(route) ?? null;
      if (refusal !== null) throw new ProtocolError('malformed', refusal);
      try {
        connection = { port: ports.allocate(), route };
      } catch (err) {
        throw new ProtocolError('busy', (err as Error).message);
      }
    };
    /** The established end takes the connection (and frees its port when it closes). */
    const handOver = (established: ChannelEnd) => {
      const info = connection!;
      connection = undefined;
      established.connection = info;
      established.onclose = () => ports.release(info.port);
      onChannel(established);
    };

    const onHelloThreads = (capacityA: number, capacityB: number, threadId: number, token: string, route: Route) => {
      if (pid !== process.pid) throw new ProtocolError('malformed', `a thread channel is only for this process, not for process ${pid}`);
      checkHello(capacityA, capacityB, route);
      poster ??= new OfferPoster(path);
      const channel = poster.offer(token, capacityA, capacityB);
      ctl.send(encode({ type: MessageType.AcceptThreads, capacityA, capacityB, port: connection!.port }));
      leaveSetup();
      lifeline = new CtlLifeline(ctl);
      handOver(new ThreadChannelEnd(channel, lifeline, { pid, threadId }));
    };

    const onHello = (capacityA: number, capacityB: number, route: Route) => {
      checkHello(capacityA, capacityB, route);
      const size = segmentSize(capacityA, capacityB);
      // The segment's descriptor stays open with the channel: observers (xway stat) read the
      // ring headers through it; our mapping alone would keep the segment alive.
      const segment = native.segmentCreate(size);
      let offset: number;
      try {
        offset = mapSegment(segment, size);
      } catch (err) {
        native.closeFd(segment);
        throw err;
      }
      let port: number, eventFd: number;
      try {
        ({ port, fd: eventFd } = openPort(() => end?.wake()));
      } catch (err) {
        unmapSegment(offset, size);
        native.closeFd(segment);
        throw err;
      }
      made = { offset, size, port, segment, capacityA, capacityB };
      Channel.create(regionPool().memory, offset, { capacityA, capacityB }, 'acceptor');
      ctl.send(encode({ type: MessageType.Accept, capacityA, capacityB, port: connection!.port }), [segment, eventFd]);
    };

    const onReady = (pid: number) => {
      if (!made) throw new ProtocolError('internal', 'no channel to complete');
      const { offset, size, port, segment, capacityA, capacityB } = made;
      // Capacities from our own records, never from the shared control block. The client has had
      // the segment since ACCEPT: a header it already broke is refused here, and refuse() still
      // owns (and releases) the mapping and port, so set-up is left only after this check.
      const channel = Channel.attach(regionPool().memory, offset, { capacityA, capacityB }, 'acceptor');
      made = undefined;
      leaveSetup();
      end = new HostChannelEnd({ channel, size, port, ctl, pid, segment });
      handOver(end);
    };

    let pid = 0;
    const ctl: CtlSocket = new native.CtlSocket(fd, (data, fds) => {
      let owned = fds; // descriptors we still have to close if this message is refused
      try {
        if (stage === 'done') throw new ProtocolError('malformed', 'control message after set-up');
        const message = decode(data, fds.length);
        if (stage === 'hello' && message.type === MessageType.Hello) {
          pid = ctl.peerCredentials().pid; // the kernel's word, not the hello's
          onHello(message.capacityA, message.capacityB, message.route);
          stage = 'ready';
          pollWhileSettingUp(ctl, () => stage !== 'ready');
        } else if (stage === 'hello' && message.type === MessageType.HelloThreads) {
          pid = ctl.peerCredentials().pid;
          onHelloThreads(message.capacityA, message.capacityB, message.threadId, message.token, message.route);
        } else if (stage === 'ready' && message.type === MessageType.Ready) {
          if (!made) throw new ProtocolError('internal', 'no channel to complete');
          bindPort(made.port, fds[0]);
          owned = []; // the port owns the client's event descriptor from here on
          onReady(pid);
        } else {
          throw new ProtocolError('malformed', `unexpected message type ${message.type} during set-up`);
        }
      } catch (err) {
        closeReceived(owned);
        if (end) end.controlClosed('EPROTO');
        else if (lifeline) lifeline.controlClosed();
        else refuse(err instanceof ProtocolError ? err.reason : 'internal', (err as Error).message);
      }
    }, (code) => {
      if (end) end.controlClosed(code);
      else if (lifeline) lifeline.controlClosed();
      else refuse('malformed', `client went away during set-up (${code ?? 'EOF'})`);
    });
  });

  return {
    path,
    close: () => {
      listener.close();
      poster?.close();
      poster = null;
    },
    ref: () => listener.ref(),
    unref: () => listener.unref(),
  };
}
