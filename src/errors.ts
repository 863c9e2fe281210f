// Typed errors. Every error xway raises carries a `code`, as Node's own do, so callers can switch
// on it; socket-level codes (ECONNRESET, EPIPE) match the ones `net` uses for the same events.

export type XwayErrorCode =
  | 'ERR_XWAY_RING_CORRUPT'
  | 'ECONNRESET'
  | 'EPIPE'
  | 'ERR_XWAY_CORE'
  | 'ERR_XWAY_HOST_UNAVAILABLE'
  | 'ERR_XWAY_XEN_UNAVAILABLE'
  | 'ERR_XWAY_PROTOCOL'
  | 'ERR_XWAY_SETUP'
  | 'ERR_XWAY_NO_RING'
  | 'ERR_XWAY_REGISTRY'
  | 'ERR_XWAY_RELEASED'
  | 'ERR_XWAY_LINK';

export class XwayError extends Error {
  readonly code: XwayErrorCode;
  constructor(code: XwayErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The peer wrote an impossible index or header into shared memory. The channel is unusable. */
export class RingCorruptError extends XwayError {
  constructor(message: string) {
    super('ERR_XWAY_RING_CORRUPT', message);
  }
}

/** The ring was reset (RST) by either side: the connection is gone. */
export class RingResetError extends XwayError {
  constructor(message = 'ring was reset by its peer') {
    super('ECONNRESET', message);
  }
}

/** A write into a ring whose consumer has closed (it will never be read): the socket layer
 *  answers it as a kernel answers data sent to a closed TCP socket, with a reset. */
export class RingClosedError extends XwayError {
  constructor(message = 'the peer closed the connection') {
    super('EPIPE', message);
  }
}

/** A write after this side's own end of stream (FIN). */
export class RingShutdownError extends XwayError {
  constructor(message = 'write after end of stream') {
    super('EPIPE', message);
  }
}

/** A RangeError with Node's code for out-of-range arguments. */
export class XwayRangeError extends RangeError {
  readonly code = 'ERR_OUT_OF_RANGE';
  constructor(message: string) {
    super(message);
    this.name = 'RangeError';
  }
}
