/** nsgi/middleware: apps that wrap apps. Each works on every host and passes streamed bodies on as they come. */
export { accessLog, type AccessLogOptions } from './access-log.js';
export { closable, relay, watchBody, type BodyWatch } from './body.js';
export { compose, type Wrap } from './compose.js';
export { compress, type CompressOptions } from './compress.js';
export { errors, type ErrorsOptions } from './errors.js';
export { forbidden, ipFilter, type IpFilterOptions } from './ip-filter.js';
export { mount, notFound } from './mount.js';
export { proxyFix, type ProxyFixOptions, type ProxyOriginal } from './proxy-fix.js';
export { router, type RouteMatch, type RouterOptions } from './router.js';
export { staticFiles, type StaticFilesOptions } from './static-files.js';
export { LintError, validate, type ValidateOptions } from './validate.js';
