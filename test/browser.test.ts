/**
 * What a person sees, in headless Chromium: the seed's hello page and the demo site, served by the
 * bundled server, Express and Fastify. The browser comes from npm (see helpers/browser.ts).
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { createSite } from '../examples/site.js';
import { app as v1 } from '../examples/v1.js';
import { createChat } from '../examples/chat.js';
import { mount } from '../src/middleware/index.js';
import type { App } from '../src/types.js';
import { launchBrowser } from './helpers/browser.js';
import { HOSTS } from './helpers/hosts.js';
import { fastifyH2TlsFactory, nodeH2Factory, rawTlsFactory } from './conformance/factories.js';

/** The seed's hello page at /seed, the demo site everywhere else. */
const quiet = { write() {} };
const site: App = mount({ '/seed': v1, '/': createSite({ log: quiet }) });

/** The hosts a person would put the site on; the registry's factories start them. */
const BROWSER_HOSTS = HOSTS.filter((h) => h.name !== 'node:http');

describe('in a browser', () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());

  for (const { name, factory } of BROWSER_HOSTS) {
    it(`the hello page and the demo site on ${name}`, async () => {
      const handle = await factory(site, { mount: '', errorLog: quiet });
      const running = { url: `http://127.0.0.1:${handle.port}`, close: () => handle.close() };
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

  for (const [name, factory] of [
    ['the raw server with TLS', rawTlsFactory],
    ['createNodeServer({ http2: true }) with TLS', nodeH2Factory],
    ['Fastify with http2: true and TLS', fastifyH2TlsFactory],
  ] as const) {
    it(`the demo site over HTTPS on ${name}: the browser speaks h2`, async () => {
      const handle = await factory(site, { mount: '', errorLog: quiet });
      const url = `https://127.0.0.1:${handle.port}`;
      // The test certificate is self-signed.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      page.setDefaultTimeout(5000);
      try {
        await page.goto(`${url}/seed/`);
        assert.equal((await page.locator('body').innerText()).trim(), 'hello world');
        const protocol = () =>
          page.evaluate(
            () =>
              (
                globalThis as unknown as { performance: { getEntries(): Array<{ nextHopProtocol?: string }> } }
              ).performance.getEntries()[0]?.nextHopProtocol,
          );
        assert.equal(await protocol(), 'h2');
        await page.goto(`${url}/`);
        assert.equal(await page.title(), 'Welcome to nsgi');
        assert.equal(await protocol(), 'h2');
        await page.click('text=About');
        await page.waitForURL('**/about');
        assert.match(await page.locator('p').innerText(), /^Served to 127\.0\.0\.1 over https\.$/);
        await page.goto(`${url}/`);
        await page.fill('input[name=message]', 'bonjour over h2');
        await Promise.all([page.waitForURL('**/echo'), page.click('button')]);
        assert.equal(await page.locator('.echo').innerText(), 'bonjour over h2');
      } finally {
        await context.close();
        await handle.close();
      }
    });
  }

  for (const { name, factory } of HOSTS) {
    it(`the chat example on ${name}: a message typed in one page appears in the other`, async () => {
      const handle = await factory(mount({ '/chat': createChat() }), { mount: '', errorLog: quiet });
      const url = `http://127.0.0.1:${handle.port}/chat/`;
      const [alice, bob] = [await browser.newPage(), await browser.newPage()];
      try {
        for (const page of [alice, bob]) {
          page.setDefaultTimeout(5000);
          await page.goto(url);
          await page.locator('#status', { hasText: 'connected' }).waitFor();
        }
        await alice.fill('#message', 'hello from alice');
        await alice.click('button');
        await bob.locator('#log li', { hasText: 'hello from alice' }).waitFor();
        await alice.locator('#log li', { hasText: 'hello from alice' }).waitFor();
        assert.equal(await bob.locator('#log li').count(), 1);
      } finally {
        await alice.close();
        await bob.close();
        await handle.close();
      }
    });
  }
});
