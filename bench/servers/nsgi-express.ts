/** The nsgi app mounted in Express with toExpress. */
import http from 'node:http';
import express from 'express';
import { toExpress } from '../../adapters/express.js';
import { app } from './app.js';
import { listen } from './listen.js';

const web = express();
web.use(toExpress(app));
listen(http.createServer(web));
