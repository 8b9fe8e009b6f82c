/**
 * How the app's response headers combine with headers a host's middleware put on the response
 * before the app answered (Express middleware, Fastify hooks and plugins): SPEC §8.6. Every host
 * that can hold such headers applies this one rule.
 */

/** A header as a host's response holds it (Node's getHeader(), Fastify's reply.getHeader()). */
export type HeldHeader = string | number | readonly string[];

/**
 * The value header `key` (lower case) takes when the app gives `value` for it and the response
 * already holds `held`: the app's value wins on a clash, except Set-Cookie, whose lines add up, and
 * Vary, whose field names add up, each once. A name the app gives more than once (`repeated`:
 * `held` then includes the app's earlier values) becomes the list of its values.
 */
export function mergedHeader(key: string, held: HeldHeader, value: string, repeated: boolean): string | string[] {
  if (key === 'vary') return mergeVary(held, value);
  if (key === 'set-cookie' || repeated)
    return Array.isArray(held) ? [...(held as readonly string[]), value] : [String(held), value];
  return value;
}

/**
 * Two Vary values as one: the field names of both, in order, each once (compared without case);
 * `*` stands for them all (RFC 9110 §12.5.5).
 */
export function mergeVary(held: HeldHeader, value: string): string {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const part of [...(Array.isArray(held) ? (held as readonly string[]) : [String(held)]), value]) {
    for (const raw of part.split(',')) {
      const name = raw.trim();
      if (name === '') continue;
      if (name === '*') return '*';
      const lower = name.toLowerCase();
      if (seen.has(lower)) continue;
      seen.add(lower);
      names.push(name);
    }
  }
  return names.join(', ');
}
