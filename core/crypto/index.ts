// core/crypto: datagram sealing (sealer.ts) and key files (keyfile.ts).
export * from './sealer.ts';
export * from './keyfile.ts';
