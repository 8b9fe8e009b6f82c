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
export { toApp, whyNotApp } from './app-forms.js';
export {
  ClientDisconnectedError,
  HttpError,
  InterfaceError,
  RequestBodyTooLargeError,
  ServerShutdownError,
} from './errors.js';
export { Gateway, type Framing, type GatewayOptions, type ResponseRecord, type ResponseSink } from './gateway.js';
export {
  buildEnviron,
  compileEnvironOptions,
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_MAX_REQUEST_TARGET,
  type BuiltEnviron,
  type EnvironOptions,
  type RequestInfo,
} from './environ.js';
export {
  RequestInput,
  EMPTY_INPUT,
  EMPTY_SOURCE,
  type BodyInput,
  type BodySource,
  type InputOptions,
} from './input.js';
export { RequestAbort } from './abort.js';
export { TextErrorStream, formatError, type TextSink } from './error-stream.js';
export { FileWrapperBody, fileWrapper } from './file-wrapper.js';
export { parseResponseHead, HOP_BY_HOP, type ResponseHead } from './response-head.js';
export { decodeNative, encodeNative, isNative, percentDecodeNative, quoteNativePath } from './native.js';
export { requestUri, applicationUri } from './uri.js';
export { checkMountPrefix, encodeScriptName } from './script-name.js';
export { VERSION } from './version.js';
