/**
 * The conformance suite: the cases every host must pass, one file per section, each case with a
 * stable slug (`environ.fragment`, `input.readline`) by which a host that cannot carry it skips it,
 * saying why. Every host's test file runs the very same cases through its own factory.
 */

import { describe } from 'node:test';
import { bodyCases } from './body.js';
import { suiteContext, type SuiteOptions } from './context.js';
import { environCases } from './environ.js';
import type { ServerFactory } from './harness.js';
import { inputCases } from './input.js';
import { refusalCases } from './refusals.js';
import { startResponseCases } from './start-response.js';

export type { SuiteOptions } from './context.js';

export function conformanceSuite(name: string, factory: ServerFactory, suite: SuiteOptions): void {
  const c = suiteContext(factory, suite);
  describe(`conformance: ${name}${c.P ? ` mounted at ${c.P}` : ' at the root'}`, () => {
    describe('environ', () => environCases(c));
    describe('wsgi.input', () => inputCases(c));
    describe('malformed requests are refused before the app runs', () => refusalCases(c));
    describe('start_response', () => startResponseCases(c));
    describe('body iteration and framing', () => bodyCases(c));
  });
}
