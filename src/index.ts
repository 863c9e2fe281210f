// xway: socket traffic between co-resident peers through shared-memory rings.
export { Ring } from './ring/ring.js';
export { Channel, type ChannelSide, type ChannelCapacities } from './ring/channel.js';
export { createSharedMemory, type SharedMemoryOptions } from './ring/memory.js';
export { readRingStats, type RingStats } from './ring/stats.js';
export { snapshotHost } from './stat/snapshot.js';
export type { HostSnapshot, ConnectionStat, EndpointStat, ConnectionState } from './stat/types.js';
export { compileCore, coreModule } from './ring/core.js';
export {
  waitForData, waitForDataAsync, waitForSpace, waitForSpaceAsync, wakeConsumer, wakeProducer, type WaitResult,
} from './ring/futex.js';
export {
  RING_HEADER, CHANNEL_HEADER, MIN_CAPACITY, MAX_CAPACITY, RESERVED_BYTES, ringByteLength, channelByteLength,
} from './ring/layout.js';
export { XwayError, RingCorruptError, RingResetError, RingShutdownError, RingClosedError, XwayRangeError, type XwayErrorCode } from './errors.js';

// Platforms: one side's end of an established channel, and how to get one.
export type { ChannelEnd, PlatformName } from './platform/types.js';
export { ThreadChannelEnd, createThreadChannel, acceptThreadChannel, type ThreadChannelOffer } from './platform/threads.js';
export { Link, LinkChannelEnd, LinkError, LINK_IDLE_MS } from './platform/common/link.js';
export { regionPool, RegionPool, type Placement } from './platform/common/region-pool.js';
export { listenHost, listenHostChannels, type HostListener, type HostListenOptions } from './platform/host/listen.js';
export { connectHost, SetupError } from './platform/host/connect.js';
export { type HostChannelOptions } from './platform/host/limits.js';
export { ProtocolError } from './platform/host/protocol.js';
export { hostUnavailableReason, HostUnavailableError } from './platform/host/native.js';
export { XenChannelEnd } from './platform/xen/channel-end.js';
export { listenXen, type XenListener, type XenListenOptions } from './platform/xen/listen.js';
export { connectXen, lookupXenEndpoint, xenPeerFor, selfDomid as xenSelfDomid, XEN_DEFAULT_CAPACITY, type XenChannelOptions } from './platform/xen/connect.js';
export { type XenEndpoint } from './platform/xen/protocol.js';
export { xenUnavailableReason, XenUnavailableError } from './platform/xen/native.js';

// Sockets.
export { RingSocket, type RingSocketOptions } from './socket/ring-socket.js';
export { XwayServer, type XwayServerOptions } from './socket/server.js';
export { connect, connect as createConnection, NoRingError, type XwayConnectOptions, type XwayConnection } from './socket/connect.js';
export { transportPolicy, isLocalHost, type TransportPolicy } from './switch/policy.js';
export { registryDirectory, lookupEndpoint, listEndpoints, RegistryError, type RegistryEntry } from './switch/registry.js';
export { transportOf } from './register/transport.js';

import { XwayServer, type XwayServerOptions } from './socket/server.js';
import { connect } from './socket/connect.js';
import { transportOf } from './register/transport.js';

/** Same overloads as net.createServer. */
export function createServer(options?: XwayServerOptions | ((socket: import('node:net').Socket | import('./socket/ring-socket.js').RingSocket) => void),
  listener?: (socket: import('node:net').Socket | import('./socket/ring-socket.js').RingSocket) => void): XwayServer {
  return typeof options === 'function' ? new XwayServer({}, options) : new XwayServer(options, listener);
}

/** `import xway from 'xway'`: the net-style entry points, and which transport a socket rides. */
const xway = { createServer, connect, createConnection: connect, transportOf };
export default xway;
