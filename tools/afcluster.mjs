#!/usr/bin/env node
// The `afcluster` command: loads the TypeScript entry point through tsx (a dependency).
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
