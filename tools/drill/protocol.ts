// Messages between the drill coordinator and its worker processes (over the fork IPC channel).
import type { Order } from '../../core/driver/types.ts';
import type { ObserverRecord } from './checker.ts';
import type { WorkloadResult } from './workload.ts';

export type DrillRequest =
  | { readonly type: 'open'; readonly socket: string; readonly group: string; readonly order: Order; readonly observer: string; readonly timeoutMs: number }
  | { readonly type: 'waitMembers'; readonly count: number; readonly timeoutMs: number }
  | { readonly type: 'run'; readonly names: readonly string[]; readonly seconds: number; readonly seed: number }
  | { readonly type: 'record' };

export type DrillReply =
  | { readonly type: 'ready'; readonly nodeId: number; readonly self: string }
  | { readonly type: 'members'; readonly count: number }
  | { readonly type: 'done'; readonly result: WorkloadResult; readonly error?: string }
  | { readonly type: 'record'; readonly record: ObserverRecord; readonly truncated: boolean; readonly table: Record<string, number | string> }
  | { readonly type: 'error'; readonly message: string };
