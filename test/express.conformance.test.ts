import http from 'node:http';
import express from 'express';
import { toExpress } from '../adapters/express.js';
import { listening, type ServerFactory } from './conformance/harness.js';
import { conformanceSuite } from './conformance/suite.js';

/** The app mounted in an Express app the usual way; the suite's trustProxy becomes Express's 'trust proxy'. */
const expressFactory: ServerFactory = async (app, { mount, trustProxy, ...options }) => {
  const web = express();
  if (trustProxy !== undefined) web.set('trust proxy', trustProxy);
  web.use(mount || '/', toExpress(app, { ...options, expressTrustProxy: trustProxy !== undefined }));
  const server = http.createServer(web);
  // Lets the app's first read of wsgi.input send `100 Continue`, as on node:http.
  server.on('checkContinue', web);
  return listening(server);
};

conformanceSuite('Express', expressFactory, { mount: '' });
conformanceSuite('Express', expressFactory, { mount: '/mnt' });
