/** nsgi/middleware: apps that wrap apps. */
export { compose, type Wrap } from './compose.js';
export { mount, notFound } from './mount.js';
export { LintError, validate, type ValidateOptions } from './validate.js';
