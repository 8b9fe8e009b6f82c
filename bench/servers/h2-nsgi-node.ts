/** The nsgi app on createNodeServer({ http2: true }) with TLS: h2 and HTTP/1.1 by ALPN. */
import { createNodeServer } from '../../adapters/node.js';
import { app } from './app.js';
import { listen } from './listen.js';
import { TLS } from './tls.js';

listen(createNodeServer(app, { http2: true, ...TLS }));
