/** What a value is, for error messages that tell a user what they passed: `a string ("x")`, `a Map`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `a string (${JSON.stringify(v.slice(0, 40))}${v.length > 40 ? '…' : ''})`;
  if (v instanceof Uint8Array) return `a ${v.constructor.name} of ${v.length} bytes`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'object') return `a ${(v.constructor as { name?: string } | undefined)?.name ?? 'object'}`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return `a symbol (${v.toString()})`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint')
    return `a ${typeof v} (${v.toString()})`;
  return `a ${typeof v}`;
}
