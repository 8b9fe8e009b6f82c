/** nsgi: the interface, the gateway core and its helpers. Adapters live in `nsgi/node`, ... */

export type {
  App,
  AppClass,
  AppLike,
  AppObject,
  Body,
  Bytes,
  Closable,
  Environ,
  ErrorStream,
  FileLike,
  FileWrapper,
  InputStream,
  Middleware,
  NativeString,
  ResponseHeader,
  ResponseHeaders,
  StartResponse,
  Status,
  WriteFn,
} from './types.js';
export { toApp } from './app-forms.js';
export {
  ClientDisconnectedError,
  HttpError,
  InterfaceError,
  RequestBodyTooLargeError,
  ServerShutdownError,
} from './errors.js';
export { decodeNative, encodeNative, isNative, percentDecodeNative, quoteNativePath } from './native.js';
export { requestUri, applicationUri } from './uri.js';
export { DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_REQUEST_TARGET, type EnvironOptions } from './environ.js';
export { VERSION } from './version.js';

// For a host of your own: describe each request as a RequestInfo, give the core a ResponseSink.
export {
  Gateway,
  type Framing,
  type GatewayOptions,
  type RequestSummary,
  type ResponseRecord,
  type ResponseSink,
} from './gateway.js';
export type { RequestInfo } from './environ.js';
export type { HeadFraming } from './request-head.js';
export { RequestAbort } from './abort.js';
export { EMPTY_SOURCE, type BodySource } from './input.js';
export type { TextSink } from './error-stream.js';
export type { ProxyAddress, ProxyHeader, ProxyTlv } from './server/proxy-protocol.js';
export type {
  AcceptOptions,
  NsgiWebSocket,
  UpgradeSource,
  WebSocketMessage,
  WebSocketOffer,
  WebSocketOptions,
} from './websocket.js';
