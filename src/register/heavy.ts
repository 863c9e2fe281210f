// What the preload needs only once a program listens on TCP or connects to a co-resident xway
// server: the ring sockets, host set-up, the wasm core and the addon. Loaded on first use (see
// lazy.ts), so a program that never does either pays nothing for them.
export { RingSocket } from '../socket/ring-socket.js';
export { connectInPlace, planConnection, plainAgain } from '../socket/connect.js';
export { hostUnavailableReason } from '../platform/host/native.js';
export { openRingEndpoint, closeRingEndpoint, refRingEndpoint, tcpView } from '../socket/endpoint.js';
export { routeTo, clientView } from '../socket/identity.js';
export { connectHost } from '../platform/host/connect.js';
