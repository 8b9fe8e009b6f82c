/**
 * What a person sees, in headless Chromium: the seed's hello page and the demo site, served by the
 * bundled server, Express and Fastify. The browser comes from npm (see helpers/browser.ts).
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import type { Browser } from 'playwright-core';
import { toExpress } from '../adapters/express.js';
import { nsgiPlugin } from '../adapters/fastify.js';
import { createSite } from '../examples/site.js';
import { app as v1 } from '../examples/v1.js';
import { mount } from '../src/middleware/index.js';
import { serve } from '../src/server/index.js';
import type { App } from '../src/types.js';
import { launchBrowser } from './helpers/browser.js';

/** The seed's hello page at /seed, the demo site everywhere else. */
const quiet = { write() {} };
const site: App = mount({ '/seed': v1, '/': createSite({ log: quiet }) });

interface Running {
  url: string;
  close(): Promise<void>;
}

const HOSTS: Array<[string, () => Promise<Running>]> = [
  [
    'the raw server',
    async () => {
      const server = await serve(site, { port: 0, errorLog: quiet });
      return { url: server.url, close: () => server.close(0) };
    },
  ],
  [
    'Express',
    async () => {
      const web = express();
      web.use(toExpress(site, { errorLog: quiet }));
      const server = http.createServer(web);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: async () => {
          server.closeAllConnections();
          await new Promise((r) => server.close(r));
        },
      };
    },
  ],
  [
    'Fastify',
    async () => {
      const fastify = Fastify();
      await fastify.register(nsgiPlugin, { app: site, prefix: '' });
      await fastify.listen({ port: 0, host: '127.0.0.1' });
      return {
        url: `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`,
        close: async () => {
          fastify.server.closeAllConnections();
          await fastify.close();
        },
      };
    },
  ],
];

describe('in a browser', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  for (const [name, start] of HOSTS) {
    it(`the hello page and the demo site on ${name}`, async () => {
      const running = await start();
      const page = await browser.newPage();
      page.setDefaultTimeout(5000);
      try {
        await page.goto(`${running.url}/seed/`);
        assert.equal(await page.title(), 'simple server');
        assert.equal((await page.locator('body').innerText()).trim(), 'hello world');

        await page.goto(`${running.url}/`);
        assert.equal(await page.title(), 'Welcome to nsgi');
        // The stylesheet came from staticFiles and applies.
        assert.equal(
          await page
            .locator('h1')
            .evaluate(
              (h) =>
                (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(h)
                  .color,
            ),
          'rgb(0, 102, 153)',
        );
        assert.equal(
          await page.locator('nav img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
          64,
        );

        await page.click('text=About');
        await page.waitForURL('**/about');
        assert.match(await page.locator('p').innerText(), /^Served to 127\.0\.0\.1 over http\.$/);

        await page.goto(`${running.url}/hello/caf%C3%A9`);
        assert.equal(await page.locator('h1').innerText(), 'Hello, café!');

        await page.goto(`${running.url}/`);
        await page.fill('input[name=message]', 'bonjour <tout> le monde');
        await Promise.all([page.waitForURL('**/echo'), page.click('button')]);
        assert.equal(await page.locator('.echo').innerText(), 'bonjour <tout> le monde');

        const missing = await page.goto(`${running.url}/no/such/page`);
        assert.equal(missing?.status(), 404);
      } finally {
        await page.close();
        await running.close();
      }
    });
  }
});
