// Errors a user can hit carry an errno-style code and say what to do; bugs are assertions.

export type ErrorCode =
  | 'EAGAIN' | 'EMSGSIZE' | 'ENOTCONN' | 'EADDRINUSE' | 'EINVAL' | 'EOPNOTSUPP'
  | 'ENOBUFS' | 'EACCES' | 'ENOENT' | 'EPROTO' | 'ETIMEDOUT' | 'ECONNREFUSED' | 'EMFILE'
  | 'ENAMETOOLONG' | 'ESRCH' | 'ECANCELED' | 'ENOLCK';

/** Stable numeric codes for the wire (bridge protocol status field). 0 is success. */
export const ERROR_NUMBERS: Readonly<Record<ErrorCode, number>> = {
  EAGAIN: 11, EMSGSIZE: 90, ENOTCONN: 107, EADDRINUSE: 98, EINVAL: 22, EOPNOTSUPP: 95,
  ENOBUFS: 105, EACCES: 13, ENOENT: 2, EPROTO: 71, ETIMEDOUT: 110, ECONNREFUSED: 111,
  EMFILE: 24, ENAMETOOLONG: 36, ESRCH: 3, ECANCELED: 125, ENOLCK: 37,
};

const BY_NUMBER = new Map<number, ErrorCode>(
  Object.entries(ERROR_NUMBERS).map(([code, n]) => [n, code as ErrorCode]),
);

export function errorCodeFromNumber(n: number): ErrorCode | undefined {
  return BY_NUMBER.get(n);
}

export class ClusterError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.code = code;
    this.name = 'ClusterError';
  }
}

/**
 * EAGAIN for flow control: a full queue under load is routine, not a fault, and the stack trace
 * a new Error captures costs more than the send it refuses. The error carries none.
 */
export function eagain(message: string): ClusterError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ClusterError('EAGAIN', message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isClusterError(e: unknown, code?: ErrorCode): e is ClusterError {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string'
    && (code === undefined || (e as { code: string }).code === code);
}

/** An assertion that is never stripped: it checks invariants, never user input. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionError(message);
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}
