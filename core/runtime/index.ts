// core/runtime: a pure driver bound to the real clock, timers, state files and UDP.
export { startRuntime, buildSealer, driverMtu, networkMtu, type Runtime, type RuntimeOptions, type RuntimeLog } from './runtime.ts';
export { createHostClock, createCryptoRng, FileStateStore, type HostClock } from './host.ts';
