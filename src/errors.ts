/** Errors nsgi raises. Each carries a stable `code` so callers need not match on messages. */

import type { ResponseHeaders } from './types.js';

/** The app (or middleware) broke a rule of the interface: a bad status, header, body or call order. */
export class InterfaceError extends TypeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'InterfaceError';
    this.code = code;
  }
}

/** The client went away before the request body was complete, or while the response was being sent. */
export class ClientDisconnectedError extends Error {
  readonly code = 'ERR_NSGI_CLIENT_DISCONNECTED';
  constructor(message = 'client disconnected before the request finished') {
    super(message);
    this.name = 'ClientDisconnectedError';
  }
}

/** The server is shutting down and aborted the request. */
export class ServerShutdownError extends Error {
  readonly code = 'ERR_NSGI_SERVER_SHUTDOWN';
  constructor(message = 'server is shutting down') {
    super(message);
    this.name = 'ServerShutdownError';
  }
}

/**
 * A request the server refuses before or while running the app: carries the HTTP status to answer
 * with (400, 404, 413, 414, 501...). When thrown by `wsgi.input` and left uncaught by the app, the
 * server answers with this status instead of 500.
 */
export class HttpError extends Error {
  readonly status: number;
  /** Whether the connection must be closed after the answer (framing can no longer be trusted). */
  readonly closeConnection: boolean;
  readonly code: string;
  /** Header pairs the answer carries besides Content-Type and Content-Length (426's Sec-WebSocket-Version). */
  readonly headers: ResponseHeaders | undefined;
  constructor(
    status: number,
    message: string,
    options: { closeConnection?: boolean; code?: string; headers?: ResponseHeaders } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.closeConnection = options.closeConnection ?? false;
    this.code = options.code ?? `ERR_NSGI_HTTP_${status}`;
    this.headers = options.headers;
  }
}

/** The request body is larger than the configured limit (413). */
export class RequestBodyTooLargeError extends HttpError {
  readonly limit: number;
  constructor(limit: number) {
    super(413, `request body exceeds the limit of ${limit} bytes (raise maxBodySize to accept it)`, {
      closeConnection: true,
      code: 'ERR_NSGI_BODY_TOO_LARGE',
    });
    this.name = 'RequestBodyTooLargeError';
    this.limit = limit;
  }
}
