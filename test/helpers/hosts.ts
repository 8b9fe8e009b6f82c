/**
 * The test suites' one registry of hosts: each host as a server supertest can drive and as a factory
 * that starts it listening (the conformance suite's, test/conformance/factories.ts), so each suite runs
 * on all of them.
 */

import http from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { nsgiFrameworkErrors, nsgiPlugin } from '../../adapters/fastify.js';
import { toExpress } from '../../adapters/express.js';
import { toNodeListener } from '../../adapters/node.js';
import { createServer } from '../../src/server/index.js';
import type { AppLike } from '../../src/types.js';
import { expressFactory, fastifyFactory, nodeFactory, rawFactory } from '../conformance/factories.js';
import type { ServerFactory } from '../conformance/harness.js';

export interface HostOptions {
  /** Mount prefix, e.g. '/examples'; default the root. */
  mount?: string;
  /** Trusted proxies, in the forms Express's 'trust proxy' takes. */
  trustProxy?: string;
}

export interface Host {
  name: string;
  /** A server supertest can listen on and close per request. */
  server: (app: AppLike, options?: HostOptions) => http.Server;
  /** The host started on 127.0.0.1, port 0. */
  factory: ServerFactory;
}

export const HOSTS: readonly Host[] = [
  {
    name: 'the raw server',
    factory: rawFactory,
    // supertest only needs listen(), address() and close(), which a net.Server has.
    server: (app, { mount, trustProxy } = {}) => createServer(app, { scriptName: mount, trustProxy }) as http.Server,
  },
  {
    name: 'node:http',
    factory: nodeFactory,
    server: (app, { mount, trustProxy } = {}) =>
      http.createServer(toNodeListener(app, { scriptName: mount, trustProxy })),
  },
  {
    name: 'Express',
    factory: expressFactory,
    server: (app, { mount, trustProxy } = {}) => {
      const web = express();
      if (trustProxy !== undefined) web.set('trust proxy', trustProxy);
      web.use(mount ?? '/', toExpress(app, { expressTrustProxy: trustProxy !== undefined }));
      return http.createServer(web);
    },
  },
  {
    name: 'Fastify',
    factory: fastifyFactory,
    server: (app, { mount, trustProxy } = {}) => {
      // supertest listens on (and closes, per request) the server it is given, so Fastify does not
      // own it: its router serves the requests once the plugin is ready. It holds nothing to close.
      const fastify = Fastify({ trustProxy, frameworkErrors: nsgiFrameworkErrors });
      void fastify.register(nsgiPlugin, { app, prefix: mount ?? '', trustProxy });
      const ready = fastify.ready();
      return http.createServer((req, res) => void ready.then(() => fastify.routing(req, res)));
    },
  },
];
