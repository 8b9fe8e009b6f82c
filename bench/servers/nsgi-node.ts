/** An nsgi app through toNodeListener on node:http. */
import http from 'node:http';
import { toNodeListener } from '../../adapters/node.js';
import { app } from './app.js';
import { listen } from './listen.js';

listen(http.createServer(toNodeListener(app)));
