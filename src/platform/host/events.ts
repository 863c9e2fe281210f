// This thread's event channel: one native EventChannel (an epoll set polled by libuv), ports
// dispatched to the channel ends that own them. It never keeps the process alive by itself:
// each connection's control socket does that, like a net.Socket.

import { nativeAddon } from './native.js';
import type { EventChannel } from './native-api.js';

type Handler = () => void;

let channel: EventChannel | undefined;
const handlers = new Map<number, Handler>();

function events(): EventChannel {
  if (!channel) {
    const { EventChannel } = nativeAddon();
    channel = new EventChannel((ports) => {
      for (const port of ports) handlers.get(port)?.();
    });
    channel.unref();
  }
  return channel;
}

/** A new local port; `fd` is to be handed to the peer so it can signal us. */
export function openPort(handler: Handler): { port: number; fd: number } {
  const opened = events().allocPort();
  handlers.set(opened.port, handler);
  return opened;
}

/** Binds the peer's descriptor: notify(port) will signal the peer. */
export function bindPort(port: number, remoteFd: number): void {
  events().bind(port, remoteFd);
}

export function notifyPort(port: number): void {
  events().notify(port);
}

export function closePort(port: number): void {
  handlers.delete(port);
  events().closePort(port);
}
