// Proves the bridge's socket-level contract over real cman daemons (3 nodes on loopback UDP): the same suite as totem, with cman's weaker guarantee asserted instead (FIFO per sender; agreed order refused with EOPNOTSUPP).
import { testPort } from './bridge-helpers.ts';
import { bridgeSuite } from './bridge-suite.ts';

bridgeSuite({ driver: 'cman', basePort: testPort(42000), order: 'fifo', totalOrder: false });
