/** bench:ws: the echo app on the bundled server. */
import { createServer } from '../../src/server/index.js';
import { listen } from './listen.js';
import { echo } from './ws-app.js';

listen(createServer(echo));
