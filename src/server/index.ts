/** `nsgi/server`: the bundled strict HTTP/1.1 server. */
export { createServer, serve, type NsgiServer, type ServeOptions } from './serve.js';
export {
  RequestParser,
  ParseError,
  DEFAULT_PARSER_LIMITS,
  type ParserLimits,
  type ParserHandler,
  type RequestHead,
} from './parser.js';
