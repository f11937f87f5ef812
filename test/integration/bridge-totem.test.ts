// Proves the bridge's socket-level contract over real totem daemons (3 nodes on loopback UDP): one total order of messages and membership events for every member, procdown, nodedown, rejoin, hostile input, slow consumers.
import { testPort } from './bridge-helpers.ts';
import { bridgeSuite } from './bridge-suite.ts';

bridgeSuite({ driver: 'totem', basePort: testPort(40000), order: 'agreed', totalOrder: true });
