// The exports of the xway ring core. Integer arguments and results only (see DESIGN.md):
// no allocation, no strings, no static data, so one module can be instantiated in any number of
// threads and processes over the same shared memory.
export {
  ringInit, ringCheck, ringFlags,
  ringReserve, ringProducerAddress, ringCommit, ringWrite,
  ringPrepareWaitSpace, ringCancelWaitSpace, ringShutdown,
  ringPeek, ringConsumerAddress, ringRelease, ringRead,
  ringPrepareWaitData, ringCancelWaitData, ringCloseConsumer,
  ringAbort,
} from "./ring";
export { channelSize, channelRingA, channelRingB, channelInit, channelCheck } from "./channel";
