// A test driver that accepts every message and never delivers or reports a configuration:
// it claims every guarantee, so the checker must fail it on liveness.
import { z } from 'zod';
import type { Driver, DriverEntry } from '../../core/driver/types.ts';

const options = z.object({}).strict();

export const nullDriver: DriverEntry<z.infer<typeof options>> = {
  name: 'null',
  guarantees: { fifo: true, agreed: true, safe: true, virtualSynchrony: true },
  summary: 'test only: accepts messages and delivers nothing',
  optionsSchema: options,
  create(): Driver {
    return {
      name: 'null',
      guarantees: nullDriver.guarantees,
      start() {},
      handleDatagram() {},
      handleTimeout() {},
      nextDeadline: () => Infinity,
      multicast() {},
      leave() {},
      stats: () => ({}),
      checkInvariants() {},
    };
  },
};
