/** The certificate the HTTP/2 benchmark servers use (the test one, for 127.0.0.1): h2 needs TLS for ALPN. */
import { readFileSync } from 'node:fs';

// Benchmark servers run with the project root as their working directory.
export const TLS = { key: readFileSync('test/fixtures/key.pem'), cert: readFileSync('test/fixtures/cert.pem') };
