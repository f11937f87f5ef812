// core/wire: the reader, writer, byte arrays, hash and member keys every codec shares.
export { allocBytes, copyBytes, sameBytes, LastDecoded } from './bytes.ts';
export { Reader, WireError } from './reader.ts';
export { Writer } from './writer.ts';
export { FNV_OFFSET, fnv1a, fnvStep } from './hash.ts';
export { compareMembers, memberKey } from './member.ts';
