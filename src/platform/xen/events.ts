// This thread's Xen event channel: one libxenevtchn handle polled by libuv, ports dispatched to
// the channel ends that own them. It keeps the event loop alive only while some end is ref'd.

import { xenAddon } from './native.js';
import type { XenEventChannel } from './native-api.js';

type Handler = () => void;

let channel: XenEventChannel | undefined;
const handlers = new Map<number, Handler>();
let refs = 0;

function events(): XenEventChannel {
  if (!channel) {
    const { XenEventChannel } = xenAddon();
    channel = new XenEventChannel((ports) => {
      for (const port of ports) handlers.get(port)?.();
    });
    channel.unref();
  }
  return channel;
}

/** A local port that domain `domid` can bind to; `handler` runs when it fires. */
export function bindUnbound(domid: number, handler: Handler): number {
  const port = events().bindUnbound(domid);
  handlers.set(port, handler);
  return port;
}

/** A local port connected to `remotePort` of domain `domid`. */
export function bindInterdomain(domid: number, remotePort: number, handler: Handler): number {
  const port = events().bindInterdomain(domid, remotePort);
  handlers.set(port, handler);
  return port;
}

export function notifyPort(port: number): void {
  events().notify(port);
}

export function unbindPort(port: number): void {
  handlers.delete(port);
  try {
    events().unbind(port);
  } catch { /* already gone with its peer */ }
}

/** Counts ends that keep the loop alive (like ref'd sockets). */
export function holdLoop(hold: boolean): void {
  refs += hold ? 1 : -1;
  if (refs === (hold ? 1 : 0)) {
    if (hold) events().ref();
    else channel?.unref();
  }
}

/** Ports bound in this thread (for tests and observers). */
export function boundPorts(): number {
  return handlers.size;
}
