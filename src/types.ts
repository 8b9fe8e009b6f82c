/**
 * The nsgi interface: the types every app, middleware and server shares.
 * SPEC.md is the normative text; these types are its TypeScript form.
 */

/** A string whose every UTF-16 code unit is <= 0xFF: one character per byte (ISO-8859-1). */
export type NativeString = string;

/** Body bytes. A Buffer is a Uint8Array and is accepted everywhere bytes are. */
export type Bytes = Uint8Array;

/** `"200 OK"`: three digits, one space, a reason phrase with no control characters. */
export type Status = string;

/** One response header: `[name, value]`, both native strings. */
export type ResponseHeader = [name: NativeString, value: NativeString];

/** A real Array of header pairs. The server may change its contents. */
export type ResponseHeaders = ResponseHeader[];

/** `write()` as returned by start_response: resolves once the chunk is handed to the transport. */
export type WriteFn = (data: Bytes) => Promise<void>;

/**
 * `startResponse(status, headers, excInfo?)`. Stores the status and headers (it sends nothing) and
 * returns `write`. `excInfo` is the value the app caught; give it only from an error handler.
 */
export type StartResponse = (status: Status, headers: ResponseHeaders, excInfo?: unknown) => WriteFn;

/** What a body may carry besides the iteration protocol: a close() the server calls exactly once. */
export interface Closable {
  close?(): void | PromiseLike<void>;
}

/** The response body: an iterable or async iterable of byte chunks, never a string or bare bytes. */
export type Body = (Iterable<Bytes> | AsyncIterable<Bytes>) & Closable;

/** The function form of an app. It may return its body or a promise of it. */
export type App = (environ: Environ, startResponse: StartResponse) => Body | PromiseLike<Body>;

/** The class form: each request constructs an instance, and the instance is the body. */
export type AppClass = new (environ: Environ, startResponse: StartResponse) => Body;

/** The object form: an object with a `call(environ, startResponse)` method. */
export interface AppObject {
  call(environ: Environ, startResponse: StartResponse): Body | PromiseLike<Body>;
}

/** Any of the three callable forms a server accepts. */
export type AppLike = App | AppClass | AppObject;

/** Middleware: an app that wraps an app. */
export type Middleware = (app: App) => App;

/** `wsgi.input`: the request body, read on demand. */
export interface InputStream extends AsyncIterable<Bytes> {
  /** `size` omitted, null or negative: read to the end. Otherwise exactly `size` bytes unless the body ends first. */
  read(size?: number | null): Promise<Bytes>;
  /** One line including its `\n`, or at most `size` bytes of it. Empty at the end. */
  readline(size?: number | null): Promise<Bytes>;
  /** Lines until the end, or until their total length reaches `hint`. */
  readlines(hint?: number | null): Promise<Bytes[]>;
}

/** `wsgi.errors`: a text stream for the app's error output. Accepts any Unicode. */
export interface ErrorStream {
  write(s: string): void;
  writelines(lines: Iterable<string>): void;
  flush(): void;
}

/** What `wsgi.file_wrapper` accepts: anything with `read(size)`, optionally `close()`. */
export interface FileLike {
  read(size?: number): Bytes | PromiseLike<Bytes>;
  close?(): void | PromiseLike<void>;
}

/** `wsgi.file_wrapper(filelike, blockSize?)`: returns a body that reads the file from its current position. */
export type FileWrapper = (filelike: FileLike, blockSize?: number) => Body;

/** The per-request environment: a plain object with CGI keys, `wsgi.*` keys and `nsgi.*` extensions. */
export interface Environ {
  REQUEST_METHOD: NativeString;
  SCRIPT_NAME: NativeString;
  PATH_INFO: NativeString;
  QUERY_STRING: NativeString;
  CONTENT_TYPE?: NativeString;
  CONTENT_LENGTH?: NativeString;
  SERVER_NAME: NativeString;
  SERVER_PORT: NativeString;
  SERVER_PROTOCOL: NativeString;
  SERVER_SOFTWARE?: NativeString;
  GATEWAY_INTERFACE?: NativeString;
  REMOTE_ADDR?: NativeString;
  REMOTE_PORT?: NativeString;
  REQUEST_URI: NativeString;
  HTTPS?: NativeString;
  'wsgi.version': readonly [1, 0];
  'wsgi.url_scheme': 'http' | 'https';
  'wsgi.input': InputStream;
  'wsgi.errors': ErrorStream;
  'wsgi.multithread': boolean;
  'wsgi.multiprocess': boolean;
  'wsgi.run_once': boolean;
  'wsgi.input_terminated': boolean;
  'wsgi.file_wrapper': FileWrapper;
  'nsgi.signal': AbortSignal;
  'nsgi.raw_headers': ReadonlyArray<readonly [NativeString, NativeString]>;
  /** One per request header (§5.3); a header the request did not carry is absent. */
  [key: `HTTP_${string}`]: NativeString | undefined;
  [key: string]: unknown;
}
