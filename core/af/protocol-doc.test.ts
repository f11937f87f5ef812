// Proves every hex example in docs/PROTOCOL.md is what the codec reads and writes: each decodes without error and re-encodes to the same bytes (BATCH containers: each item too).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeClientDatagram, decodeDaemonDatagram, encodeBatch, encodeEvent, encodeMessagePart, encodeReply, encodeRequest, encodeWritable,
} from './codec.ts';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const examples = [...doc.matchAll(/```hex\n([\s\S]*?)```/g)].flatMap((m) =>
  m[1].split('\n').filter((l) => /^[0-9a-f]{2}( [0-9a-f]{2})*$/.test(l.trim())).map((l) => Uint8Array.from(l.trim().split(' '), (h) => parseInt(h, 16))));

describe('docs/PROTOCOL.md examples', () => {
  it('has an example of every request, reply and event', () => {
    const ops = new Set(examples.map((b) => b[3]));
    for (const op of [1, 2, 3, 4, 5, 6, 7, 8, 9, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0xff, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x0a, 0x8a, 0x47, 0x48, 0x49, 0x0b, 0x8b]) expect(ops).toContain(op);
  });
  it('decodes and re-encodes each example byte for byte', () => {
    const pending = [...examples];
    for (let bytes = pending.shift(); bytes; bytes = pending.shift()) {
      const fromClient = decodeClientDatagram(bytes);
      if (fromClient.type === 'batch') {
        expect(encodeBatch(fromClient.items)).toEqual(bytes);
        pending.push(...fromClient.items.map((i) => i.slice()));
        continue;
      }
      if (fromClient.type === 'request') {
        expect(encodeRequest(fromClient.request)).toEqual(bytes);
        continue;
      }
      const fromDaemon = decodeDaemonDatagram(bytes);
      if (fromDaemon.type === 'bad') throw new Error(`example does not decode: ${fromDaemon.reason}`);
      if (fromDaemon.type === 'writable') {
        expect(encodeWritable()).toEqual(bytes);
        continue;
      }
      if (fromDaemon.type === 'batch') throw new Error('a container decodes as a client datagram first');
      if (fromDaemon.type === 'part') {
        expect(encodeMessagePart(fromDaemon.part)).toEqual(bytes);
        continue;
      }
      // MEMBERSHIP (0x42) is what sockets older than version 3 get; MEMBERSHIP_V3 (0x47), version 3; MEMBERSHIP_V4 (0x49), version 4.
      const version = bytes[3] === 0x42 ? 2 : bytes[3] === 0x47 ? 3 : 4;
      expect(fromDaemon.type === 'reply' ? encodeReply(fromDaemon.reply) : encodeEvent(fromDaemon.event, version)).toEqual(bytes);
    }
  });
});
