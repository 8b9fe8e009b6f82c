/** nsgi/middleware: apps that wrap apps. */
export { mount, notFound } from './mount.js';
