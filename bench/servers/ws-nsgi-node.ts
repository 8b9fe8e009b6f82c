/** bench:ws: the echo app on node:http. */
import { createNodeServer } from '../../adapters/node.js';
import { listen } from './listen.js';
import { echo } from './ws-app.js';

listen(createNodeServer(echo));
