// What the preload needs only once a program listens on TCP or connects to a co-resident xway
// server: the ring sockets, host set-up, the wasm core and the addon. Loaded on first use (see
// lazy.ts), so a program that never does either pays nothing for them.
export { RingSocket } from '../socket/ring-socket.js';
export { connectHost } from '../platform/host/connect.js';
export { hostUnavailableReason } from '../platform/host/native.js';
export { openRingEndpoint, acceptRingSocket, acceptedView } from '../socket/endpoint.js';
export { connectXen, lookupXenEndpoint, xenPeerFor } from '../platform/xen/connect.js';
export { xenUnavailableReason } from '../platform/xen/native.js';
