// core/crypto: datagram sealing (sealer.ts), replay windows (replay.ts), incarnations
// (incarnation.ts), what to log about a drop (explain.ts) and key files (keyfile.ts).
export * from './sealer.ts';
export * from './keyfile.ts';
export * from './replay.ts';
export * from './incarnation.ts';
export * from './explain.ts';
